"""Mixpanel through the public API, against the fake raw export on loopback, with a real worker running the syncs:
day ranges and their cursor, the overlap exported again without counting twice, resuming a broken sync, retries,
answers that are not JSON lines, refused credentials, and the product metrics worked out by hand from the fixture."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.fakes.mixpanel import FakeMixpanel, event
from tests.integrations.conftest import connect, integration_of, sync_now, wait_for_sync
from tests.metrics.money import amounts
from tests.workers import Workers

PROJECT = "2718281"
USERNAME = "kpix-export.1a2b3c.mp-service-account"
SECRET = "mp-secret-5f1d7e"
BACKFILL_DAYS = 45
DAYS_PER_REQUEST = 15
METRICS = ("active_users", "wau", "mau", "events", "stickiness")


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _day(back: int) -> dt.date:
    return _today() - dt.timedelta(days=back)


def _at(back: int, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(_day(back), dt.time(hour), dt.UTC)


def _events() -> list[dict[str, Any]]:
    """Thirteen events by six people over 35 days; one of them exported twice, one without an insert id, one
    without a distinct id, one timed in milliseconds."""
    duplicate = event("Viewed report", "u1", _at(8), "e06", report="Funnels")
    return [
        event("Viewed report", "u1", _at(35), "e01"),
        event("Signed up", "u6", _at(35), "e02"),
        event("Viewed report", "u1", _at(9), "e03"),
        event("Exported", "u1", _at(9, 11), "e04"),
        event("Signed up", "u2", _at(9, 12), "e05"),
        duplicate,
        dict(duplicate),
        event("Signed up", "u3", _at(8, 13), "e07", milliseconds=True),
        event("Viewed report", "u2", _at(6), "e08"),
        event("Digest sent", None, _at(6, 2), "e09"),
        event("Signed up", "u4", _at(3), None),
        event("Viewed report", "u1", _at(3, 15), "e10"),
        event("Viewed report", "u2", _at(1), "e11"),
        event("Signed up", "u5", _at(1, 18), "e12"),
    ]


def _fake() -> FakeMixpanel:
    return FakeMixpanel(project_id=PROJECT, username=USERNAME, secret=SECRET, events=_events())


async def _connect(
    client: httpx.AsyncClient, account: Account, base: str, *, test: bool = True, secret: str = SECRET
) -> dict[str, Any]:
    return await connect(
        client,
        account,
        "mixpanel",
        test=test,
        credentials={"username": USERNAME, "secret": secret},
        config={
            "projectId": PROJECT,
            "baseUrl": base,
            "requestsPerSecond": 50,
            "backfillDays": BACKFILL_DAYS,
            "daysPerRequest": DAYS_PER_REQUEST,
        },
    )


def _ranges(*pairs: tuple[int, int]) -> list[tuple[str, str]]:
    return [(_day(first).isoformat(), _day(last).isoformat()) for first, last in pairs]


async def _stored(database: Database, account: Account) -> dict[str, tuple[str, str, dt.datetime]]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        rows = (
            await session.execute(text("SELECT insert_id, name, distinct_id, occurred_at FROM metrics.product_events"))
        ).all()
    return {row.insert_id: (row.name, row.distinct_id, row.occurred_at) for row in rows}


async def _records(database: Database, account: Account) -> int:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return int(
            (
                await session.execute(text("SELECT count(*) FROM integrations.records WHERE stream = 'events'"))
            ).scalar_one()
        )


async def _series(client: httpx.AsyncClient, account: Account, metric: str) -> dict[str, float]:
    response = await client.get(
        "/api/v1/dashboard/series",
        headers=account.headers,
        params={"metric": metric, "grain": "day", "start": _day(60).isoformat(), "end": _today().isoformat()},
    )
    assert response.status_code == 200, response.text
    return {point["day"]: point["value"] for point in amounts(response.json()["data"])["points"]}


def _expected() -> dict[str, dict[str, float]]:
    """The product series by hand, for the days from the first event (35 days ago) to the last (yesterday).

    People active (distinct ids with an event) by days ago: 35 u1 u6; 9 u1 u2; 8 u1 u3; 6 u2 (and an event with no
    distinct id); 3 u4 u1; 1 u2 u5. Events: 35: 2, 9: 3, 8: 2 (the duplicate once), 6: 2, 3: 2, 1: 2.
    WAU (the 7 days ending that day): u1 u6 from 35 to 29 days ago; nobody from 28 to 10; then 9: u1 u2; 8 to 4:
    u1 u2 u3; 3 and 2: u1 u2 u3 u4; 1: u1 u2 u4 u5 (u3 was last seen 8 days ago).
    MAU (28 days): u1 u6 from 35 to 10 days ago; 9: + u2 = 3; 8: + u3 = 4; 7: u6's day (35) has left the window =
    3; until 4: 3; 3 and 2: + u4 = 4; 1: + u5 = 5. Stickiness = DAU / MAU * 100: 35: 2/2 = 100; 9: 2/3 = 66.6667;
    8: 2/4 = 50; 6: 1/3 = 33.3333; 3: 2/4 = 50; 1: 2/5 = 40; 0 on quiet days.
    """
    # days ago: (active users, WAU, MAU, events, stickiness)
    busy: dict[int, tuple[int | Decimal, ...]] = {
        35: (2, 2, 2, 2, 100),
        9: (2, 2, 3, 3, Decimal("66.6667")),
        8: (2, 3, 4, 2, 50),
        7: (0, 3, 3, 0, 0),
        6: (1, 3, 3, 2, Decimal("33.3333")),
        5: (0, 3, 3, 0, 0),
        4: (0, 3, 3, 0, 0),
        3: (2, 4, 4, 2, 50),
        2: (0, 4, 4, 0, 0),
        1: (2, 4, 5, 2, 40),
    }
    series: dict[str, dict[str, float]] = {metric: {} for metric in METRICS}
    for back in range(35, 0, -1):
        values: tuple[int | Decimal, ...] = busy.get(back, (0, 2 if back >= 29 else 0, 2, 0, 0))
        for metric, value in zip(METRICS, values, strict=True):
            series[metric][_day(back).isoformat()] = float(value)
    return series


async def test_a_full_sync_exports_day_ranges_and_computes_product_metrics(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"events": 13}
    checks = [seen.query for seen in fake.vendor.requests_to("/api/2.0/export") if "limit" in seen.query]
    assert checks == [
        {"project_id": PROJECT, "from_date": _day(1).isoformat(), "to_date": _day(1).isoformat(), "limit": "1"}
    ]
    # 45 days back to today, 15 days a request
    assert fake.exports() == _ranges((45, 31), (30, 16), (15, 1), (0, 0))
    assert all(seen.query["project_id"] == PROJECT for seen in fake.vendor.requests_to("/api/2.0/export"))
    stored = await _stored(database, founder)
    assert len(stored) == 13 and await _records(database, founder) == 13
    assert stored["e06"] == ("Viewed report", "u1", _at(8))
    assert stored["e07"] == ("Signed up", "u3", _at(8, 13))  # timed in milliseconds
    assert stored["e09"] == ("Digest sent", "", _at(6, 2))
    made = [insert_id for insert_id in stored if not insert_id.startswith("e")]
    assert len(made) == 1 and made[0].startswith("sha256:") and stored[made[0]] == ("Signed up", "u4", _at(3))
    state = (await integration_of(client, founder, integration["id"]))["streams"]
    assert state == {"events": {"exported_through": _day(1).isoformat()}}

    expected = _expected()
    for metric in METRICS:
        assert await _series(client, founder, metric) == expected[metric], metric
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        points = (
            await session.execute(
                text("SELECT count(*), count(DISTINCT grain) FROM metrics.kpis WHERE source = 'product'")
            )
        ).one()
    assert tuple(points) == (35 * 5, 1)


async def test_a_later_sync_exports_the_overlap_again_without_counting_twice(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
        exported = len(fake.exports())

        fake.events += [
            event("Viewed report", "u7", _at(1, 22), "e13"),  # arrived late, for yesterday
            event("Viewed report", "u2", _at(1), "e11"),  # sent again by the device
            event("Signed up", "u8", _at(0, 0), "e14"),  # today, so far
            event("Viewed report", "u9", _at(5), "e15"),  # before the overlap: not exported again
        ]
        run = await sync_now(client, founder, integration["id"])

    assert fake.exports()[exported:] == _ranges((2, 0))
    assert run["fetched"] == {"events": 4}  # e11 and e12 again, e13, e14
    stored = await _stored(database, founder)
    assert len(stored) == 15 and "e15" not in stored and {"e13", "e14"} <= stored.keys()
    active, events = await _series(client, founder, "active_users"), await _series(client, founder, "events")
    assert active[_day(1).isoformat()] == 3 and events[_day(1).isoformat()] == 3  # u2, u5, u7; e11 once
    assert active[_today().isoformat()] == 1
    assert (await _series(client, founder, "mau"))[_today().isoformat()] == 7  # u1 u2 u3 u4 u5 u7 u8


async def test_a_sync_broken_on_the_third_range_resumes_from_its_cursor(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.break_after(2)  # two ranges answer, the third fails beyond every retry
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base, test=False)
        failed = await wait_for_sync(client, founder, integration["id"])
        assert failed["status"] == "failed"
        assert failed["error"] == "GET /api/2.0/export: 503 after 6 attempts"
        assert failed["fetched"] == {"events": 2}
        cursor = (await integration_of(client, founder, integration["id"]))["streams"]
        assert cursor == {"events": {"exported_through": _day(16).isoformat()}}

        fake.repair()
        exported = len(fake.exports())
        resumed = await sync_now(client, founder, integration["id"])

    # again from the day before the cursor (the overlap), 15 days a request
    assert fake.exports()[exported:] == _ranges((17, 3), (2, 0))
    assert resumed["fetched"] == {"events": 11}
    assert len(await _stored(database, founder)) == 13 and await _records(database, founder) == 13
    expected = _expected()
    assert await _series(client, founder, "stickiness") == expected["stickiness"]


async def test_rate_limits_and_server_errors_are_retried(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.vendor.fail_next("rate_limited", path_prefix="/api/2.0/export")
    fake.vendor.fail_next("server_error", path_prefix="/api/2.0/export", count=2)
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base, test=False)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "succeeded", run
    assert not fake.vendor.faults and fake.vendor.throttled == 0
    assert len(fake.vendor.requests_to("/api/2.0/export")) == 4 + 3
    assert len(await _stored(database, founder)) == 13


async def test_an_answer_that_is_not_json_lines_fails_the_run_and_keeps_what_was_stored(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.break_after(1, kind="malformed")
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base, test=False)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "failed"
    assert run["error"] == "GET /api/2.0/export: line 2 of the answer is not JSON"
    assert set(await _stored(database, founder)) == {"e01", "e02"}
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "active" and found["lastError"] == run["error"]
    assert found["streams"] == {"events": {"exported_through": _day(31).isoformat()}}


async def test_refused_credentials_put_the_integration_in_error(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    fake = _fake()
    async with serving(fake.vendor.app) as base:
        refused = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "mixpanel",
                "name": "Mixpanel",
                "credentials": {"username": USERNAME, "secret": "wrong"},
                "config": {"projectId": PROJECT, "baseUrl": base},
            },
        )
        integration = await _connect(client, founder, base, test=False, secret="revoked")
        run = await wait_for_sync(client, founder, integration["id"])

    assert refused.status_code == 422 and refused.json()["error"]["code"] == "connection_failed"
    assert run["status"] == "failed" and run["error"] == "the provider refused the credentials (401)"
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "error" and found["credentials"] == ["secret", "username"]
    assert "revoked" not in str(found)


async def test_days_are_those_of_the_reporting_time_zone(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    settings = await client.patch("/api/v1/metrics/settings", headers=founder.headers, json={"timezone": "Asia/Tokyo"})
    assert settings.status_code == 200, settings.text
    fake = FakeMixpanel(
        project_id=PROJECT,
        username=USERNAME,
        secret=SECRET,
        events=[
            event("Viewed report", "u1", _at(3, 20), "t1"),  # 05:00 the next day in Tokyo (UTC+9)
            event("Viewed report", "u2", _at(3, 10), "t2"),  # 19:00 the same day in Tokyo
        ],
    )
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base, test=False)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"

    assert await _series(client, founder, "active_users") == {_day(3).isoformat(): 1, _day(2).isoformat(): 1}
    assert await _series(client, founder, "mau") == {_day(3).isoformat(): 1, _day(2).isoformat(): 2}


async def test_unusable_settings_are_refused_with_a_readable_error(client: httpx.AsyncClient, founder: Account) -> None:
    for config, named in (
        ({"projectId": "my-project"}, "config.projectId"),
        ({"projectId": PROJECT, "daysPerRequest": 0}, "config.daysPerRequest"),
        ({"projectId": PROJECT, "requestsPerSecond": "fast"}, "config.requestsPerSecond"),
    ):
        response = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "mixpanel",
                "name": "Mixpanel",
                "credentials": {"username": USERNAME, "secret": SECRET},
                "config": config,
            },
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error" and named in error["message"], error
        assert f"body.{named}" in [detail["field"] for detail in error["details"]], error
        assert SECRET not in response.text
    missing = await client.post(
        "/api/v1/integrations",
        headers=founder.headers,
        json={"provider": "mixpanel", "name": "Mixpanel", "credentials": {"secret": SECRET}, "config": {}},
    )
    assert missing.status_code == 422
    assert "body.config.projectId" in [detail["field"] for detail in missing.json()["error"]["details"]]


async def test_nul_characters_from_the_vendor_are_dropped_not_fatal(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeMixpanel(
        project_id=PROJECT,
        username=USERNAME,
        secret=SECRET,
        events=[event("Sign\x00ed up", "u\x001", _at(2), "n\x0001", plan="pro\x00")],
    )
    async with serving(fake.vendor.app) as base:
        integration = await _connect(client, founder, base)
        run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "succeeded", run
    assert await _stored(database, founder) == {"n01": ("Signed up", "u1", _at(2).replace(microsecond=0))}
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        data = (await session.execute(text("SELECT data FROM integrations.records WHERE stream = 'events'"))).scalar()
    assert data["properties"]["plan"] == "pro"
