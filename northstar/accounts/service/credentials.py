"""API keys, and turning a presented credential (access JWT or API key) into a Principal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import LiteralString, cast

from fastapi import Request
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.models import ApiKey, Membership, RefreshToken, SamlConnection
from northstar.accounts.service.users import now
from northstar.audit import service as audit
from northstar.core.context import ClientMeta
from northstar.core.db import fetch_page, get_in_org, set_tenant_context, settings_of
from northstar.core.http import Conflict, Forbidden, Unauthorized, Unprocessable
from northstar.core.permissions import (
    ROLE_RANK,
    Principal,
    Role,
    Scope,
    ScopedRole,
    all_scopes_of,
    capped_key_grant,
)
from northstar.core.ratelimit import RateLimiter
from northstar.core.security import TokenError, auth_keys, constant_time_equal, new_secret, split_credential
from northstar.settings import RateLimitSettings

API_KEY_PREFIXES = ("ns_live_", "ns_test_")
LAST_USED_RESOLUTION = timedelta(minutes=1)


def key_prefix(key: ApiKey) -> str:
    return f"ns_{key.environment}_{key.id.hex}"


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str


async def _key_creator(
    session: AsyncSession, principal: Principal, role: Role, scopes: list[str] | None
) -> uuid.UUID | None:
    """The person a new key is made for (the caller, or the creator of the key that calls), whose current role
    must allow all the key may do.

    Their membership is locked until commit, so a concurrent removal or demotion waits for the new key and then
    revokes or caps it too.
    """
    creator = principal.user_id
    if creator is None and principal.api_key_id is not None:
        creator = await session.scalar(select(ApiKey.created_by).where(ApiKey.id == principal.api_key_id))
    if creator is None:
        return None
    current = await session.scalar(
        select(Membership.role)
        .where(Membership.org_id == principal.org_id, Membership.user_id == creator)
        .with_for_update(read=True)
    )
    if current is None or capped_key_grant(role, scopes, Role(current)) is not None:
        raise Forbidden("A key cannot do more than the role of the person it is made for", code="beyond_creator")
    return creator


async def create_api_key(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    role: Role,
    scopes: list[str] | None,
    environment: str,
    expires_at: datetime | None,
) -> NewApiKey:
    """A key can do at most what its creator may: removing the creator revokes it, a demotion caps it."""
    if ROLE_RANK[role] < ROLE_RANK[principal.role]:
        raise Forbidden(f"Your role cannot create a key with the {role.value} role")
    if scopes is not None:
        granted = all_scopes_of(role)
        wildcard = {scope.split(":")[0] for scope in granted}
        beyond = [s for s in scopes if s not in granted and not (s.endswith(":*") and s[:-2] in wildcard)]
        if beyond:
            raise Forbidden("Scopes beyond the key's role", details={"scopes": beyond})
    if expires_at is not None and expires_at <= now():
        raise Unprocessable(
            "expiresAt must be in the future",
            details=[{"field": "body.expiresAt", "message": "must be in the future", "type": "invalid_expiry"}],
        )
    creator = await _key_creator(session, principal, role, scopes)
    secret = new_secret(24)
    key = ApiKey(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        name=name,
        environment=environment,
        role=role.value,
        scopes=scopes,
        secret_hash=auth_keys(settings_of(session)).hash_secret(secret),
        created_by=creator,
        expires_at=expires_at,
    )
    session.add(key)
    await session.flush()
    return NewApiKey(key, f"{key_prefix(key)}_{secret}")


async def list_api_keys(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[ApiKey], int]:
    query = select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.created_at.desc())
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_api_key(session: AsyncSession, *, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    return await get_in_org(session, ApiKey, key_id, org_id=org_id, missing="No such API key")


async def rotate_api_key(session: AsyncSession, *, principal: Principal, key_id: uuid.UUID) -> NewApiKey:
    """A new key with the same role and scopes; the old one keeps working for the grace period."""
    old = await get_api_key(session, org_id=principal.org_id, key_id=key_id)
    if old.revoked_at is not None or old.rotated_to is not None:
        raise Conflict("This key was already revoked or rotated", code="key_inactive")
    new = await create_api_key(
        session,
        principal=principal,
        name=old.name,
        role=Role(old.role),
        scopes=old.scopes,
        environment=old.environment,
        expires_at=old.expires_at,
    )
    grace_end = now() + timedelta(seconds=settings_of(session).auth.api_key_rotation_grace_seconds)
    old.expires_at = min(old.expires_at, grace_end) if old.expires_at else grace_end
    old.rotated_to = new.key.id
    await session.flush()
    return new


async def revoke_api_key(session: AsyncSession, *, org_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    key = await get_api_key(session, org_id=org_id, key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = now()
    await session.flush()
    return key


async def _live_keys_by(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> list[ApiKey]:
    return list(
        (
            await session.scalars(
                select(ApiKey)
                .where(
                    ApiKey.org_id == org_id,
                    ApiKey.created_by == user_id,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
                )
                .order_by(ApiKey.created_at, ApiKey.id)
                .with_for_update()
            )
        ).all()
    )


async def revoke_keys_of(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, client: ClientMeta
) -> list[ApiKey]:
    """A member leaves: every key they made stops working on the next request, each revocation audited."""
    keys = await _live_keys_by(session, org_id=principal.org_id, user_id=user_id)
    for key in keys:
        key.revoked_at = now()
        await audit.record(
            session,
            org_id=principal.org_id,
            action="api_key.revoked",
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            client=client,
            target_type="api_key",
            target_id=str(key.id),
            details={"reason": "creator_removed", "createdBy": str(user_id)},
        )
    await session.flush()
    return keys


async def cap_keys_of(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, role: Role, client: ClientMeta
) -> list[ApiKey]:
    """A member's role changed: each key they made that could do more than ``role`` is narrowed to it, audited."""
    capped = []
    for key in await _live_keys_by(session, org_id=principal.org_id, user_id=user_id):
        narrowed = capped_key_grant(Role(key.role), key.scopes, role)
        if narrowed is None:
            continue
        previous = {"role": key.role, "scopes": key.scopes}
        key.role, key.scopes = narrowed[0].value, narrowed[1]
        await audit.record(
            session,
            org_id=principal.org_id,
            action="api_key.capped",
            actor_type=principal.actor_type,
            actor_id=principal.actor_id,
            client=client,
            target_type="api_key",
            target_id=str(key.id),
            details={
                "reason": "creator_role_changed",
                "createdBy": str(user_id),
                "previous": previous,
                "role": key.role,
                "scopes": key.scopes,
            },
        )
        capped.append(key)
    await session.flush()
    return capped


# The member's role, whether the session was revoked, and their project/team roles (migration 0003).
_PRINCIPAL_QUERY: LiteralString = "SELECT role, revoked, scoped FROM core.principal_of({org}, {user}, {sid})"


def _scoped_roles(encoded: list[str]) -> list[ScopedRole]:
    roles = []
    for item in encoded:
        scope, scope_id, role = item.split(":")
        roles.append(ScopedRole(scope=cast(Scope, scope), scope_id=uuid.UUID(scope_id), role=Role(role)))
    return roles


class CredentialAuthenticator:
    """Bearer access tokens (users) and API keys (``Authorization: Bearer ns_…`` or ``X-API-Key``)."""

    def __init__(self, limiter: RateLimiter, limits: RateLimitSettings) -> None:
        self.limiter = limiter
        self.limits = limits

    async def authenticate(
        self, request: Request, session: AsyncSession, *, credential: str | None = None
    ) -> Principal:
        """The caller of ``request``: by the credential given (the console's session cookie), else by its headers."""
        credential = credential or _presented_credential(request)
        if credential is None:
            raise Unauthorized()
        if credential.startswith(API_KEY_PREFIXES):
            principal = await self._api_key_principal(request, session, credential)
        else:
            principal = await self._user_principal(request, session, credential)
        if self.limits.enabled:
            await self.limiter.enforce(
                f"principal:{principal.actor_id}", limit=self.limits.api_per_principal_per_minute
            )
        return principal

    async def _user_principal(self, request: Request, session: AsyncSession, token: str) -> Principal:
        try:
            claims = auth_keys(settings_of(session)).signer.verify(token, typ="access")
            user_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
            token_org = uuid.UUID(claims["org"])
        except (TokenError, KeyError, ValueError) as exc:
            raise Unauthorized("Invalid or expired access token", code="invalid_token") from exc
        org_id = _requested_org(request) or token_org
        rows = await set_tenant_context(
            session,
            org_id=org_id,
            user_id=user_id,
            then=_PRINCIPAL_QUERY,
            params={"org": org_id, "user": user_id, "sid": session_id},
        )
        row = rows[0] if rows else None
        if row is None:
            raise Unauthorized("You are not a member of this organization", code="not_a_member")
        if row.revoked:
            raise Unauthorized("This session has ended; log in again", code="session_revoked")
        if org_id != token_org:
            await _check_crossing(session, org_id=org_id, session_id=session_id, role=Role(row.role))
        return Principal(
            org_id=org_id,
            role=Role(row.role),
            user_id=user_id,
            session_id=session_id,
            scoped_roles=_scoped_roles(row.scoped),
        )

    async def _api_key_principal(self, request: Request, session: AsyncSession, token: str) -> Principal:
        parsed = split_credential(token[len("ns_live_") :], "")
        invalid = Unauthorized("Invalid, expired or revoked API key", code="invalid_api_key")
        if parsed is None:
            raise invalid
        key_id, secret = parsed
        await set_tenant_context(session, credential_id=key_id)
        key = await session.get(ApiKey, key_id)
        if (
            key is None
            or not token.startswith(f"ns_{key.environment}_")
            or not constant_time_equal(key.secret_hash, auth_keys(settings_of(session)).hash_secret(secret))
            or key.revoked_at is not None
            or (key.expires_at is not None and key.expires_at <= now())
        ):
            raise invalid
        requested_org = _requested_org(request)
        if requested_org and requested_org != key.org_id:
            raise invalid
        await set_tenant_context(session, org_id=key.org_id, credential_id=key_id)
        if key.last_used_at is None or now() - key.last_used_at > LAST_USED_RESOLUTION:
            key.last_used_at = now()
            await audit.record(
                session,
                org_id=key.org_id,
                action="api_key.used",
                actor_type="api_key",
                actor_id=key.id,
                client=ClientMeta.of(request),
                target_type="api_key",
                target_id=str(key.id),
            )
        return Principal(
            org_id=key.org_id,
            role=Role(key.role),
            api_key_id=key.id,
            api_key_scopes=frozenset(key.scopes) if key.scopes is not None else None,
        )


async def _check_crossing(session: AsyncSession, *, org_id: uuid.UUID, session_id: uuid.UUID, role: Role) -> None:
    """A session acting in another of its user's orgs (``X-Org-Id``): not one an org's IdP made (it reaches only that
    org), and not into an org that requires single sign-on, but for its founders."""
    made_by_idp = await session.scalar(
        select(RefreshToken.id).where(RefreshToken.family_id == session_id, RefreshToken.single_sign_on).limit(1)
    )
    if made_by_idp is not None:
        raise Forbidden(
            "This session was made by an organization's single sign-on and reaches only it", code="sso_session"
        )
    enforced = await session.scalar(select(SamlConnection.enforced).where(SamlConnection.org_id == org_id))
    if enforced and role != Role.FOUNDER:
        raise Forbidden("This organization requires single sign-on: sign in with SSO", code="sso_required")


def _requested_org(request: Request) -> uuid.UUID | None:
    """The org named by ``X-Org-Id``, if any; a malformed header is the client's error, not a 401."""
    value = request.headers.get("x-org-id")
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise Unprocessable("X-Org-Id must be an organization id (UUID)", code="invalid_org_id") from exc


def _presented_credential(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None
