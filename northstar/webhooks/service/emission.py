"""Emitting an event: one delivery row and one queued job per subscribed endpoint, in the caller's transaction.

``event.received`` fires at ingestion volume, so the question "does any endpoint of this org want this type?" is
answered from a per-process cache (``subscription_cache_seconds``); with no subscriber an emit costs a dictionary
lookup and no round trip. A change to an org's endpoints in this process drops its entry at once; other processes
see it when their entry expires.

Both entry points work on the psycopg connection under the caller's transaction: ``emit`` takes an SQLAlchemy
session (services), ``emit_many_on_connection`` the group-commit writer's connection (ingestion), whose tenant
binding the caller has set. The deliveries and their jobs commit or roll back with the caller's work.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import driver_connection, settings_of
from northstar.core.queue import queue_app
from northstar.settings import WebhooksSettings
from northstar.webhooks.models import EVENT_TYPES
from northstar.webhooks.signing import new_message_id

DELIVER = "webhooks.deliver"
JOB_DELIVERIES = 50  # first attempts one job sends (together); each retry is a job of its own
Subscriptions = Mapping[str, tuple[uuid.UUID, ...]]  # event type -> active endpoints subscribed to it
_CACHE: dict[uuid.UUID, tuple[float, Subscriptions]] = {}
_INSERT = (
    "INSERT INTO webhooks.webhook_deliveries (id, org_id, endpoint_id, message_id, event_type, payload, status,"
    " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, 'pending', %s)"
)


def forget(org_id: uuid.UUID) -> None:
    """The org's endpoints changed: the next emit reads them again (in this process)."""
    _CACHE.pop(org_id, None)


def cached_subscriptions(org_id: uuid.UUID) -> Subscriptions | None:
    """The org's subscriptions when this process knows them fresh, else None (no round trip)."""
    cached = _CACHE.get(org_id)
    return cached[1] if cached is not None and cached[0] > time.monotonic() else None


async def subscriptions(
    connection: psycopg.AsyncConnection[Any], *, org_id: uuid.UUID, config: WebhooksSettings
) -> Subscriptions:
    found = cached_subscriptions(org_id)
    if found is not None:
        return found
    cursor = await connection.execute(
        "SELECT id, event_types FROM webhooks.endpoints WHERE org_id = %s AND status = 'active' ORDER BY id", (org_id,)
    )
    by_type: dict[str, list[uuid.UUID]] = defaultdict(list)
    for endpoint_id, event_types in await cursor.fetchall():
        for event_type in event_types:
            by_type[event_type].append(endpoint_id)
    found = {event_type: tuple(ids) for event_type, ids in by_type.items()}
    if config.subscription_cache_seconds > 0:
        _CACHE[org_id] = (time.monotonic() + config.subscription_cache_seconds, found)
    return found


def message(event_type: str, data: Any, *, at: datetime) -> dict[str, Any]:
    """The body every endpoint gets, in the spec's recommended shape: ``type``, ``timestamp`` and ``data``."""
    return {"type": event_type, "timestamp": at.isoformat(), "data": orjson.loads(orjson.dumps(data))}


async def emit_many_on_connection(
    connection: psycopg.AsyncConnection[Any],
    *,
    config: WebhooksSettings,
    org_id: uuid.UUID,
    event_type: str,
    items: Sequence[Any],
) -> int:
    """``items`` (each one message's ``data``) to every endpoint of the org subscribed to ``event_type``; returns
    how many deliveries were queued. The connection's transaction must be bound to ``org_id``."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    if not items:
        return 0
    endpoints = (await subscriptions(connection, org_id=org_id, config=config)).get(event_type, ())
    if not endpoints:
        return 0
    now = datetime.now(UTC)
    rows: list[tuple[Any, ...]] = []
    for data in items:
        payload = Jsonb(message(event_type, data, at=now))
        message_id = new_message_id()  # one message, the same id at every endpoint and every attempt
        rows.extend((uuid.uuid4(), org_id, endpoint, message_id, event_type, payload, now) for endpoint in endpoints)
    async with connection.cursor() as cursor:
        await cursor.executemany(_INSERT, rows)
    ids = [str(row[0]) for row in rows]
    jobs: list[dict[str, Any]] = [
        {"org_id": str(org_id), "delivery_ids": ids[start : start + JOB_DELIVERIES]}
        for start in range(0, len(ids), JOB_DELIVERIES)
    ]
    await queue_app.configure_task(DELIVER, connection=connection).batch_defer_async(*jobs)
    return len(rows)


async def emit(session: AsyncSession, *, org_id: uuid.UUID, event_type: str, data: Any) -> int:
    """Queue ``data`` as an ``event_type`` message to the org's subscribed endpoints, in the session's transaction
    (nothing is sent unless it commits); returns how many deliveries were queued, 0 cheaply when none subscribes."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    known = cached_subscriptions(org_id)
    if known is not None and not known.get(event_type):
        return 0
    return await emit_many_on_connection(
        await driver_connection(session),
        config=settings_of(session).webhooks,
        org_id=org_id,
        event_type=event_type,
        items=[data],
    )
