"""Live updates: PostgreSQL NOTIFY on ``CHANNEL`` (and Redis pub/sub when configured), fanned out in each process.

A message is ``{"id": …, "org": …, "topic": …, "data": …}``, plus ``"user"`` when it is addressed to one user (an
inbox), whose streams alone get it. Triggers publish with ``pg_notify`` inside the transaction that makes the
change (``jobs.jobs`` does), as does ``publish_on_commit`` from code, so a listener never hears about a change that
rolled back; application code publishes after its commit with ``EventHub.publish``, which goes to Redis when
``REDIS_URL`` is set (high-volume fan-out without NOTIFY's commit-time lock) and to NOTIFY otherwise, or when
Redis cannot be reached (every process listens on both, so fan-out goes on while Redis is down).
Payloads are limited to 8000 bytes: ids, states and small summaries, never bulk data.

Each API process holds one LISTEN connection (and one Redis subscription) and hands events to the subscribers of
the event's org; several processes each get every event, which is what lets ``/events/stream`` work behind a
load balancer. Messages published by the application carry their id, the same in every process, and each
process keeps the last ``REPLAY_BUFFER`` messages of an org, so a client that reconnects with ``Last-Event-ID``
gets what it missed, from whichever process it reaches.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
import structlog
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.dbguard import ServerWatch
from northstar.core.permissions import Principal

CHANNEL = "northstar_events"
SUBSCRIBER_BUFFER = 1000
REPLAY_BUFFER = 2000
MAX_PAYLOAD = 7900

# What a caller must be allowed to read to receive a topic's events, by topic prefix, from the installed manifests;
# a topic with no rule goes to nobody.
TOPIC_RESOURCES: dict[str, str] = {}


def register_topics(rules: Mapping[str, str]) -> None:
    for prefix, resource in rules.items():
        if TOPIC_RESOURCES.setdefault(prefix, resource) != resource:
            raise ValueError(f"the event topic {prefix!r} is declared twice, for different resources")


def may_receive(principal: Principal, event: Event) -> bool:
    """The reader may read what the topic is about, and the event is addressed to everyone or to this user."""
    if event.user_id is not None and event.user_id != str(principal.user_id):
        return False
    topic = event.topic
    resource = next((resource for prefix, resource in TOPIC_RESOURCES.items() if topic.startswith(prefix)), None)
    return resource is not None and principal.can("read", resource)


log = structlog.get_logger("northstar.pubsub")
_local_ids = itertools.count()


def new_event_id() -> str:
    """Unique across processes and ordered by time: milliseconds, then randomness."""
    return f"{int(time.time() * 1000):013d}-{os.urandom(5).hex()}"


@dataclass(frozen=True)
class Event:
    id: str
    org_id: str
    topic: str
    data: dict[str, Any]
    user_id: str | None = None  # addressed to this user alone (their inbox), else to every reader of the topic


Listener = Callable[[Event], None]


class Subscription:
    """What a subscriber gets: the missed events it asked for (``replay``) and then the live ones (``queue``)."""

    def __init__(self, replay: list[Event], queue: asyncio.Queue[Event], *, lost: bool) -> None:
        self.replay = replay
        self.queue = queue
        self.lost = lost  # the Last-Event-ID is no longer buffered: the client must reload its state


class EventHub:
    """One LISTEN connection per process (plus Redis when configured), restarted if it drops."""

    def __init__(self, conninfo: str, redis: Any = None, *, watch: ServerWatch | None = None) -> None:
        self.conninfo = conninfo
        self.redis = redis
        self.watch = watch  # the publishing connection fails fast on a silent server
        self.subscribers: dict[str, set[asyncio.Queue[Event]]] = {}
        self.history: dict[str, deque[Event]] = {}
        self.listeners: list[Listener] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()
        self.publisher: psycopg.AsyncConnection[Any] | None = None
        self.publishing = asyncio.Lock()

    def start(self) -> None:
        """Listen now (idempotent); needed before the first subscriber when listeners keep caches fresh."""
        if self.tasks and not all(task.done() for task in self.tasks):
            return
        self.tasks = [asyncio.create_task(self._listen_postgres())]
        if self.redis is not None:
            self.tasks.append(asyncio.create_task(self._listen_redis()))

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener`` (synchronously, in this process) for every event of every org."""
        self.listeners.append(listener)

    async def _listen_postgres(self) -> None:
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

    async def _listen_redis(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as channel:
                    await channel.subscribe(CHANNEL)
                    async for message in channel.listen():
                        if message.get("type") == "message":
                            self._dispatch(message["data"])
            except (OSError, RedisError) as exc:
                log.warning("redis_listener_reconnecting", error=str(exc))
                await asyncio.sleep(1.0)

    def _dispatch(self, payload: str | bytes) -> None:
        try:
            message = orjson.loads(payload)
            event = Event(
                id=str(message.get("id") or f"{int(time.time() * 1000):013d}-local{next(_local_ids)}"),
                org_id=message["org"],
                topic=message["topic"],
                data=message["data"],
                user_id=message.get("user"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        self.history.setdefault(event.org_id, deque(maxlen=REPLAY_BUFFER)).append(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:  # a broken listener must not stop delivery to the others
                log.error("event_listener_failed", error=str(exc))
        for queue in self.subscribers.get(event.org_id, ()):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled client loses events, not the process
                queue.put_nowait(event)

    def _replay_after(self, org_id: str, last_event_id: str | None) -> tuple[list[Event], bool]:
        if not last_event_id:
            return [], False
        history = list(self.history.get(org_id, ()))
        for position, event in enumerate(history):
            if event.id == last_event_id:
                return history[position + 1 :], False
        # Not buffered: nothing was missed only if it is newer than all this process has seen.
        return [], not (history and last_event_id > history[-1].id)

    @contextlib.asynccontextmanager
    async def subscribe(self, org_id: uuid.UUID, *, last_event_id: str | None = None) -> AsyncIterator[Subscription]:
        self.start()
        queue: asyncio.Queue[Event] = asyncio.Queue(SUBSCRIBER_BUFFER)
        key = str(org_id)
        # Registering and reading the buffer happen with no await between them: nothing falls in the gap.
        self.subscribers.setdefault(key, set()).add(queue)
        replay, lost = self._replay_after(key, last_event_id)
        try:
            await asyncio.wait_for(self.connected.wait(), timeout=10)
            yield Subscription(replay, queue, lost=lost)
        finally:
            self.subscribers[key].discard(queue)

    async def publish(self, org_id: uuid.UUID, topic: str, data: dict[str, Any]) -> str:
        """Send an event to every process (after the change it describes has committed); returns its id."""
        event_id, payload = _message(org_id, topic, data, user_id=None)
        if self.redis is not None:
            try:
                await self.redis.publish(CHANNEL, payload)
                return event_id
            except (OSError, RedisError) as exc:
                log.warning("redis_publish_failed", error=str(exc))
        async with self.publishing:
            try:
                if self.publisher is None or self.publisher.closed:
                    self.publisher = await (
                        self.watch.connect(autocommit=True)
                        if self.watch is not None
                        else psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                    )
                await self.publisher.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload.decode()))
            except (psycopg.Error, OSError):
                if self.publisher is not None:
                    await self.publisher.close()
                self.publisher = None
                raise
        return event_id

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.publisher is not None:
            await self.publisher.close()


def _message(org_id: uuid.UUID, topic: str, data: dict[str, Any], *, user_id: uuid.UUID | None) -> tuple[str, bytes]:
    event_id = new_event_id()
    message = {"id": event_id, "org": str(org_id), "topic": topic, "data": data}
    if user_id is not None:
        message["user"] = str(user_id)
    payload = orjson.dumps(message)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"event payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return event_id, payload


async def publish_many_on_commit(
    session: AsyncSession, org_id: uuid.UUID, topic: str, events: Sequence[tuple[uuid.UUID | None, dict[str, Any]]]
) -> None:
    """``publish_on_commit`` of many events (each to its user, or to the org with None) in one statement: an alert
    to a thousand members is one round trip, not a thousand."""
    payloads = [_message(org_id, topic, data, user_id=user_id)[1].decode() for user_id, data in events]
    if payloads:
        await session.execute(
            text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"),
            {"channel": CHANNEL, "payloads": payloads},
        )


async def publish_on_commit(
    session: AsyncSession, org_id: uuid.UUID, topic: str, data: dict[str, Any], *, user_id: uuid.UUID | None = None
) -> str:
    """Send an event with ``pg_notify`` in the session's transaction: listeners hear it when, and only if, the
    transaction commits (queue workers, which hold no ``EventHub``, publish this way). With ``user_id`` only that
    user's streams get it."""
    event_id, payload = _message(org_id, topic, data, user_id=user_id)
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload.decode()}
    )
    return event_id
