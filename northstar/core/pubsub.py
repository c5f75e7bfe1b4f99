"""Live updates: PostgreSQL NOTIFY on ``CHANNEL``, fanned out to per-org subscribers in each process.

Publishers call ``pg_notify(CHANNEL, '{"org": …, "topic": …, "data": …}')`` inside the transaction that makes
the change (the trigger on ``jobs.jobs`` does), so it is delivered on commit and a listener never hears about
a change that rolled back. Payloads are limited to 8000 bytes: ids and states, never bulk data.

Each API process holds one LISTEN connection and hands events to
the subscribers of the event's org; several processes each get every event, which is what lets
``/events/stream`` work behind a load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import structlog

CHANNEL = "northstar_events"
SUBSCRIBER_BUFFER = 1000
log = structlog.get_logger("northstar.pubsub")


@dataclass(frozen=True)
class Event:
    org_id: str
    topic: str
    data: dict[str, Any]


class EventHub:
    """One LISTEN connection per process, started on the first subscriber and restarted if it drops."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.subscribers: dict[str, set[asyncio.Queue[Event]]] = {}
        self.listener: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    async for notice in connection.notifies():
                        self._dispatch(notice.payload)
            except (psycopg.Error, OSError) as exc:
                self.connected.clear()
                log.warning("event_listener_reconnecting", error=str(exc))
                await asyncio.sleep(1.0)

    def _dispatch(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
            event = Event(org_id=message["org"], topic=message["topic"], data=message["data"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        for queue in self.subscribers.get(event.org_id, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses events, not the process
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, org_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[Event]]:
        if self.listener is None or self.listener.done():
            self.listener = asyncio.create_task(self._listen())
        queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_BUFFER)
        self.subscribers.setdefault(str(org_id), set()).add(queue)
        try:
            await asyncio.wait_for(self.connected.wait(), timeout=10)
            yield queue
        finally:
            self.subscribers[str(org_id)].discard(queue)

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
