"""Merchants' endpoints: create (the secret is shown once), change, turn on and off, rotate the secret, delete.

An address is checked when it is saved (https unless the outbound policy allows http, no credentials, no literal
private address) and again at every attempt by the SSRF-guarded client, which also refuses names that resolve to
private addresses.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import fetch_page, settings_of
from northstar.core.http import NotFound, Unprocessable
from northstar.core.outbound import BlockedDestination, outbound_policy
from northstar.core.permissions import Principal
from northstar.core.security import field_cipher
from northstar.webhooks.models import Endpoint
from northstar.webhooks.service.emission import forget
from northstar.webhooks.signing import new_secret, secret_bytes


@dataclass(frozen=True)
class NewSecret:
    """An endpoint with its secret in the clear: answered once, on creation and rotation."""

    endpoint: Endpoint
    secret: str


def check_url(session: AsyncSession, url: str) -> str:
    """The address if deliveries may go there, else a clear 422."""
    policy = outbound_policy(settings_of(session).outbound)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Unprocessable("The endpoint must be an absolute https:// address", code="invalid_url")
    if parts.scheme == "http" and not policy.allow_http:
        raise BlockedDestination("only https addresses are allowed, not http://")
    if parts.username or parts.password:
        raise Unprocessable("The address must not carry a user name or password", code="invalid_url")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url  # a name: checked when resolved, at every attempt
    if not policy.allow_private_networks and not address.is_global:
        raise BlockedDestination(f"{parts.hostname} is a private or reserved address")
    return url


def _encrypt(session: AsyncSession, endpoint_id: uuid.UUID, secret: str) -> str:
    return field_cipher(settings_of(session)).encrypt(secret, associated_data=str(endpoint_id))


def signing_keys(session: AsyncSession, endpoint: Endpoint, *, now: datetime) -> list[bytes]:
    """The keys that sign a message now: the current secret, and the previous one during its grace period."""
    cipher = field_cipher(settings_of(session))
    keys = [secret_bytes(cipher.decrypt(endpoint.secret_encrypted, associated_data=str(endpoint.id)))]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted is not None and expires is not None and expires > now:
        previous = cipher.decrypt(endpoint.previous_secret_encrypted, associated_data=str(endpoint.id))
        keys.append(secret_bytes(previous))
    return keys


async def create_endpoint(
    session: AsyncSession, *, principal: Principal, url: str, description: str, event_types: list[str]
) -> NewSecret:
    endpoint_id, secret = uuid.uuid4(), new_secret()
    endpoint = Endpoint(
        id=endpoint_id,
        org_id=principal.org_id,
        url=check_url(session, url),
        description=description,
        event_types=sorted(set(event_types)),
        status="active",
        secret_encrypted=_encrypt(session, endpoint_id, secret),
        created_by=principal.user_id,
    )
    session.add(endpoint)
    await session.flush()
    await session.refresh(endpoint)
    forget(principal.org_id)
    return NewSecret(endpoint, secret)


async def list_endpoints(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Endpoint], int]:
    query = select(Endpoint).where(Endpoint.org_id == org_id).order_by(Endpoint.created_at.desc(), Endpoint.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_endpoint(
    session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID, for_update: bool = False
) -> Endpoint:
    endpoint = await session.get(Endpoint, endpoint_id, with_for_update=for_update)
    if endpoint is None or endpoint.org_id != org_id:
        raise NotFound("No such webhook endpoint")
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    url: str | None = None,
    description: str | None = None,
    event_types: list[str] | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change what is given; turning an endpoint on again clears its failure record (it starts afresh)."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, for_update=True)
    if url is not None:
        endpoint.url = check_url(session, url)
    if description is not None:
        endpoint.description = description
    if event_types is not None:
        endpoint.event_types = sorted(set(event_types))
    if enabled is True and endpoint.status != "active":
        endpoint.status, endpoint.disabled_at, endpoint.disabled_reason = "active", None, None
        endpoint.failing_since, endpoint.last_error = None, None
    elif enabled is False and endpoint.status != "disabled":
        endpoint.status, endpoint.disabled_at, endpoint.disabled_reason = "disabled", datetime.now(UTC), "by a member"
    await session.flush()
    await session.refresh(endpoint)
    forget(org_id)
    return endpoint


async def rotate_secret(session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> NewSecret:
    """A new secret signs from now on; the one it replaces also signs for the grace period (receivers switch in
    their own time). Rotating again within the grace period ends the older secret's at once."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id, for_update=True)
    grace = timedelta(hours=settings_of(session).webhooks.rotation_grace_hours)
    secret = new_secret()
    endpoint.previous_secret_encrypted = endpoint.secret_encrypted
    endpoint.previous_secret_expires_at = datetime.now(UTC) + grace
    endpoint.secret_encrypted = _encrypt(session, endpoint.id, secret)
    await session.flush()
    await session.refresh(endpoint)
    return NewSecret(endpoint, secret)


async def delete_endpoint(session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    """The endpoint and its delivery history go."""
    await session.delete(await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id))
    await session.flush()
    forget(org_id)
