"""Group commit of social proof events: many requests, one ``COPY`` and one commit, each answered once durable.

A request hands its rows to the ``EventWriter`` and waits. A flusher takes everything pending (up to
``ingest_max_batch`` rows), ``COPY``s it into the connection's ``event_stage`` temporary table and, per organization
in the batch, runs ``socialproof.ingest_staged`` under that org's row-level security context; that function skips
event ids already stored (idempotency), inserts the rest and updates the rollups, conversions and visitor hashes in
the same statement (``socialproof.ingest_profiled`` wraps it to fold the stored events into the visitor profiles as
well, one upsert per organization and flush, unless ``visitor_profiles`` is off). Only after the commit are the
waiting requests answered, so an accepted event is never held only in memory. While one flusher commits, the next
batch gathers and the other flusher takes it: under load batches grow by themselves, with no timer adding latency
when traffic is light.

A failed batch fails its requests (503, retry is safe: ids make it idempotent), except that a batch of several
requests that fails on its data is retried one request at a time, so one bad request cannot sink the others.
Memory is bounded: past ``ingest_max_pending`` waiting rows new requests get 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg import sql
from psycopg.types.json import Jsonb

from northstar.core.db import APP_ROLE, tenant_binding
from northstar.core.dbguard import ServerWatch
from northstar.core.http import AppError
from northstar.settings import SocialProofSettings

log = structlog.get_logger("northstar.socialproof.ingest")
MAX_EVENT_AGE = timedelta(days=7)
DEDUPLICATION_MARGIN = timedelta(minutes=1)

STAGE_COLUMNS = (
    "id",
    "org_id",
    "site_id",
    "event_type",
    "event_name",
    "notification_id",
    "visitor_id",
    "url",
    "payload",
    "occurred_at",
    "variant_id",
    "device",
    "custom",
)
_CREATE_STAGE = """
    CREATE TEMP TABLE IF NOT EXISTS event_stage (
      id uuid NOT NULL, org_id uuid NOT NULL, site_id uuid NOT NULL, event_type varchar(20) NOT NULL,
      event_name varchar(100), notification_id uuid, visitor_id varchar(64), url text, payload jsonb NOT NULL,
      occurred_at timestamptz NOT NULL, variant_id uuid, device varchar(10), custom jsonb
    ) ON COMMIT DELETE ROWS"""
_COPY_STAGE = f"COPY event_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN"


class IngestUnavailable(AppError):
    status, code = 503, "events_unavailable"

    def __init__(
        self, message: str = "Events cannot be stored right now; retry shortly (event ids make it safe)"
    ) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class EventRejected(AppError):
    status, code = 422, "event_rejected"


@dataclass(frozen=True)
class EventRow:
    """One event as stored; ``occurred_at`` is already clamped (see ``clamp_time``)."""

    id: uuid.UUID
    org_id: uuid.UUID
    site_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    event_name: str | None = None
    notification_id: uuid.UUID | None = None
    visitor_id: str | None = None
    url: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    variant_id: uuid.UUID | None = None  # the A/B test variant the widget showed (impressions and clicks)
    # for the visitor's profile, not stored with the event: desktop, mobile or tablet, and the custom values the
    # event gave itself (the payload's ``custom`` has the fields' defaults filled in too)
    device: str | None = None
    custom: dict[str, Any] | None = None

    def copy_values(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.org_id,
            self.site_id,
            self.event_type,
            self.event_name,
            self.notification_id,
            self.visitor_id,
            self.url,
            Jsonb(self.payload),
            self.occurred_at,
            self.variant_id,
            self.device,
            Jsonb(self.custom) if self.custom else None,
        )


def clamp_time(moment: datetime | None, now: datetime) -> datetime:
    """Clock skew is not the caller's fault: future times become now, very old ones the oldest kept."""
    if moment is None:
        return now
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return min(max(moment, now - MAX_EVENT_AGE), now)


@dataclass(frozen=True)
class WriteResult:
    accepted: int
    duplicates: int


@dataclass
class _Pending:
    rows: list[EventRow]
    done: asyncio.Future[WriteResult]


# (org, site, stored rows) after each commit: how live streams and caches hear about new events.
StoredListener = Callable[[uuid.UUID, uuid.UUID, list[EventRow]], Awaitable[None]]
# (connection, org, the org's new rows) inside the batch's transaction: work that must commit exactly when the
# events do (webhook deliveries). An exception fails the batch, as a failed COPY would.
StoringHook = Callable[[psycopg.AsyncConnection[Any], uuid.UUID, list[EventRow]], Awaitable[None]]


class EventWriter:
    """``watch`` (the API's ``Database.watch``) makes the flushers' connections fail fast on a silent server."""

    def __init__(self, conninfo: str, settings: SocialProofSettings, *, watch: ServerWatch | None = None) -> None:
        self.conninfo = conninfo
        self.watch = watch
        self.settings = settings
        self.pending: list[_Pending] = []
        self.pending_rows = 0
        self.wakeup = asyncio.Event()
        self.flushers: list[asyncio.Task[None]] = []
        self.listeners: list[StoredListener] = []
        self.hooks: list[StoringHook] = []
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False

    def add_listener(self, listener: StoredListener) -> None:
        self.listeners.append(listener)

    def add_hook(self, hook: StoringHook) -> None:
        self.hooks.append(hook)

    async def write(self, rows: list[EventRow]) -> WriteResult:
        """Store ``rows`` durably (idempotent by site and event id); returns once committed."""
        if not rows:
            return WriteResult(0, 0)
        if self.closing or self.pending_rows + len(rows) > self.settings.ingest_max_pending:
            raise IngestUnavailable("Too many events are waiting to be stored; retry shortly")
        self._start()
        done: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self.pending.append(_Pending(rows, done))
        self.pending_rows += len(rows)
        self.idle.clear()
        self.wakeup.set()
        try:
            return await asyncio.wait_for(asyncio.shield(done), self.settings.ingest_timeout_seconds)
        except TimeoutError:
            raise IngestUnavailable() from None

    def _start(self) -> None:
        if not self.flushers:
            self.flushers = [
                asyncio.create_task(self._flusher(number)) for number in range(self.settings.ingest_connections)
            ]

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self.pending and (not batch or size + len(self.pending[0].rows) <= self.settings.ingest_max_batch):
            item = self.pending.pop(0)
            batch.append(item)
            size += len(item.rows)
        self.pending_rows -= size
        if not self.pending:
            self.wakeup.clear()
        return batch

    async def _flusher(self, number: int) -> None:
        connection: psycopg.AsyncConnection[Any] | None = None
        while True:
            await self.wakeup.wait()
            batch = self._take_batch()
            if not batch:
                continue
            # A connection that died while idle (the database restarted) fails only when used: the batch is tried
            # once more on a new one (event ids make that safe), so it is not refused after the database is back.
            for retry in (True, False):
                reused = connection is not None and not connection.closed
                try:
                    if connection is None or connection.closed:
                        connection = await self._connect()
                    await self._flush(connection, batch)
                except psycopg.OperationalError as exc:
                    if connection is not None:
                        await connection.close()
                    connection = None
                    batch = [item for item in batch if not item.done.done()]
                    if reused and retry and batch:
                        continue
                    log.warning("event_flush_failed", flusher=number, error=str(exc))
                    _fail(batch, IngestUnavailable())
                except Exception as exc:
                    log.error("event_flush_error", flusher=number, exc_info=exc)
                    _fail(batch, IngestUnavailable())
                break
            if not self.pending and not self.in_flight:
                self.idle.set()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = await (
            self.watch.connect() if self.watch is not None else psycopg.AsyncConnection.connect(self.conninfo)
        )
        async with connection.transaction():
            await connection.execute(_CREATE_STAGE)
            await connection.execute(sql.SQL("GRANT SELECT ON event_stage TO {}").format(sql.Identifier(APP_ROLE)))
        await _ensure_partitions(connection)
        return connection

    async def _flush(self, connection: psycopg.AsyncConnection[Any], batch: list[_Pending]) -> None:
        self.in_flight += 1
        try:
            stored = await _store(
                connection,
                [row for item in batch for row in item.rows],
                self.hooks,
                profiles=self.settings.visitor_profiles,
            )
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            if len(batch) == 1:
                log.error("event_batch_rejected", error=str(exc), rows=len(batch[0].rows))
                _fail(batch, EventRejected("These events could not be stored; the error was logged"))
                return
            for item in batch:  # isolate the bad request; the others are stored
                await self._flush(connection, [item])
            return
        finally:
            self.in_flight -= 1
        fresh = []
        for item in batch:
            accepted = []
            for row in item.rows:  # in order: a repeated id is accepted once, then a duplicate
                if (row.site_id, row.id) in stored:
                    stored.discard((row.site_id, row.id))
                    accepted.append(row)
            fresh.extend(accepted)
            if not item.done.done():
                item.done.set_result(WriteResult(len(accepted), len(item.rows) - len(accepted)))
        await self._announce(fresh)

    async def _announce(self, rows: list[EventRow]) -> None:
        by_site: dict[tuple[uuid.UUID, uuid.UUID], list[EventRow]] = defaultdict(list)
        for row in rows:
            by_site[(row.org_id, row.site_id)].append(row)
        for (org_id, site_id), site_rows in by_site.items():
            for listener in self.listeners:
                try:
                    await listener(org_id, site_id, site_rows)
                except Exception as exc:  # the events are stored; a failed announcement loses only liveness
                    log.warning("event_listener_failed", error=str(exc))

    async def close(self) -> None:
        """Stop taking events; what is already waiting is still stored."""
        self.closing = True
        if self.flushers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), self.settings.ingest_timeout_seconds)
        for task in self.flushers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _fail(batch: list[_Pending], error: Exception) -> None:
    for item in batch:
        if not item.done.done():
            item.done.set_exception(error)
            item.done.exception()  # retrieved here too: a request that timed out is not waiting any more


async def _ensure_partitions(connection: psycopg.AsyncConnection[Any]) -> None:
    """This month's and next month's partitions, so ingestion never waits on the daily task (owner only)."""
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT socialproof.ensure_event_partitions(now()::date),"
                " socialproof.ensure_event_partitions((now() + interval '1 month')::date)"
            )
    except psycopg.errors.InsufficientPrivilege:
        log.info("event_partitions_left_to_the_owner")


async def _store(
    connection: psycopg.AsyncConnection[Any],
    rows: list[EventRow],
    hooks: Sequence[StoringHook] = (),
    *,
    profiles: bool,
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """One transaction: COPY the rows, ingest them org by org (with ``profiles``, folding them into the visitor
    profiles in the same statement), run the hooks on each org's new rows; returns the (site, id) pairs that were
    new."""
    ingest = sql.Identifier("socialproof", "ingest_profiled" if profiles else "ingest_staged")
    oldest = datetime.now(UTC) - MAX_EVENT_AGE - DEDUPLICATION_MARGIN
    statements: list[sql.Composable] = []
    for org_id in sorted({row.org_id for row in rows}):
        statements.append(tenant_binding(org_id=org_id))
        statements.append(
            sql.SQL("SELECT site_id, id FROM {}({}, {})").format(ingest, sql.Literal(org_id), sql.Literal(oldest))
        )
    stored: set[tuple[uuid.UUID, uuid.UUID]] = set()
    async with connection.transaction(), connection.cursor() as cursor:
        async with cursor.copy(_COPY_STAGE) as copy:
            for row in rows:
                await copy.write_row(row.copy_values())
        await cursor.execute(sql.SQL("; ").join(statements))
        for position in range(len(statements)):
            if position % 2 == 1:  # each org's ingest follows its binding
                stored.update((site_id, event_id) for site_id, event_id in await cursor.fetchall())
            cursor.nextset()
        if hooks and stored:
            await _run_hooks(connection, rows, stored, hooks)
    return stored


async def _run_hooks(
    connection: psycopg.AsyncConnection[Any],
    rows: list[EventRow],
    stored: set[tuple[uuid.UUID, uuid.UUID]],
    hooks: Sequence[StoringHook],
) -> None:
    """Each org's new rows (a repeated id once) to each hook; a hook that writes binds the transaction to the org
    first (``tenant_binding``), so one with nothing to do costs no round trip."""
    fresh: dict[uuid.UUID, list[EventRow]] = defaultdict(list)
    seen: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for row in rows:
        key = (row.site_id, row.id)
        if key in stored and key not in seen:
            seen.add(key)
            fresh[row.org_id].append(row)
    for org_id, org_rows in fresh.items():
        for hook in hooks:
            await hook(connection, org_id, org_rows)
