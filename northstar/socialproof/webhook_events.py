"""What social proof tells merchants' webhook endpoints: ``event.received`` for each stored event,
``conversion.created`` for each conversion ingestion credited, and ``notification.updated``.

The first two are emitted by the group-commit writer inside the transaction that stores the events (a hook on the
``EventWriter``), so a delivery exists exactly when its event does. With no endpoint of the org subscribed to
either type (known from the webhooks module's per-process cache) the hook returns without a round trip.
Visitor ids and tags are not sent: a receiver learns what a popup could show, and the merchant's own event id.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from northstar.core.db import tenant_binding
from northstar.settings import WebhooksSettings
from northstar.socialproof.ingest import EventRow, StoringHook
from northstar.webhooks import service as webhooks

RECEIVED = "event.received"
CONVERTED = "conversion.created"
GOALS = frozenset({"purchase", "signup", "custom", "review"})
_CONVERSIONS = (
    "SELECT site_id, notification_id, event_id, clicked_at, converted_at FROM socialproof.conversions"
    " WHERE org_id = %s AND site_id = ANY(%s) AND event_id = ANY(%s) ORDER BY converted_at, notification_id"
)


def event_data(row: EventRow) -> dict[str, Any]:
    """An event as endpoints get it: what it was, where and when, and its details (no visitor)."""
    details = {key: value for key, value in row.payload.items() if key != "tag"}
    return {
        "id": row.id,
        "siteId": row.site_id,
        "type": row.event_type,
        "name": row.event_name,
        "notificationId": row.notification_id,
        "url": row.url,
        "occurredAt": row.occurred_at,
        "details": details,
    }


def storing_hook(config: WebhooksSettings) -> StoringHook:
    """The writer's hook emitting ``event.received`` and ``conversion.created`` for one org's new rows."""

    async def emit_stored(connection: psycopg.AsyncConnection[Any], org_id: uuid.UUID, rows: list[EventRow]) -> None:
        known = webhooks.cached_subscriptions(org_id)
        if known is not None and not known.get(RECEIVED) and not known.get(CONVERTED):
            return
        await connection.execute(tenant_binding(org_id=org_id))
        subscribed = await webhooks.subscriptions(connection, org_id=org_id, config=config)
        if subscribed.get(RECEIVED):
            items = [event_data(row) for row in rows]
            await webhooks.emit_many_on_connection(
                connection, config=config, org_id=org_id, event_type=RECEIVED, items=items
            )
        if not subscribed.get(CONVERTED):
            return
        goals = [row for row in rows if row.event_type in GOALS and row.visitor_id is not None]
        if not goals:
            return
        cursor = await connection.execute(
            _CONVERSIONS, (org_id, list({row.site_id for row in goals}), [row.id for row in goals])
        )
        conversions = [
            {
                "siteId": site_id,
                "notificationId": notification_id,
                "eventId": event_id,
                "clickedAt": clicked_at,
                "convertedAt": converted_at,
            }
            for site_id, notification_id, event_id, clicked_at, converted_at in await cursor.fetchall()
        ]
        await webhooks.emit_many_on_connection(
            connection, config=config, org_id=org_id, event_type=CONVERTED, items=conversions
        )

    return emit_stored
