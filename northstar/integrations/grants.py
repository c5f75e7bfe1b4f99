"""An integration's credentials at rest, and the OAuth grant behind them over its life: refreshed before use when the
access token is about to expire, revoked at the provider when the integration is disconnected.

Credentials are a JSON object encrypted as one ``FieldCipher`` token (AES-256-GCM) with the integration id as
associated data, so a token copied to another row does not decrypt. An integration connected through a provider's
consent screen has an active ``OAuthConsent``: its ``expires_at`` says when the access token stops working (Google's
after an hour, HubSpot's after 30 minutes; Stripe's and Shopify's never).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import settings_of
from northstar.core.outbound import outbound_policy
from northstar.core.security import auth_keys
from northstar.integrations.authorization import (
    SERVERS,
    AuthorizationServer,
    ProviderRefused,
    ProviderUnavailable,
    app_of,
)
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.connectors.base import Connector, CredentialsRejected, VendorError
from northstar.integrations.models import Integration, OAuthConsent
from northstar.settings import Settings

log = structlog.get_logger("northstar.integrations")


def seal(settings: Settings, integration_id: uuid.UUID, credentials: Mapping[str, str]) -> str:
    return auth_keys(settings).cipher.encrypt(
        orjson.dumps(dict(credentials)).decode(), associated_data=str(integration_id)
    )


def credentials_of(settings: Settings, integration: Integration) -> dict[str, str]:
    opened = auth_keys(settings).cipher.decrypt(integration.credentials_encrypted, associated_data=str(integration.id))
    return dict(orjson.loads(opened))


def open_connector(
    provider: str, *, credentials: Mapping[str, str], config: Mapping[str, Any], settings: Settings
) -> Connector:
    return CONNECTORS[provider].open(credentials=credentials, config=config, policy=outbound_policy(settings.outbound))


def server_of(settings: Settings, provider: str, config: Mapping[str, Any]) -> AuthorizationServer | None:
    """The provider's authorization server for the install's OAuth client, or None when the install has none."""
    app = app_of(settings.integrations.oauth, provider)
    if app is None:
        return None
    return SERVERS[provider](app=app, policy=outbound_policy(settings.outbound), config=config)


class ReconnectNeeded(CredentialsRejected):
    """The provider will not refresh the integration's grant: someone must go through its consent screen again."""


async def _active(session: AsyncSession, integration: Integration) -> OAuthConsent | None:
    """The integration's live consent, locked, as committed now (None: connected with pasted keys)."""
    consent: OAuthConsent | None = await session.scalar(
        select(OAuthConsent)
        .where(OAuthConsent.integration_id == integration.id, OAuthConsent.revoked_at.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return consent


async def usable_credentials(session: AsyncSession, integration: Integration) -> dict[str, str]:
    """The integration's credentials, its OAuth access token refreshed first when it expires within the refresh
    margin. The consent row is locked first, and the credentials read again under the lock: of two syncs, one
    refreshes and the other uses what it stored. A refusal marks the integration ``reconnect``
    (``ReconnectNeeded``); a provider that cannot be reached is a ``VendorError`` and changes nothing."""
    settings = settings_of(session)
    consent = await _active(session, integration)
    if consent is None:
        return credentials_of(settings, integration)
    await session.refresh(integration, ["credentials_encrypted"])
    now = dt.datetime.now(dt.UTC)
    margin = dt.timedelta(seconds=settings.integrations.oauth.refresh_margin_seconds)
    if consent.expires_at is None or consent.expires_at > now + margin:
        return credentials_of(settings, integration)
    server = server_of(settings, integration.provider, integration.config)
    try:
        if server is None:
            raise ProviderRefused("unauthorized_client", "this installation no longer has an OAuth client for it")
        grant = await server.refresh(credentials_of(settings, integration))
    except ProviderRefused as exc:
        message = (
            f"{CONNECTORS[integration.provider].title} did not refresh the access token ({exc}); "
            "connect the account again"
        )
        integration.status, integration.last_error, integration.last_error_at = "reconnect", message, now
        log.warning("oauth_refresh_refused", integration=str(integration.id), code=exc.code)
        raise ReconnectNeeded(message) from None
    except ProviderUnavailable as exc:
        raise VendorError(str(exc)) from None
    integration.credentials_encrypted = seal(settings, integration.id, grant.credentials)
    consent.expires_at, consent.refreshed_at = grant.expires_at, now
    return grant.credentials


async def open_integration(session: AsyncSession, integration: Integration) -> Connector:
    """The integration's connector with usable credentials (see ``usable_credentials``)."""
    return open_connector(
        integration.provider,
        credentials=await usable_credentials(session, integration),
        config=integration.config,
        settings=settings_of(session),
    )


async def revoke_grant(session: AsyncSession, *, integration: Integration, revoked_by: uuid.UUID | None) -> None:
    """End the integration's OAuth grant at the provider and say so on its consent, with what the provider answered.
    A provider that refuses or cannot be reached does not keep the integration: its tokens are deleted with it."""
    consent = await _active(session, integration)
    if consent is None:  # connected with pasted keys: they are the owner's to roll
        return
    settings = settings_of(session)
    server = server_of(settings, integration.provider, integration.config)
    try:
        if server is None:
            raise ProviderRefused("unauthorized_client", "this installation no longer has an OAuth client for it")
        await server.revoke(credentials_of(settings, integration), consent.account)
        outcome = "revoked"
    except ProviderRefused as exc:
        outcome = f"refused: {exc}"
    except ProviderUnavailable as exc:
        outcome = f"not reached: {exc}"
    log.info("oauth_grant_revoked", integration=str(integration.id), outcome=outcome)
    consent.revoked_at, consent.revoked_by = dt.datetime.now(dt.UTC), revoked_by
    consent.revocation, consent.provider_revocation = "disconnected", outcome[:300]
