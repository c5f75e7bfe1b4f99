"""Inbound hooks of a site (Shopify, WooCommerce, generic and Zapier): configured by the merchant, and the public
address each store or automation posts to, authenticated by the delivery's signature."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.db import settings_of
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope, read_body
from northstar.core.idempotency import Idempotent
from northstar.socialproof.auth import SitesRead, SitesUpdate
from northstar.socialproof.models import InboundHook
from northstar.socialproof.runtime import SocialProofRuntime
from northstar.socialproof.schemas.hooks import (
    HookReceived,
    InboundHookCreate,
    InboundHookOut,
    InboundHookUpdate,
    InboundHookWithSecret,
)
from northstar.socialproof.service import hooks

router = APIRouter(tags=["social proof"], responses=ERROR_RESPONSES)

HOOKS = "/sites/{site_id}/inbound-hooks"
HOOK = f"{HOOKS}/{{hook_id}}"
MAX_DELIVERY_BYTES = 1024 * 1024


def _out(session: DbSession, hook: InboundHook) -> InboundHookOut:
    address = f"{settings_of(session).public_url}/api/v1/inbound-hooks/{hook.id}"
    return InboundHookOut.model_validate(hook).model_copy(update={"receive_url": address})


@router.get(HOOKS, response_model=PageEnvelope[InboundHookOut], name="inbound_hooks.list")
async def list_hooks(
    site_id: uuid.UUID, principal: SitesRead, session: DbSession, page: Page
) -> PageEnvelope[InboundHookOut]:
    found, total = await hooks.list_hooks(
        session, org_id=principal.org_id, site_id=site_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[_out(session, hook) for hook in found], meta=page.meta(total))


@router.post(
    HOOKS,
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[InboundHookWithSecret],
    name="inbound_hooks.create",
    dependencies=[Idempotent],
)
async def create_hook(
    site_id: uuid.UUID, body: InboundHookCreate, request: Request, principal: SitesUpdate, session: DbSession
) -> Envelope[InboundHookWithSecret]:
    """A hook for the site; the answer carries its address and its secret (shown only now)."""
    created = await hooks.create_hook(
        session,
        principal=principal,
        site_id=site_id,
        provider=body.provider,
        name=body.name,
        secret=body.secret,
        share_details=body.share_details,
    )
    audit_target(request, "inbound_hook", created.hook.id, provider=created.hook.provider)
    out = _out(session, created.hook)
    return Envelope(data=InboundHookWithSecret.model_validate({**out.model_dump(), "secret": created.secret}))


@router.get(HOOK, response_model=Envelope[InboundHookOut], name="inbound_hooks.get")
async def get_hook(
    site_id: uuid.UUID, hook_id: uuid.UUID, principal: SitesRead, session: DbSession
) -> Envelope[InboundHookOut]:
    found = await hooks.get_hook(session, org_id=principal.org_id, site_id=site_id, hook_id=hook_id)
    return Envelope(data=_out(session, found))


@router.patch(HOOK, response_model=Envelope[InboundHookOut], name="inbound_hooks.update")
async def update_hook(
    site_id: uuid.UUID,
    hook_id: uuid.UUID,
    body: InboundHookUpdate,
    request: Request,
    principal: SitesUpdate,
    session: DbSession,
) -> Envelope[InboundHookOut]:
    found = await hooks.update_hook(
        session, principal=principal, site_id=site_id, hook_id=hook_id, changes=body.model_dump(exclude_unset=True)
    )
    audit_target(request, "inbound_hook", found.id, secret_replaced=body.secret is not None)
    return Envelope(data=_out(session, found))


@router.delete(HOOK, status_code=status.HTTP_204_NO_CONTENT, name="inbound_hooks.delete")
async def delete_hook(
    site_id: uuid.UUID, hook_id: uuid.UUID, request: Request, principal: SitesUpdate, session: DbSession
) -> None:
    await hooks.delete_hook(session, principal=principal, site_id=site_id, hook_id=hook_id)
    audit_target(request, "inbound_hook", hook_id)


@router.post(
    "/inbound-hooks/{hook_id}",
    response_model=Envelope[HookReceived],
    name="inbound_hooks.receive",
    openapi_extra={"security": []},
)
async def receive(hook_id: uuid.UUID, request: Request, session: DbSession) -> Envelope[HookReceived]:
    """Deliveries from Shopify (``orders/create``, ``customers/create``), WooCommerce (``order.created``,
    ``customer.created``) or any sender signing per Standard Webhooks (or sending ``X-Hook-Secret``), authenticated
    by their signature: 401 ``invalid_signature`` otherwise. Answered once the events are stored; a source id seen
    before is counted as a duplicate."""
    body = await read_body(request, MAX_DELIVERY_BYTES)
    runtime: SocialProofRuntime = request.app.state.socialproof
    received = await hooks.receive(
        session,
        hook_id=hook_id,
        body=body,
        headers=dict(request.headers),
        writer=runtime.writer,
        visitors=runtime.collector.visitors,
    )
    result = received.result
    return Envelope(data=HookReceived(accepted=result.accepted, duplicates=result.duplicates, ignored=received.ignored))
