"""Sign-in with OpenID Connect providers (Google, Microsoft, any OIDC provider the install configures).

The flow is the authorization code flow with PKCE (S256), ``state`` and ``nonce``:

1. ``start`` keeps a ``SignInState`` (the state's SHA-256, a nonce, a PKCE verifier, who is connecting if someone
   signed in is) and answers the provider's authorization URL.
2. ``finish`` takes the callback's ``code`` and ``state``: the state must be one we made, unexpired and unused (it
   is used up at once, so a replayed callback is refused); the code is exchanged with the verifier; the ID token must
   be signed by a key of the provider's JWKS (``RS256``/``ES256``, never ``none``), issued by the provider's issuer,
   for our client id, unexpired, and carry our nonce.
3. The person is found by provider and subject (``auth.identities``). A new subject whose e-mail no account holds
   signs up (a user and their own organization, as the sign-up form makes them). A new subject whose e-mail an
   account already holds is never merged into it: that account's owner must sign in first and connect the provider
   from their account page (``start`` with ``link_user_id``).

GitHub has no OpenID Connect: its OAuth app flow is the same trip (state, PKCE), and the person is the API's
``/user`` (its numeric id the subject) with the primary verified address of ``/user/emails``.

Provider endpoints come from discovery, and the JWKS is cached per provider (fetched again once when a token names a
key it does not hold, as after a rotation). Providers are operator configuration, not users' addresses, so requests
go through a plain httpx client, as the language model's do.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import Identity, SignInState
from northstar.accounts.schemas import LoginResult
from northstar.accounts.service import authentication
from northstar.accounts.service.users import get_user, now, user_by_email
from northstar.core.context import ClientMeta
from northstar.core.db import execute_count, settings_of
from northstar.core.http import AppError, Forbidden, NotFound
from northstar.core.oauth import new_state, pkce_pair, state_digest
from northstar.core.security import verify_password
from northstar.settings import Settings, SignInProvider

ALGORITHMS = ["RS256", "ES256"]
SCOPES = {"oidc": ["openid", "email", "profile"], "github": ["read:user", "user:email"]}
DISCOVERY_TTL_SECONDS = 3600
CLOCK_SKEW_SECONDS = 60
TIMEOUT = httpx.Timeout(10.0)


class SignInRefused(AppError):
    """The trip to the provider did not prove who came back; nothing was signed in or linked."""

    status, code = 400, "sign_in_refused"


@dataclass
class _Provider:
    """A provider's discovered endpoints and signing keys, cached in the process."""

    config: SignInProvider
    discovered_at: float = 0.0
    metadata: dict[str, Any] | None = None
    keys: dict[str, jwt.PyJWK] | None = None


_PROVIDERS: dict[tuple[str, str, str], _Provider] = {}


def configured(settings: Settings) -> list[SignInProvider]:
    return list(settings.auth.providers)


def provider_of(settings: Settings, name: str) -> SignInProvider:
    found = next((provider for provider in settings.auth.providers if provider.name == name), None)
    if found is None:
        raise NotFound("No such sign-in provider", code="unknown_provider")
    return found


def _cached(config: SignInProvider) -> _Provider:
    key = (config.name, config.issuer, config.client_id)
    if key not in _PROVIDERS:
        _PROVIDERS[key] = _Provider(config)
    return _PROVIDERS[key]


async def _metadata(http: httpx.AsyncClient, provider: _Provider) -> dict[str, Any]:
    if provider.metadata is None or time.monotonic() - provider.discovered_at > DISCOVERY_TTL_SECONDS:
        url = f"{provider.config.issuer.rstrip('/')}/.well-known/openid-configuration"
        found = await _json(http, "GET", url)
        if found.get("issuer") != provider.config.issuer:
            raise SignInRefused("The provider's discovery names another issuer")
        provider.metadata, provider.discovered_at, provider.keys = found, time.monotonic(), None
    return provider.metadata


async def _json(http: httpx.AsyncClient, method: str, url: str, **options: Any) -> dict[str, Any]:
    try:
        response = await http.request(method, url, **options)
    except httpx.HTTPError as exc:
        raise SignInRefused("The sign-in provider could not be reached", code="provider_unavailable") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        raise SignInRefused(f"The sign-in provider refused: {error or response.status_code}")
    return body


async def _signing_key(http: httpx.AsyncClient, provider: _Provider, kid: str | None) -> jwt.PyJWK:
    for attempt in range(2):
        if provider.keys is None or attempt:
            metadata = await _metadata(http, provider)
            found = await _json(http, "GET", metadata["jwks_uri"])
            provider.keys = {}
            for entry in found.get("keys", []):
                try:
                    provider.keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key of a kind we do not verify with
        key = provider.keys.get(kid or "")
        if key is not None:
            return key
    raise SignInRefused("The ID token is not signed by a key the provider publishes")


async def start(
    session: AsyncSession,
    *,
    http: httpx.AsyncClient,
    provider_name: str,
    redirect_uri: str,
    return_to: str,
    link_user_id: uuid.UUID | None = None,
) -> str:
    """The provider's authorization URL for one sign-in (or, with ``link_user_id``, for connecting an account)."""
    settings = settings_of(session)
    config = provider_of(settings, provider_name)
    if config.kind == "github":
        endpoint = f"{config.issuer.rstrip('/')}/login/oauth/authorize"
    else:
        endpoint = (await _metadata(http, _cached(config)))["authorization_endpoint"]
    state, nonce = new_state(), secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    session.add(
        SignInState(
            state_hash=state_digest(state),
            provider=config.name,
            nonce=nonce,
            code_verifier=verifier,
            link_user_id=link_user_id,
            return_to=return_to,
            expires_at=now() + timedelta(seconds=settings.auth.sign_in_ttl_seconds),
        )
    )
    await session.flush()
    query = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(config.scopes or SCOPES[config.kind]),
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{endpoint}?{urlencode(query)}"


@dataclass(frozen=True)
class Claims:
    subject: str
    email: str | None
    email_verified: bool
    name: str


async def _github_claims(
    http: httpx.AsyncClient, config: SignInProvider, *, code: str, verifier: str, redirect_uri: str
) -> Claims:
    """Exchange the code for an access token (GitHub answers a refused code with 200 and an ``error``), then read
    who it belongs to."""
    tokens = await _json(
        http,
        "POST",
        f"{config.issuer.rstrip('/')}/login/oauth/access_token",
        data={
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        headers={"Accept": "application/json"},
    )
    access = tokens.get("access_token")
    if not isinstance(access, str) or "error" in tokens:
        raise SignInRefused(f"The sign-in provider refused: {tokens.get('error') or 'no access token'}")
    headers = {"Authorization": f"Bearer {access}", "Accept": "application/vnd.github+json"}
    api = config.api_url.rstrip("/")
    user = await _json(http, "GET", f"{api}/user", headers=headers)
    try:
        response = await http.get(f"{api}/user/emails", headers=headers)
        emails = response.json() if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError):
        emails = []
    primary = next(
        (
            entry["email"]
            for entry in emails
            if isinstance(entry, dict) and entry.get("primary") and entry.get("verified")
        ),
        None,
    )
    if "id" not in user:
        raise SignInRefused("The provider did not say who signed in")
    return Claims(
        subject=str(user["id"]),
        email=str(primary).lower() if primary else None,
        email_verified=primary is not None,
        name=str(user.get("name") or user.get("login") or ""),
    )


async def _claims(
    http: httpx.AsyncClient, config: SignInProvider, *, code: str, verifier: str, nonce: str, redirect_uri: str
) -> Claims:
    """Exchange the code and verify the ID token it brings (GitHub: read the person from its API)."""
    if config.kind == "github":
        return await _github_claims(http, config, code=code, verifier=verifier, redirect_uri=redirect_uri)
    provider = _cached(config)
    metadata = await _metadata(http, provider)
    tokens = await _json(
        http,
        "POST",
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(config.client_id, config.client_secret),
    )
    token = tokens.get("id_token")
    if not isinstance(token, str):
        raise SignInRefused("The provider sent no ID token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise SignInRefused("The ID token is not a JWT") from exc
    if header.get("alg") not in ALGORITHMS:
        raise SignInRefused(f"The ID token is not signed with {' or '.join(ALGORITHMS)}")
    key = await _signing_key(http, provider, header.get("kid"))
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=config.client_id,
            issuer=config.issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "aud", "sub", "exp", "iat"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise SignInRefused("The ID token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise SignInRefused("The ID token was issued for another application") from exc
    except jwt.InvalidIssuerError as exc:
        raise SignInRefused("The ID token was issued by another provider") from exc
    except jwt.PyJWTError as exc:
        raise SignInRefused(f"The ID token is not valid: {exc}") from exc
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise SignInRefused("The ID token does not carry this sign-in's nonce")
    email = claims.get("email")
    return Claims(
        subject=str(claims["sub"]),
        email=str(email).lower() if email else None,
        email_verified=claims.get("email_verified") is True,
        name=str(claims.get("name") or ""),
    )


Outcome = Literal["signed_in", "signed_up", "linked", "link_required"]


@dataclass(frozen=True)
class Finished:
    outcome: Outcome
    return_to: str
    signed_in: LoginResult | None = None  # signed in or up: the tokens, or the MFA step first
    email: str | None = None  # the account to sign in to first, when linking is required


async def _use_state(session: AsyncSession, provider_name: str, state: str) -> SignInState:
    """The sign-in this state began, used up now (a second callback with it finds nothing)."""
    used: SignInState | None = await session.scalar(
        update(SignInState)
        .where(
            SignInState.state_hash == state_digest(state),
            SignInState.provider == provider_name,
            SignInState.used_at.is_(None),
            SignInState.expires_at > now(),
        )
        .values(used_at=now())
        .returning(SignInState)
    )
    if used is None:
        raise SignInRefused("This sign-in link is unknown, expired or already used: start again")
    return used


async def finish(
    session: AsyncSession,
    *,
    http: httpx.AsyncClient,
    provider_name: str,
    code: str,
    state: str,
    redirect_uri: str,
    client: ClientMeta,
) -> Finished:
    settings = settings_of(session)
    config = provider_of(settings, provider_name)
    begun = await _use_state(session, provider_name, state)
    await session.commit()  # the state is spent whatever follows
    claims = await _claims(
        http, config, code=code, verifier=begun.code_verifier, nonce=begun.nonce, redirect_uri=redirect_uri
    )
    identity = await session.scalar(
        select(Identity).where(Identity.auth_provider == config.name, Identity.auth_provider_id == claims.subject)
    )
    if begun.link_user_id is not None:
        return await _link(session, config, claims, identity, begun, client)
    if identity is not None:
        identity.last_used_at = now()
        user = await get_user(session, identity.user_id)
        result = await authentication.sign_in_with(session, user=user, client=client, method=f"oidc:{config.name}")
        return Finished("signed_in", begun.return_to, result)
    if claims.email is None or not claims.email_verified:
        raise SignInRefused("The provider did not vouch for an e-mail address; sign up with a password instead")
    if await user_by_email(session, claims.email) is not None:
        return Finished("link_required", begun.return_to, email=claims.email)
    outcome = await authentication.signup(
        session,
        email=claims.email,
        password=None,
        name=claims.name,
        organization_name=None,
        invitation_token=None,
        client=client,
    )
    session.add(Identity(user_id=outcome.user.id, auth_provider=config.name, auth_provider_id=claims.subject))
    result = await authentication.sign_in_with(
        session, user=outcome.user, client=client, method=f"oidc:{config.name}", org_id=outcome.org_id
    )
    return Finished("signed_up", begun.return_to, result)


async def _link(
    session: AsyncSession,
    config: SignInProvider,
    claims: Claims,
    identity: Identity | None,
    begun: SignInState,
    client: ClientMeta,
) -> Finished:
    assert begun.link_user_id is not None
    if identity is not None and identity.user_id != begun.link_user_id:
        raise SignInRefused(f"That {config.label} account is connected to another user")
    if identity is None:
        await session.execute(
            delete(Identity).where(Identity.user_id == begun.link_user_id, Identity.auth_provider == config.name)
        )
        session.add(Identity(user_id=begun.link_user_id, auth_provider=config.name, auth_provider_id=claims.subject))
        await session.flush()
        await authentication.audit_everywhere(
            session,
            user_id=begun.link_user_id,
            action="auth.identity_linked",
            client=client,
            details={"provider": config.name},
        )
    return Finished("linked", begun.return_to)


async def purge_finished(session: AsyncSession) -> int:
    """Sign-in trips over for a day (used or expired) are forgotten: a late callback finds nothing either way."""
    return await execute_count(session, delete(SignInState).where(SignInState.expires_at < now() - timedelta(days=1)))


async def identities(session: AsyncSession, *, user_id: uuid.UUID) -> list[Identity]:
    found = await session.scalars(select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at))
    return list(found.all())


async def unlink(
    session: AsyncSession, *, user_id: uuid.UUID, provider_name: str, password: str | None, client: ClientMeta
) -> None:
    """Disconnect a provider. The user's last connected account goes only with their password: proof that they keep
    a way in (an account made through a provider has none until they set one)."""
    linked = await identities(session, user_id=user_id)
    if not any(found.auth_provider == provider_name for found in linked):
        raise NotFound("No such connected account")
    if len(linked) == 1:
        user = await get_user(session, user_id)
        if not verify_password(settings_of(session), user.password_hash, password or ""):
            raise Forbidden(
                "This is your last connected account: enter your password to disconnect it", code="password_required"
            )
    await session.execute(delete(Identity).where(Identity.user_id == user_id, Identity.auth_provider == provider_name))
    await authentication.audit_everywhere(
        session, user_id=user_id, action="auth.identity_unlinked", client=client, details={"provider": provider_name}
    )
