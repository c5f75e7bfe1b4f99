"""Report schedules: each kind is made at a local hour of a weekday (weekly) or a day of the month (monthly), in
the org's time zone, so 08:00 on Monday stays 08:00 across daylight-saving changes. A period is made once: the
schedule remembers the last period it made, however often the scheduler looks."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import service as metrics_service
from northstar.reports.models import ReportSchedule
from northstar.reports.service.generation import KINDS, last_complete_period, request_report

DEFAULTS: dict[str, dict[str, Any]] = {
    "weekly_digest": {"enabled": True, "weekday": 0, "day": 1, "hour": 8, "formats": ["html", "pdf"]},
    "monthly_report": {"enabled": True, "weekday": 0, "day": 1, "hour": 8, "formats": ["html", "pdf"]},
    "investor_update": {"enabled": False, "weekday": 0, "day": 1, "hour": 9, "formats": ["html", "pdf"]},
}


def _at(day: dt.date, hour: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)


def latest_run(schedule: ReportSchedule, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.date:
    """The local day of the schedule's latest run at or before ``now``."""
    local = now.astimezone(zone)
    if schedule.kind == "weekly_digest":
        day = local.date() - dt.timedelta(days=(local.weekday() - schedule.weekday) % 7)
        return day if _at(day, schedule.hour, zone) <= now else day - dt.timedelta(days=7)
    day = local.date().replace(day=schedule.day)
    if _at(day, schedule.hour, zone) <= now:
        return day
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=schedule.day)


def due_period(schedule: ReportSchedule, now: dt.datetime, zone: zoneinfo.ZoneInfo) -> tuple[dt.date, dt.date] | None:
    """The period its latest run reports on (the last one over by then), unless it was made already."""
    if not schedule.enabled:
        return None
    start, end = last_complete_period(schedule.kind, latest_run(schedule, now, zone))
    return None if schedule.last_period == start else (start, end)


async def schedules(session: AsyncSession, *, org_id: uuid.UUID) -> list[ReportSchedule]:
    """Every kind's schedule: the stored one, or the default until the org changes it."""
    rows = await session.scalars(select(ReportSchedule).where(ReportSchedule.org_id == org_id))
    stored = {row.kind: row for row in rows.all()}
    return [stored.get(kind) or ReportSchedule(org_id=org_id, kind=kind, **DEFAULTS[kind]) for kind in KINDS]


async def update_schedule(
    session: AsyncSession, *, org_id: uuid.UUID, kind: str, changes: dict[str, Any]
) -> ReportSchedule:
    found = await session.get(ReportSchedule, (org_id, kind))
    if found is None:
        found = ReportSchedule(org_id=org_id, kind=kind, **DEFAULTS[kind])
        session.add(found)
    for name, value in changes.items():
        setattr(found, name, value)
    await session.flush()
    await session.refresh(found)
    return found


async def run_due(session: AsyncSession, *, org_id: uuid.UUID, now: dt.datetime) -> int:
    """Queue the reports whose time has come (orgs with no metrics yet have nothing to report)."""
    if not await metrics_service.has_metrics(session, org_id=org_id):
        return 0
    zone = zoneinfo.ZoneInfo(await metrics_service.time_zone_of(session, org_id))
    made = 0
    for schedule in await schedules(session, org_id=org_id):
        period = due_period(schedule, now, zone)
        if period is None:
            continue
        await request_report(
            session,
            org_id=org_id,
            requested_by=None,
            kind=schedule.kind,
            period=period[0],
            formats=list(schedule.formats),
            scheduled=True,
        )
        await update_schedule(session, org_id=org_id, kind=schedule.kind, changes={"last_period": period[0]})
        made += 1
    return made
