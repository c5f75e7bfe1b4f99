"""A site's inbound hooks: configured by the merchant (the secret encrypted with the row's id as associated data,
shown in the clear only when created or replaced), and the deliveries that arrive on them, verified, turned into
events (``hook_formats.py``) and stored through the same path as the merchant API's events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import fetch_page, set_tenant_context, settings_of
from northstar.core.http import BadRequest, NotFound, Unauthorized
from northstar.core.permissions import Principal
from northstar.core.security import field_cipher
from northstar.socialproof import hook_formats
from northstar.socialproof.ingest import EventWriter, WriteResult
from northstar.socialproof.models import InboundHook
from northstar.socialproof.service.events import record_events
from northstar.socialproof.service.sites import get_site, site_for_change
from northstar.socialproof.visitors import VisitorIds
from northstar.webhooks import service as webhooks

log = structlog.get_logger("northstar.socialproof.hooks")


@dataclass(frozen=True)
class HookWithSecret:
    hook: InboundHook
    secret: str


@dataclass(frozen=True)
class Received:
    result: WriteResult
    ignored: int


def _seal(session: AsyncSession, hook_id: uuid.UUID, secret: str) -> str:
    return field_cipher(settings_of(session)).encrypt(secret, associated_data=str(hook_id))


def _secret_of(session: AsyncSession, hook: InboundHook) -> str:
    return field_cipher(settings_of(session)).decrypt(hook.secret_encrypted, associated_data=str(hook.id))


async def create_hook(
    session: AsyncSession,
    *,
    principal: Principal,
    site_id: uuid.UUID,
    provider: str,
    name: str,
    secret: str | None,
    share_details: bool,
) -> HookWithSecret:
    """Shopify and WooCommerce hooks take the secret the store signs with; a generic hook gets a ``whsec_`` secret
    unless one is given."""
    site = await site_for_change(session, principal=principal, site_id=site_id)
    if secret is None:
        if provider != "generic":
            raise BadRequest(
                f"A {provider} hook needs the secret {provider} signs its webhooks with", code="secret_required"
            )
        secret = webhooks.new_secret()
    hook_id = uuid.uuid4()
    hook = InboundHook(
        id=hook_id,
        org_id=principal.org_id,
        site_id=site.id,
        provider=provider,
        name=name,
        secret_encrypted=_seal(session, hook_id, secret),
        share_details=share_details,
        created_by=principal.user_id,
    )
    session.add(hook)
    await session.flush()
    await session.refresh(hook)
    return HookWithSecret(hook, secret)


async def list_hooks(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[InboundHook], int]:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    query = select(InboundHook).where(InboundHook.org_id == org_id, InboundHook.site_id == site.id)
    return await fetch_page(session, query.order_by(InboundHook.created_at, InboundHook.id), offset=offset, limit=limit)


async def get_hook(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, hook_id: uuid.UUID) -> InboundHook:
    hook = await session.get(InboundHook, hook_id)
    if hook is None or hook.org_id != org_id or hook.site_id != site_id:
        raise NotFound("No such inbound hook")
    return hook


async def update_hook(
    session: AsyncSession,
    *,
    principal: Principal,
    site_id: uuid.UUID,
    hook_id: uuid.UUID,
    changes: dict[str, Any],
) -> InboundHook:
    """``name``, ``share_details`` and ``secret`` (replaced: the old one stops verifying at once)."""
    await site_for_change(session, principal=principal, site_id=site_id)
    hook = await get_hook(session, org_id=principal.org_id, site_id=site_id, hook_id=hook_id)
    if changes.get("name") is not None:
        hook.name = changes["name"]
    if changes.get("share_details") is not None:
        hook.share_details = changes["share_details"]
    if changes.get("secret") is not None:
        hook.secret_encrypted = _seal(session, hook.id, changes["secret"])
    await session.flush()
    await session.refresh(hook)
    return hook


async def delete_hook(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, hook_id: uuid.UUID) -> None:
    await site_for_change(session, principal=principal, site_id=site_id)
    await session.delete(await get_hook(session, org_id=principal.org_id, site_id=site_id, hook_id=hook_id))
    await session.flush()


def _refused(hook_id: uuid.UUID, provider: str | None, reason: str) -> Unauthorized:
    log.warning("inbound_hook_signature_rejected", hook=str(hook_id), provider=provider, reason=reason)
    return Unauthorized("The signature does not match", code="invalid_signature")


async def receive(
    session: AsyncSession,
    *,
    hook_id: uuid.UUID,
    body: bytes,
    headers: dict[str, str],
    writer: EventWriter,
    visitors: VisitorIds,
) -> Received:
    """A delivery on a hook's public address: verified (401 and a log line otherwise; an unknown hook answers the
    same, so addresses cannot be probed), read, and stored as events (a source id seen before is a duplicate)."""
    rows = await set_tenant_context(
        session,
        credential_id=hook_id,
        then="SELECT org_id, provider FROM socialproof.inbound_hooks WHERE id = {id}",
        params={"id": str(hook_id)},
    )
    if not rows:
        raise _refused(hook_id, None, "unknown hook")
    await set_tenant_context(session, org_id=rows[0].org_id)
    hook = await session.get(InboundHook, hook_id)
    if hook is None:
        raise _refused(hook_id, None, "unknown hook")
    if not hook_formats.verified(hook.provider, _secret_of(session, hook), body, headers):
        raise _refused(hook.id, hook.provider, "bad signature")
    try:
        parsed = hook_formats.parse(hook.provider, hook.id, body, headers, share_details=hook.share_details)
    except hook_formats.InvalidDelivery as exc:
        raise BadRequest(f"The delivery cannot be read: {exc}", code="invalid_delivery") from None
    hook.last_received_at = datetime.now(UTC)
    if not parsed.events:
        return Received(WriteResult(0, 0), parsed.ignored)
    result = await record_events(
        session, writer=writer, visitors=visitors, org_id=hook.org_id, site_id=hook.site_id, events=parsed.events
    )
    return Received(result, parsed.ignored)
