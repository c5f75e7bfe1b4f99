"""The webhooks page of the console: endpoints (add one, rotate its secret, turn it on or off) and the delivery log
with each delivery's attempts and a replay button. Same service functions and gates as the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from northstar.core.console.pages import attempt, console_router, field_errors, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import Page
from northstar.core.permissions import Principal
from northstar.webhooks.auth import WebhooksCreatePage, WebhooksReadPage, WebhooksUpdatePage
from northstar.webhooks.models import EVENT_TYPES
from northstar.webhooks.schemas import EndpointCreate
from northstar.webhooks.service import delivery as deliveries
from northstar.webhooks.service import endpoints

TEMPLATES = Path(__file__).parent / "templates"
router = console_router()


async def _page(
    request: Request, session: DbSession, principal: Principal, page: Page, *, status: int = 200, **extra: Any
) -> Response:
    found, _ = await endpoints.list_endpoints(session, org_id=principal.org_id, offset=0, limit=100)
    log, total = await deliveries.list_deliveries(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    context = {
        "endpoints": found,
        "urls": {endpoint.id: endpoint.url for endpoint in found},
        "deliveries": log,
        "total": total,
        "page": page,
        "base_url": "/app/webhooks",
        "event_types": EVENT_TYPES,
        "may_create": principal.can("create", "webhooks"),
        "may_change": principal.can("update", "webhooks"),
        "values": {},
        "errors": {},
        "secret": None,
        **extra,
    }
    return render(request, "webhooks/webhooks.html", context, status=status)


@router.get("/webhooks", name="console.webhooks")
async def webhooks_page(request: Request, principal: WebhooksReadPage, session: DbSession, page: Page) -> Response:
    """``GET /webhooks/endpoints`` and ``GET /webhooks/deliveries``, and the form adding an endpoint."""
    return await _page(request, session, principal, page)


@router.post("/webhooks", name="console.webhooks_create")
async def create_endpoint(request: Request, principal: WebhooksCreatePage, session: DbSession, page: Page) -> Response:
    """``POST /webhooks/endpoints``: the page then shows the new secret, once."""
    raw = await request.form()
    values = {"url": str(raw.get("url", "")), "description": str(raw.get("description", ""))}
    try:
        body = EndpointCreate.model_validate({**values, "event_types": raw.getlist("event_types")})
    except ValidationError as exc:
        return await _page(request, session, principal, page, values=values, errors=field_errors(exc), status=422)
    created, refusal, status = await attempt(
        request,
        session,
        lambda: endpoints.create_endpoint(
            session,
            principal=principal,
            url=body.url,
            description=body.description,
            event_types=list(body.event_types),
        ),
    )
    if created is None:
        return await _page(request, session, principal, page, values=values, errors={"form": refusal}, status=status)
    audit_target(request, "webhook_endpoint", created.endpoint.id, url=created.endpoint.url)
    return await _page(request, session, principal, page, secret=(created.endpoint.url, created.secret), status=201)


@router.post("/webhooks/{endpoint_id}/rotate", name="console.webhooks_rotate")
async def rotate_secret(
    endpoint_id: uuid.UUID, request: Request, principal: WebhooksUpdatePage, session: DbSession, page: Page
) -> Response:
    rotated = await endpoints.rotate_secret(session, org_id=principal.org_id, endpoint_id=endpoint_id)
    audit_target(request, "webhook_endpoint", endpoint_id, rotated=True)
    return await _page(request, session, principal, page, secret=(rotated.endpoint.url, rotated.secret))


@router.post("/webhooks/{endpoint_id}/toggle", name="console.webhooks_toggle")
async def toggle_endpoint(
    endpoint_id: uuid.UUID, request: Request, principal: WebhooksUpdatePage, session: DbSession
) -> Response:
    found = await endpoints.get_endpoint(session, org_id=principal.org_id, endpoint_id=endpoint_id)
    changed = await endpoints.update_endpoint(
        session, org_id=principal.org_id, endpoint_id=endpoint_id, enabled=found.status != "active"
    )
    audit_target(request, "webhook_endpoint", endpoint_id, status=changed.status)
    return redirect(request, "/app/webhooks")


@router.get("/webhooks/deliveries/{delivery_id}", name="console.webhooks_delivery")
async def delivery_page(
    delivery_id: uuid.UUID, request: Request, principal: WebhooksReadPage, session: DbSession
) -> Response:
    """``GET /webhooks/deliveries/{id}``: the payload and every attempt."""
    found = await deliveries.get_delivery(session, org_id=principal.org_id, delivery_id=delivery_id)
    endpoint = await endpoints.get_endpoint(session, org_id=principal.org_id, endpoint_id=found.endpoint_id)
    context = {
        "delivery": found,
        "endpoint": endpoint,
        "attempts": await deliveries.attempts_of(session, delivery=found),
        "may_change": principal.can("update", "webhooks"),
        "refusal": request.query_params.get("refused"),
    }
    return render(request, "webhooks/delivery.html", context)


@router.post("/webhooks/deliveries/{delivery_id}/replay", name="console.webhooks_replay")
async def replay_delivery(
    delivery_id: uuid.UUID, request: Request, principal: WebhooksUpdatePage, session: DbSession
) -> Response:
    """``POST /webhooks/deliveries/{id}/replay``."""
    _, refusal, _status = await attempt(
        request, session, lambda: deliveries.replay(session, org_id=principal.org_id, delivery_id=delivery_id)
    )
    if refusal is not None:
        return redirect(request, f"/app/webhooks/deliveries/{delivery_id}?refused=1")
    audit_target(request, "webhook_delivery", delivery_id)
    return redirect(request, f"/app/webhooks/deliveries/{delivery_id}")
