"""Connecting an integration through the provider's consent screen: OAuth 2.0's authorization code flow with state.

1. ``start`` keeps an ``OAuthState`` (the SHA-256 of a random ``state``, the org and the person starting, the new
   integration's name and settings or the integration to reconnect, a PKCE verifier; 10 minutes) and answers the
   provider's authorization URL. Only roles that may connect an integration start one.
2. ``finish`` takes what the provider sent to the redirect URI. The state must be one this org made (another org's
   is invisible under row-level security), started by the same person, unexpired and unused; it is used up and
   committed before anything else, so a replayed callback is refused whatever happened to the first. Then the
   provider's answer: a refusal (``error=access_denied``) ends the trip; a code is exchanged for tokens with the
   install's client secret (and the PKCE verifier, where the provider takes one).
3. The tokens are stored encrypted like pasted keys (``grants.seal``), and an ``OAuthConsent`` records who connected
   which account, the scopes granted, when, and until when the access token works. A reconnect replaces the
   integration's tokens and marks the consent it replaces ``reconnected``.

Refreshing and revoking are ``grants.py``'s; the providers' wire formats are ``authorization.py``'s.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.core.db import execute_count, fetch_page, set_tenant_context, settings_of
from northstar.core.http import AppError, Forbidden, NotFound, Unprocessable
from northstar.core.oauth import new_state, pkce_pair, state_digest
from northstar.core.permissions import Principal
from northstar.integrations.authorization import SERVERS, AuthorizationServer, ProviderRefused, ProviderUnavailable
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.grants import seal, server_of
from northstar.integrations.models import Integration, OAuthConsent, OAuthState
from northstar.integrations.service import check_config, create, get_integration, may_change
from northstar.integrations.sync import request_sync
from northstar.settings import Settings

CALLBACK_PATH = "/app/integrations/oauth/{provider}/callback"


class OAuthRefused(AppError):
    """The trip to the consent screen did not come back with a grant for this org and person: nothing was stored."""

    status, code = 400, "oauth_refused"


class ProviderDown(AppError):
    status, code = 502, "provider_unavailable"


def connectable(settings: Settings) -> list[str]:
    """The providers with a Connect button: those the install has an OAuth client for."""
    return [provider for provider in CONNECTORS if server_of(settings, provider, {}) is not None]


def callback_url(settings: Settings, provider: str) -> str:
    """The redirect URI to register with the provider: the console's callback at the public address."""
    return settings.public_url.rstrip("/") + CALLBACK_PATH.format(provider=provider)


def server_for(settings: Settings, provider: str, config: Mapping[str, Any] | None = None) -> AuthorizationServer:
    server = server_of(settings, provider, config or {})
    if server is None:
        raise NotFound(
            f"This installation has no OAuth client for {provider}: connect it with its keys",
            code="oauth_not_configured",
        )
    return server


def _a_person(principal: Principal) -> None:
    """A consent is a person's: an API key has nobody to send to the provider's screen."""
    if principal.user_id is None:
        raise Forbidden("Connecting through the provider's consent screen is for people signed in, not API keys")


@dataclass(frozen=True)
class Started:
    url: str  # the provider's consent screen
    expires_at: dt.datetime


async def start(
    session: AsyncSession,
    *,
    principal: Principal,
    provider: str,
    name: str | None,
    config: dict[str, Any],
    integration_id: uuid.UUID | None,
) -> Started:
    """A trip to the provider's consent screen, for a new integration (its name and settings, checked now) or to
    reconnect one (which the caller may change)."""
    settings = settings_of(session)
    _a_person(principal)
    if provider not in SERVERS:
        raise NotFound(f"{provider} does not connect through OAuth: connect it with its keys", code="oauth_not_offered")
    if integration_id is not None:
        integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
        may_change(principal, integration)
        if integration.provider != provider:
            raise Unprocessable(f"That integration is a {integration.provider} integration, not {provider}")
        name, config = integration.name, integration.config
    else:
        check_config(provider, config)
        model = CONNECTORS[provider].settings_model
        config = model.model_validate(config).model_dump(mode="json", include=set(config))
    server = server_for(settings, provider, config)
    state = new_state()
    verifier, challenge = pkce_pair()
    expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=settings.integrations.oauth.state_ttl_seconds)
    session.add(
        OAuthState(
            state_hash=state_digest(state),
            org_id=principal.org_id,
            user_id=principal.user_id,
            provider=provider,
            name=name or CONNECTORS[provider].title,
            config=config,
            integration_id=integration_id,
            code_verifier=verifier,
            expires_at=expires_at,
        )
    )
    await session.flush()
    url = server.authorize_url(state=state, redirect_uri=callback_url(settings, provider), challenge=challenge)
    return Started(url, expires_at)


async def _use_state(session: AsyncSession, principal: Principal, provider: str, state: str) -> OAuthState:
    """The trip this state began, used up now; every other case is refused, each saying why."""
    begun = await session.scalar(
        select(OAuthState).where(OAuthState.state_hash == state_digest(state)).with_for_update()
    )
    if begun is None or begun.provider != provider:
        raise OAuthRefused("This connect link is not one this organization started: start again", code="invalid_state")
    if begun.user_id != principal.user_id:
        raise OAuthRefused("This connect link was started by someone else: start again yourself", code="invalid_state")
    if begun.used_at is not None:
        raise OAuthRefused("This connect link was used already: start again", code="invalid_state")
    if begun.expires_at <= dt.datetime.now(dt.UTC):
        raise OAuthRefused("This connect link has expired: start again", code="invalid_state")
    begun.used_at = dt.datetime.now(dt.UTC)
    return begun


@dataclass(frozen=True)
class Finished:
    integration: Integration
    reconnected: bool


async def finish(
    session: AsyncSession, *, principal: Principal, provider: str, callback: Mapping[str, str]
) -> Finished:
    """What the provider sent back to the redirect URI (``state`` and ``code``, or ``error``), as an integration."""
    settings = settings_of(session)
    title = CONNECTORS[provider].title if provider in CONNECTORS else provider
    _a_person(principal)
    begun = await _use_state(session, principal, provider, callback.get("state", ""))
    await session.commit()  # the state is spent whatever follows
    await set_tenant_context(session, org_id=principal.org_id, user_id=principal.user_id)
    if callback.get("error"):
        said = callback.get("error_description") or callback["error"]
        raise OAuthRefused(f"{title} did not grant access: {said}", code="consent_denied")
    code = callback.get("code")
    if not code:
        raise OAuthRefused(f"{title} sent no authorization code back")
    server = server_for(settings, provider, begun.config)
    try:
        server.check_callback(callback)
        grant = await server.exchange(
            code=code, redirect_uri=callback_url(settings, provider), verifier=begun.code_verifier
        )
    except ProviderRefused as exc:
        raise OAuthRefused(f"{title} refused to grant access: {exc}") from None
    except ProviderUnavailable as exc:
        raise ProviderDown(f"{title} could not be asked for the tokens: {exc}") from None
    config = {**begun.config, **server.connector_config()}
    if begun.integration_id is None:
        integration = await create(
            session,
            principal=principal,
            provider=provider,
            name=begun.name,
            credentials=grant.credentials,
            config=config,
        )
    else:
        integration = await _reconnected(session, principal, begun.integration_id, grant.credentials, config)
    session.add(
        OAuthConsent(
            org_id=principal.org_id,
            integration_id=integration.id,
            provider=provider,
            user_id=principal.user_id,
            account=grant.account,
            scopes=list(grant.scopes),
            expires_at=grant.expires_at,
        )
    )
    await session.flush()
    return Finished(integration, reconnected=begun.integration_id is not None)


async def _reconnected(
    session: AsyncSession,
    principal: Principal,
    integration_id: uuid.UUID,
    credentials: Mapping[str, str],
    config: dict[str, Any],
) -> Integration:
    """The integration with its new tokens, back to active, and synced; the consent they replace ends (the provider
    keeps it: Google ends every token of a grant when one is revoked, the new ones too)."""
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    integration.credentials_encrypted = seal(settings_of(session), integration.id, credentials)
    integration.config = config
    if integration.status in ("error", "reconnect"):
        integration.status = "active"
    integration.last_error = integration.last_error_at = None
    replaced = await session.scalar(
        select(OAuthConsent).where(OAuthConsent.integration_id == integration.id, OAuthConsent.revoked_at.is_(None))
    )
    if replaced is not None:
        replaced.revoked_at, replaced.revoked_by = dt.datetime.now(dt.UTC), principal.user_id
        replaced.revocation = "reconnected"
    await session.flush()
    await request_sync(session, integration=integration, trigger="connect")
    return integration


async def list_consents(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    integration_id: uuid.UUID | None,
    provider: str | None,
    offset: int,
    limit: int,
) -> tuple[list[OAuthConsent], int]:
    """The org's consents, newest first (those of disconnected integrations too)."""
    query = select(OAuthConsent).where(OAuthConsent.org_id == org_id)
    if integration_id is not None:
        query = query.where(OAuthConsent.integration_id == integration_id)
    if provider is not None:
        query = query.where(OAuthConsent.provider == provider)
    return await fetch_page(
        session, query.order_by(OAuthConsent.granted_at.desc(), OAuthConsent.id), offset=offset, limit=limit
    )


async def people(session: AsyncSession, *, org_id: uuid.UUID, consents: list[OAuthConsent]) -> dict[uuid.UUID, str]:
    """Who connected each of ``consents``, by name (else e-mail); someone no longer a member is not named."""
    wanted = {consent.user_id for consent in consents}
    members = await accounts.members_of(session, org_id=org_id, user_ids=wanted) if wanted else []
    return {member.user_id: member.name or member.email for member in members}


async def purge_states(session: AsyncSession) -> int:
    """Trips over for a day (used or expired) are forgotten: a late callback finds nothing either way."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return await execute_count(session, delete(OAuthState).where(OAuthState.expires_at < cutoff))
