"""Outbound webhooks in the graph: the org's endpoints and delivery log, and replaying a delivery, through
``webhooks.service`` and behind the same gates as ``/webhooks/…``. Creating endpoints and rotating secrets stay on
REST, where a secret is shown once."""

from __future__ import annotations

import datetime as dt
import uuid

import strawberry
from strawberry.types import Info

from northstar.core.context import require
from northstar.graphapi.context import context_of
from northstar.graphapi.wire import from_row, window
from northstar.webhooks.service import delivery as deliveries
from northstar.webhooks.service import endpoints

WEBHOOKS_READ = require("webhooks", "read")
WEBHOOKS_UPDATE = require("webhooks", "update")


@strawberry.type(description="A merchant's endpoint and the event types it subscribes to.")
class WebhookEndpoint:
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    status: str
    failing_since: dt.datetime | None
    last_error: str | None
    disabled_at: dt.datetime | None
    created_at: dt.datetime


@strawberry.type(description="One message to one endpoint, with where its attempts stand.")
class WebhookDelivery:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str
    event_type: str
    status: str
    attempt_count: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_response_code: int | None
    last_response_ms: int | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime


@strawberry.type
class WebhookEndpointPage:
    items: list[WebhookEndpoint]
    page: int
    limit: int
    total: int


@strawberry.type
class WebhookDeliveryPage:
    items: list[WebhookDelivery]
    page: int
    limit: int
    total: int


@strawberry.type
class Query:
    @strawberry.field(description="As GET /webhooks/endpoints: newest first.")
    async def webhook_endpoints(self, info: Info, page: int = 1, limit: int = 20) -> WebhookEndpointPage | None:
        ctx = context_of(info)
        principal = ctx.allow(WEBHOOKS_READ)
        bounds = window(page, limit)
        async with ctx.db() as session:
            rows, total = await endpoints.list_endpoints(
                session, org_id=principal.org_id, offset=bounds.offset, limit=bounds.limit
            )
        items = [from_row(WebhookEndpoint, row) for row in rows]
        return WebhookEndpointPage(items=items, page=bounds.page, limit=bounds.limit, total=total)

    @strawberry.field(description="As GET /webhooks/deliveries: the delivery log, newest first.")
    async def webhook_deliveries(
        self, info: Info, page: int = 1, limit: int = 20, endpoint_id: uuid.UUID | None = None
    ) -> WebhookDeliveryPage | None:
        ctx = context_of(info)
        principal = ctx.allow(WEBHOOKS_READ)
        bounds = window(page, limit)
        async with ctx.db() as session:
            rows, total = await deliveries.list_deliveries(
                session, org_id=principal.org_id, endpoint_id=endpoint_id, offset=bounds.offset, limit=bounds.limit
            )
        items = [from_row(WebhookDelivery, row) for row in rows]
        return WebhookDeliveryPage(items=items, page=bounds.page, limit=bounds.limit, total=total)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="As POST /webhooks/deliveries/{deliveryId}/replay: once more, same message id.")
    async def replay_webhook_delivery(self, info: Info, id: uuid.UUID) -> WebhookDelivery | None:
        ctx = context_of(info)
        principal = ctx.allow(WEBHOOKS_UPDATE)
        async with ctx.mutation("replayWebhookDelivery") as session:
            found = await deliveries.replay(session, org_id=principal.org_id, delivery_id=id)
            ctx.changed("replayWebhookDelivery", "webhook_delivery", found.id)
        return from_row(WebhookDelivery, found)
