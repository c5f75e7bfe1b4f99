"""Rollup maintenance: visitor hashes folded into sketches, old minute rollups pruned, old raw months dropped.

Counts are exact the moment events commit (``ingest_staged`` updates them in the same statement). Unique visitors
take one more step: each ingest leaves the hashes it added in ``visitor_hashes``; ``fold_visitor_hashes`` merges
them into the minute, hour and day sketches and deletes them in one transaction, so every hash is counted once
(queries merge the not-yet-folded hashes too, so nothing waits for the fold).

Raw events are kept ``raw_retention_days`` (90 by default). A month's partition is dropped only when

* its last day is older than the retention,
* its rollups are complete: no event can land in it any more (events are at most 7 days old when stored) and a
  complete fold pass over every organization ran after that (``event_months.rolled_up_at``),
* every archiver has archived it (the retention task passes ``archives.archive_month``, which writes the month
  to Parquet in object storage and verifies it by reading it back, ``service/archives.py``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from northstar.socialproof.ingest import MAX_EVENT_AGE
from northstar.socialproof.sketch import Sketch

FOLD_BATCH = 5000
FREEZE_MARGIN = dt.timedelta(hours=1)

# Called with an owner connection and the month (its first day) before its partition is dropped; raising stops
# the drop. Archival of raw events to object storage registers here.
Archiver = Callable[[AsyncConnection, dt.date], Awaitable[None]]
ARCHIVERS: list[Archiver] = []

# The batch is materialized first: as ``id IN (subquery)`` the planner, which cannot estimate the tenant policy's
# filter, ran the locking subquery once per row of the table (a 5,000-row fold took minutes instead of 0.3 s).
_TAKE_HASHES = text("""
    WITH batch AS MATERIALIZED (
      SELECT id FROM socialproof.visitor_hashes ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED)
    DELETE FROM socialproof.visitor_hashes h USING batch WHERE h.id = batch.id
    RETURNING h.org_id, h.site_id, h.notification_id, h.minute, h.day, h.hashes""")
_LOCK_ORG_SKETCHES = text("SELECT pg_advisory_xact_lock(hashtextextended('visitor_sketches:' || :org, 0))")
_CURRENT_SKETCHES = text("""
    SELECT s.site_id, s.grain, s.bucket, s.notification_id, s.registers
    FROM socialproof.visitor_sketches s
    JOIN unnest(CAST(:sites AS uuid[]), CAST(:grains AS text[]), CAST(:buckets AS timestamptz[]),
                CAST(:notifications AS uuid[])) AS k(site_id, grain, bucket, notification_id)
      ON s.site_id = k.site_id AND s.grain = k.grain AND s.bucket = k.bucket AND s.notification_id = k.notification_id
    FOR UPDATE OF s""")
_UPSERT_SKETCHES = text("""
    INSERT INTO socialproof.visitor_sketches (org_id, site_id, grain, bucket, notification_id, registers)
    SELECT :org, k.site_id, k.grain, k.bucket, k.notification_id, k.registers
    FROM unnest(CAST(:sites AS uuid[]), CAST(:grains AS text[]), CAST(:buckets AS timestamptz[]),
                CAST(:notifications AS uuid[]), CAST(:registers AS bytea[]))
         AS k(site_id, grain, bucket, notification_id, registers)
    ON CONFLICT ON CONSTRAINT pk_visitor_sketches DO UPDATE SET registers = excluded.registers""")

_PRUNE_MINUTES = (
    text("DELETE FROM socialproof.event_counts WHERE grain = 'minute' AND bucket < :before"),
    text("DELETE FROM socialproof.visitor_sketches WHERE grain = 'minute' AND bucket < :before"),
)

SketchKey = tuple[uuid.UUID, str, dt.datetime, uuid.UUID]


async def fold_visitor_hashes(session: AsyncSession) -> int:
    """Fold this org's pending visitor hashes into its sketches (one batch); returns how many rows were folded."""
    rows = (await session.execute(_TAKE_HASHES, {"limit": FOLD_BATCH})).all()
    if not rows:
        return 0
    await session.execute(_LOCK_ORG_SKETCHES, {"org": str(rows[0].org_id)})
    added: dict[SketchKey, Sketch] = {}
    for row in rows:
        visitors = Sketch.of(row.hashes)
        hour = row.minute.astimezone(dt.UTC).replace(minute=0)  # hours are UTC hours
        for grain, bucket in (("minute", row.minute), ("hour", hour), ("day", row.day)):
            key = (row.site_id, grain, bucket, row.notification_id)
            added[key] = added[key].merge(visitors) if key in added else Sketch().merge(visitors)
    keys = list(added)
    columns = _columns(keys)
    for current in (await session.execute(_CURRENT_SKETCHES, columns)).all():
        key = (current.site_id, current.grain, current.bucket, current.notification_id)
        added[key].merge(Sketch.decode(current.registers))
    await session.execute(
        _UPSERT_SKETCHES, {**columns, "org": rows[0].org_id, "registers": [added[key].encode() for key in keys]}
    )
    return len(rows)


def _columns(keys: list[SketchKey]) -> dict[str, list[Any]]:
    return {
        "sites": [key[0] for key in keys],
        "grains": [key[1] for key in keys],
        "buckets": [key[2] for key in keys],
        "notifications": [key[3] for key in keys],
    }


async def prune_minute_rollups(session: AsyncSession, *, keep_days: int) -> int:
    """Minute counts and sketches serve live charts only; older than ``keep_days`` they go (hours and days stay)."""
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=keep_days)
    deleted = 0
    for statement in _PRUNE_MINUTES:
        result = await session.execute(statement, {"before": before})
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


async def event_months(connection: AsyncConnection) -> list[dt.date]:
    """The months that have a raw event partition."""
    names = (
        await connection.scalars(
            text("""
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'socialproof' AND p.relname = 'notification_events'""")
        )
    ).all()
    return sorted(dt.date(int(name[-7:-3]), int(name[-2:]), 1) for name in names)


async def mark_rolled_up(connection: AsyncConnection, *, fold_started: dt.datetime) -> int:
    """After a complete fold pass that started at ``fold_started``: months frozen before it are rolled up."""
    frozen = [
        month
        for month in await event_months(connection)
        if _as_utc(next_month(month)) + MAX_EVENT_AGE + FREEZE_MARGIN <= fold_started
    ]
    if not frozen:
        return 0
    await connection.execute(
        text("""
        INSERT INTO socialproof.event_months (month, rolled_up_at) SELECT unnest(CAST(:months AS date[])), :at
        ON CONFLICT (month) DO UPDATE SET rolled_up_at = coalesce(event_months.rolled_up_at, excluded.rolled_up_at)
        """),
        {"months": frozen, "at": fold_started},
    )
    return len(frozen)


def _as_utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


async def drop_expired_months(
    connection: AsyncConnection,
    *,
    retention_days: int,
    now: dt.datetime | None = None,
    archivers: Sequence[Archiver] | None = None,
) -> list[dt.date]:
    """Drop the raw partitions of months past retention whose rollups are complete and which are archived
    (by ``archivers``, else the registered ``ARCHIVERS``)."""
    now = now or dt.datetime.now(dt.UTC)
    archivers = ARCHIVERS if archivers is None else archivers
    rolled_up = set(
        (
            await connection.scalars(
                text("SELECT month FROM socialproof.event_months WHERE rolled_up_at IS NOT NULL AND dropped_at IS NULL")
            )
        ).all()
    )
    dropped = []
    for month in await event_months(connection):
        if _as_utc(next_month(month)) > now - dt.timedelta(days=retention_days) or month not in rolled_up:
            continue
        for archive in archivers:
            await archive(connection, month)
        await connection.execute(text("SELECT socialproof.drop_event_month(:month)"), {"month": month})
        await connection.execute(
            text(
                "UPDATE socialproof.event_months SET dropped_at = :now, archived_at = CASE WHEN :archived"
                " THEN :now END WHERE month = :month"
            ),
            {"now": now, "archived": bool(archivers), "month": month},
        )
        dropped.append(month)
    return dropped


async def delete_old_salts(connection: AsyncConnection) -> int:
    """Yesterday's salt is kept (late events of the day before); older ones go, and with them any link."""
    return int(
        (
            await connection.execute(
                text("DELETE FROM socialproof.visitor_salts WHERE day < (now() AT TIME ZONE 'UTC')::date - 1")
            )
        ).rowcount
        or 0
    )
