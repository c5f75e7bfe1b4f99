"""Webhook routes: merchants' endpoints (create, change, turn on and off, rotate the secret, delete), the delivery
log with each delivery's attempts, and manual replay."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.webhooks.auth import WebhooksCreate, WebhooksDelete, WebhooksRead, WebhooksUpdate
from northstar.webhooks.models import MessageDelivery
from northstar.webhooks.schemas import (
    AttemptOut,
    DeliveryDetail,
    DeliveryOut,
    DeliveryStatus,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    EventType,
)
from northstar.webhooks.service import delivery as deliveries
from northstar.webhooks.service import endpoints
from northstar.webhooks.service.endpoints import NewSecret

router = APIRouter(tags=["webhooks"], responses=ERROR_RESPONSES)

ENDPOINT = "/webhooks/endpoints/{endpoint_id}"
DELIVERY = "/webhooks/deliveries/{delivery_id}"


def _with_secret(created: NewSecret) -> EndpointWithSecret:
    return EndpointWithSecret.model_validate(
        {**EndpointOut.model_validate(created.endpoint).model_dump(), "secret": created.secret}
    )


@router.get("/webhooks/endpoints", response_model=PageEnvelope[EndpointOut], name="webhooks.endpoints.list")
async def list_endpoints(principal: WebhooksRead, session: DbSession, page: Page) -> PageEnvelope[EndpointOut]:
    found, total = await endpoints.list_endpoints(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[EndpointOut.model_validate(row) for row in found], meta=page.meta(total))


@router.post(
    "/webhooks/endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[EndpointWithSecret],
    name="webhooks.endpoints.create",
    dependencies=[Idempotent],
)
async def create_endpoint(
    body: EndpointCreate, request: Request, principal: WebhooksCreate, session: DbSession
) -> Envelope[EndpointWithSecret]:
    """A receiver for the event types given; the answer carries its ``whsec_`` secret, shown only this once."""
    created = await endpoints.create_endpoint(
        session,
        principal=principal,
        url=body.url,
        description=body.description,
        event_types=list(body.event_types),
    )
    audit_target(request, "webhook_endpoint", created.endpoint.id, url=created.endpoint.url)
    return Envelope(data=_with_secret(created))


@router.get(ENDPOINT, response_model=Envelope[EndpointOut], name="webhooks.endpoints.get")
async def get_endpoint(endpoint_id: uuid.UUID, principal: WebhooksRead, session: DbSession) -> Envelope[EndpointOut]:
    found = await endpoints.get_endpoint(session, org_id=principal.org_id, endpoint_id=endpoint_id)
    return Envelope(data=EndpointOut.model_validate(found))


@router.patch(ENDPOINT, response_model=Envelope[EndpointOut], name="webhooks.endpoints.update")
async def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointUpdate, request: Request, principal: WebhooksUpdate, session: DbSession
) -> Envelope[EndpointOut]:
    found = await endpoints.update_endpoint(
        session,
        org_id=principal.org_id,
        endpoint_id=endpoint_id,
        url=body.url,
        description=body.description,
        event_types=list(body.event_types) if body.event_types is not None else None,
        enabled=body.enabled,
    )
    audit_target(request, "webhook_endpoint", found.id, status=found.status)
    return Envelope(data=EndpointOut.model_validate(found))


@router.post(f"{ENDPOINT}/rotate-secret", response_model=Envelope[EndpointWithSecret], name="webhooks.endpoints.rotate")
async def rotate_secret(
    endpoint_id: uuid.UUID, request: Request, principal: WebhooksUpdate, session: DbSession
) -> Envelope[EndpointWithSecret]:
    """A new secret, shown only now; the old one keeps signing (a second signature) for the grace period."""
    rotated = await endpoints.rotate_secret(session, org_id=principal.org_id, endpoint_id=endpoint_id)
    audit_target(request, "webhook_endpoint", endpoint_id, rotated=True)
    return Envelope(data=_with_secret(rotated))


@router.delete(ENDPOINT, status_code=status.HTTP_204_NO_CONTENT, name="webhooks.endpoints.delete")
async def delete_endpoint(
    endpoint_id: uuid.UUID, request: Request, principal: WebhooksDelete, session: DbSession
) -> None:
    await endpoints.delete_endpoint(session, org_id=principal.org_id, endpoint_id=endpoint_id)
    audit_target(request, "webhook_endpoint", endpoint_id)


@router.get("/webhooks/deliveries", response_model=PageEnvelope[DeliveryOut], name="webhooks.deliveries.list")
async def list_deliveries(
    principal: WebhooksRead,
    session: DbSession,
    page: Page,
    endpoint_id: Annotated[uuid.UUID | None, Query(alias="endpointId")] = None,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    event_type: Annotated[EventType | None, Query(alias="eventType")] = None,
) -> PageEnvelope[DeliveryOut]:
    found, total = await deliveries.list_deliveries(
        session,
        org_id=principal.org_id,
        endpoint_id=endpoint_id,
        status=delivery_status,
        event_type=event_type,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[DeliveryOut.model_validate(row) for row in found], meta=page.meta(total))


async def _detail(session: DbSession, found: MessageDelivery) -> DeliveryDetail:
    attempts = await deliveries.attempts_of(session, delivery=found)
    return DeliveryDetail.model_validate(
        {
            **DeliveryOut.model_validate(found).model_dump(),
            "payload": found.payload,
            "last_response_body": found.last_response_body,
            "attempts": [AttemptOut.model_validate(attempt) for attempt in attempts],
        }
    )


@router.get(DELIVERY, response_model=Envelope[DeliveryDetail], name="webhooks.deliveries.get")
async def get_delivery(delivery_id: uuid.UUID, principal: WebhooksRead, session: DbSession) -> Envelope[DeliveryDetail]:
    found = await deliveries.get_delivery(session, org_id=principal.org_id, delivery_id=delivery_id)
    return Envelope(data=await _detail(session, found))


@router.post(
    f"{DELIVERY}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[DeliveryDetail],
    name="webhooks.deliveries.replay",
)
async def replay_delivery(
    delivery_id: uuid.UUID, request: Request, principal: WebhooksUpdate, session: DbSession
) -> Envelope[DeliveryDetail]:
    """Send a delivery that succeeded or failed once more, now, with the same message id."""
    found = await deliveries.replay(session, org_id=principal.org_id, delivery_id=delivery_id)
    audit_target(request, "webhook_delivery", found.id)
    return Envelope(data=await _detail(session, found))
