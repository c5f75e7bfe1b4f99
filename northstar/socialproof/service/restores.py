"""What an org sees of the archives, and restores: one org's rows of a period of an archive, brought back into
``restored_events`` (under its RLS) for a number of days, then dropped by a periodic task."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bulk_insert, execute_count, fetch_rows_page, get_in_org
from northstar.core.http import Conflict, NotFound, Unprocessable
from northstar.core.queue import enqueue_named
from northstar.core.storage import ObjectStore
from northstar.socialproof.models import Archive, ArchiveOrg, ArchiveRestore, RestoredEvent, Site
from northstar.socialproof.service import archives

RESTORE_TASK = "socialproof.restore_archive"
log = structlog.get_logger("northstar.socialproof.restores")
_INSERT_BATCH = 5000


@dataclass(frozen=True)
class OrgArchive:
    """An archive as one org sees it: its share of the rows and time range, never other orgs'."""

    id: uuid.UUID
    month: dt.date
    status: str
    schema_version: int
    range_start: dt.datetime
    range_end: dt.datetime
    rows: int
    first_occurred_at: dt.datetime
    last_occurred_at: dt.datetime
    created_at: dt.datetime
    verified_at: dt.datetime | None


def _org_archives() -> Select[*tuple[Any, ...]]:
    return select(
        Archive.id,
        Archive.month,
        Archive.status,
        Archive.schema_version,
        Archive.range_start,
        Archive.range_end,
        ArchiveOrg.rows,
        ArchiveOrg.first_occurred_at,
        ArchiveOrg.last_occurred_at,
        Archive.created_at,
        Archive.verified_at,
    ).join(ArchiveOrg, ArchiveOrg.archive_id == Archive.id)


def _as_org_archive(row: Any) -> OrgArchive:
    return OrgArchive(*row[:11])


async def list_archives(
    session: AsyncSession, *, status: str | None, offset: int, limit: int
) -> tuple[list[OrgArchive], int]:
    """The archives holding events of the session's org (``archive_orgs`` is under its RLS), newest month first."""
    query = _org_archives().order_by(Archive.month.desc(), Archive.created_at.desc())
    if status is not None:
        query = query.where(Archive.status == status)
    rows, total = await fetch_rows_page(session, query, offset=offset, limit=limit)
    return [_as_org_archive(row) for row in rows], total


async def get_archive(session: AsyncSession, *, archive_id: uuid.UUID) -> OrgArchive:
    row = (await session.execute(_org_archives().where(Archive.id == archive_id))).first()
    if row is None:  # another org's archive, or none: the same answer
        raise NotFound("Archive not found", code="archive_not_found")
    return _as_org_archive(row)


async def request_restore(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    archive_id: uuid.UUID,
    start: dt.datetime | None,
    end: dt.datetime | None,
    site_id: uuid.UUID | None,
    keep_days: int | None,
    max_keep_days: int,
    requested_by: uuid.UUID | None,
) -> tuple[ArchiveRestore, int]:
    """Record a restore of the org's rows of ``[start, end)`` (default: the whole archive) and queue its job."""
    archive = await get_archive(session, archive_id=archive_id)
    if archive.status != "verified":
        raise Conflict("Only a verified archive can be restored", code="archive_not_verified")
    if start is not None and end is not None and start >= end:
        raise Unprocessable(
            "start must be before end",
            details=[{"field": "body.end", "message": "must be after start", "type": "range"}],
        )
    period_start = start or archive.range_start
    period_end = end or archive.range_end
    if period_end <= archive.range_start or period_start >= archive.range_end:
        raise Unprocessable(
            "The period does not overlap the archive's month",
            details=[{"field": "body.start", "message": "outside the archive's month", "type": "range"}],
        )
    days = max_keep_days if keep_days is None else keep_days
    if not 1 <= days <= max_keep_days:
        raise Unprocessable(
            f"keepDays must be between 1 and {max_keep_days}",
            details=[{"field": "body.keepDays", "message": f"between 1 and {max_keep_days}", "type": "range"}],
        )
    if site_id is not None:
        await get_in_org(session, Site, site_id, org_id=org_id, missing="Site not found")
    restore = ArchiveRestore(
        org_id=org_id,
        archive_id=archive_id,
        site_id=site_id,
        period_start=max(period_start, archive.range_start),
        period_end=min(period_end, archive.range_end),
        status="pending",
        rows=0,
        keep_days=days,
        requested_by=requested_by,
    )
    session.add(restore)
    await session.flush()
    job_id = await enqueue_named(session, RESTORE_TASK, org_id=org_id, restore_id=str(restore.id))
    return restore, job_id


async def get_restore(session: AsyncSession, *, org_id: uuid.UUID, restore_id: uuid.UUID) -> ArchiveRestore:
    return await get_in_org(session, ArchiveRestore, restore_id, org_id=org_id, missing="Restore not found")


async def list_restores(
    session: AsyncSession, *, archive_id: uuid.UUID | None, offset: int, limit: int
) -> tuple[list[ArchiveRestore], int]:
    query = select(ArchiveRestore).order_by(ArchiveRestore.created_at.desc())
    if archive_id is not None:
        query = query.where(ArchiveRestore.archive_id == archive_id)
    rows, total = await fetch_rows_page(session, query, offset=offset, limit=limit)
    return [row[0] for row in rows], total


async def run_restore(session: AsyncSession, *, restore_id: uuid.UUID, store: ObjectStore) -> int:
    """The restore job: the archive is downloaded and checked against its manifest, the org's rows of the period
    inserted (the table's policy checks each); a failure leaves no rows and says why."""
    restore = await session.get(ArchiveRestore, restore_id)
    if restore is None or restore.status not in ("pending", "running"):
        return 0
    archive = (await session.execute(select(Archive).where(Archive.id == restore.archive_id))).scalar_one()
    restore.status = "running"
    await session.flush()
    try:
        async with session.begin_nested():
            rows = await _load(session, restore, archive, store)
    except archives.ArchiveMismatch as exc:
        return await _fail(session, restore, str(exc))
    except Exception as exc:  # recorded for the org; the details go to the worker's log only
        log.exception("socialproof.restore_failed", restore_id=str(restore.id))
        return await _fail(session, restore, f"the archive could not be restored: {type(exc).__name__}")
    now = dt.datetime.now(dt.UTC)
    restore.status, restore.rows, restore.finished_at = "ready", rows, now
    restore.expires_at = now + dt.timedelta(days=restore.keep_days)
    await session.flush()
    return rows


async def _fail(session: AsyncSession, restore: ArchiveRestore, error: str) -> int:
    restore.status, restore.error, restore.finished_at = "failed", error, dt.datetime.now(dt.UTC)
    await session.flush()
    return 0


async def _load(session: AsyncSession, restore: ArchiveRestore, archive: Archive, store: ObjectStore) -> int:
    with archives.scratch() as path:
        checksum, size = await archives.download(store, archive.object_key, path)
        if checksum != archive.checksum or size != archive.size_bytes:
            raise archives.ArchiveMismatch("the archive no longer matches its checksum")
        batches = archives.batches_of_org(
            path,
            org_id=restore.org_id,
            start=restore.period_start,
            end=restore.period_end,
            site_id=restore.site_id,
        )
        total = 0
        while (batch := await anyio.to_thread.run_sync(next, batches, None)) is not None:
            rows = [_restored(restore, row) for row in batch.to_pylist()]
            for first in range(0, len(rows), _INSERT_BATCH):
                await bulk_insert(session, RestoredEvent, rows[first : first + _INSERT_BATCH])
            total += len(rows)
    return total


def _restored(restore: ArchiveRestore, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "org_id": restore.org_id,
        "restore_id": restore.id,
        "id": row["id"],
        "site_id": row["site_id"],
        "event_type": row["event_type"],
        "event_name": row["event_name"],
        "notification_id": row["notification_id"],
        "visitor_id": row["visitor_id"],
        "url": row["url"],
        "payload": row["payload"],
        "variant_id": row["variant_id"],
        "occurred_at": row["occurred_at"],
        "received_at": row["received_at"],
    }


async def restored_events(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    restore_id: uuid.UUID,
    event_type: str | None,
    site_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of a ready restore's events, oldest first."""
    restore = await get_restore(session, org_id=org_id, restore_id=restore_id)
    if restore.status == "expired":
        raise Conflict("This restore has expired; restore the archive again", code="restore_expired")
    if restore.status != "ready":
        raise Conflict(f"This restore is {restore.status}", code="restore_not_ready")
    table = RestoredEvent.__table__
    query = (
        select(*(table.c[name] for name in archives.COLUMNS if name != "org_id"))
        .where(table.c.restore_id == restore_id)
        .order_by(table.c.occurred_at, table.c.id)
    )
    if event_type is not None:
        query = query.where(table.c.event_type == event_type)
    if site_id is not None:
        query = query.where(table.c.site_id == site_id)
    rows, total = await fetch_rows_page(session, query, offset=offset, limit=limit)
    return [dict(row._mapping) for row in rows], total


async def expire_restores(session: AsyncSession, *, now: dt.datetime | None = None) -> int:
    """Drop the rows of the session org's restores past their time; the restore stays, marked expired."""
    now = now or dt.datetime.now(dt.UTC)
    expired = (
        await session.scalars(
            select(ArchiveRestore.id).where(ArchiveRestore.status == "ready", ArchiveRestore.expires_at <= now)
        )
    ).all()
    if not expired:
        return 0
    removed = await execute_count(session, delete(RestoredEvent).where(RestoredEvent.restore_id.in_(expired)))
    await session.execute(update(ArchiveRestore).where(ArchiveRestore.id.in_(expired)).values(status="expired"))
    return removed
