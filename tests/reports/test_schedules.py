"""Report schedules: local hours across daylight-saving changes, a period made once however often the scheduler
looks, and the schedule routes."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import httpx
import pytest

from northstar.core.db import Database
from northstar.reports.models import ReportSchedule
from northstar.reports.service import schedules
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _schedule(kind: str, **changes: object) -> ReportSchedule:
    return ReportSchedule(org_id=uuid.uuid4(), kind=kind, **{**schedules.DEFAULTS[kind], **changes})


@pytest.mark.parametrize(
    ("zone", "now", "due"),
    [
        # Berlin leaves winter time on Sunday 2026-03-29: Monday 08:00 is 07:00 UTC before, 06:00 UTC after
        (BERLIN, "2026-03-23T06:59:59", None),
        (BERLIN, "2026-03-23T07:00:00", ("2026-03-16", "2026-03-22")),
        (BERLIN, "2026-03-30T05:59:59", ("2026-03-16", "2026-03-22")),
        (BERLIN, "2026-03-30T06:00:00", ("2026-03-23", "2026-03-29")),
        # and goes back on Sunday 2026-10-25: Monday 08:00 is 07:00 UTC again
        (BERLIN, "2026-10-26T06:30:00", ("2026-10-12", "2026-10-18")),
        (BERLIN, "2026-10-26T07:00:00", ("2026-10-19", "2026-10-25")),
        # New York moves on Sunday 2026-03-08: Monday 08:00 is 13:00 UTC before, 12:00 UTC after
        (NEW_YORK, "2026-03-09T11:59:00", ("2026-02-23", "2026-03-01")),
        (NEW_YORK, "2026-03-09T12:00:00", ("2026-03-02", "2026-03-08")),
    ],
)
def test_the_weekly_digest_runs_at_eight_local_across_dst(
    zone: zoneinfo.ZoneInfo, now: str, due: tuple[str, str] | None
) -> None:
    last = dt.date(2026, 3, 9) if due is None else None  # the week before was made already
    schedule = _schedule("weekly_digest", last_period=last)
    found = schedules.due_period(schedule, _utc(now), zone)
    expected = None if due is None else tuple(dt.date.fromisoformat(day) for day in due)
    assert found == expected


def test_monthly_reports_run_on_their_day_and_a_period_once() -> None:
    schedule = _schedule("monthly_report")
    assert schedules.due_period(schedule, _utc("2026-04-01T05:59:00"), BERLIN) == (
        dt.date(2026, 2, 1),
        dt.date(2026, 2, 28),
    )
    march = schedules.due_period(schedule, _utc("2026-04-01T06:00:00"), BERLIN)  # 08:00 CEST
    assert march == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    schedule.last_period = dt.date(2026, 3, 1)
    assert schedules.due_period(schedule, _utc("2026-04-20T10:00:00"), BERLIN) is None
    on_the_15th = _schedule("investor_update", enabled=True, day=15, hour=9, last_period=dt.date(2026, 2, 1))
    assert schedules.due_period(on_the_15th, _utc("2026-04-15T12:59:00"), NEW_YORK) is None  # 08:59 EDT: February
    assert schedules.due_period(on_the_15th, _utc("2026-04-15T13:00:00"), NEW_YORK) == (
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 31),
    )
    assert schedules.due_period(_schedule("investor_update"), _utc("2026-04-15T13:00:00"), NEW_YORK) is None  # off


async def test_the_scheduler_queues_each_period_once(
    client: httpx.AsyncClient,
    billing: Billing,  # noqa: F811
    database: Database,
    founder: Account,
) -> None:
    org = billing.account.org_id
    now = dt.datetime.now(dt.UTC)
    async with database.tenant_transaction(org_id=org) as session:
        assert await schedules.run_due(session, org_id=org, now=now) == 2  # weekly and monthly; investor update off
    async with database.tenant_transaction(org_id=org) as session:
        assert await schedules.run_due(session, org_id=org, now=now + dt.timedelta(minutes=15)) == 0
    made = (await client.get("/api/v1/reports", headers=billing.account.headers)).json()["data"]
    assert sorted((report["kind"], report["scheduled"]) for report in made) == [
        ("monthly_report", True),
        ("weekly_digest", True),
    ]
    async with database.tenant_transaction(org_id=founder.org_id) as session:  # no metrics yet: nothing to report
        assert await schedules.run_due(session, org_id=founder.org_id, now=now) == 0


async def test_schedules_are_read_and_changed_by_who_may(client: httpx.AsyncClient, founder: Account) -> None:
    listed = (await client.get("/api/v1/report-schedules", headers=founder.headers)).json()["data"]
    assert [(item["kind"], item["enabled"], item["hour"]) for item in listed] == [
        ("weekly_digest", True, 8),
        ("monthly_report", True, 8),
        ("investor_update", False, 9),
    ]
    changed = await client.patch(
        "/api/v1/report-schedules/investor_update",
        headers=founder.headers,
        json={"enabled": True, "day": 3, "hour": 10, "formats": ["pdf"]},
    )
    assert changed.status_code == 200, changed.text
    assert {key: changed.json()["data"][key] for key in ("enabled", "day", "hour", "formats")} == {
        "enabled": True,
        "day": 3,
        "hour": 10,
        "formats": ["pdf"],
    }
    for body in ({"hour": 24}, {"day": 31}, {"weekday": 7}, {"formats": []}):
        bad = await client.patch("/api/v1/report-schedules/weekly_digest", headers=founder.headers, json=body)
        assert bad.status_code == 422, body
    assert (await client.patch("/api/v1/report-schedules/yearly", headers=founder.headers, json={})).status_code == 422
    analyst = await add_member(client, founder, "analyst")
    refused = await client.patch("/api/v1/report-schedules/weekly_digest", headers=analyst.headers, json={"hour": 9})
    assert refused.status_code == 403
