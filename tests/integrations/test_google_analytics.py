"""Google Analytics 4 through the public API, against the fake Data API on loopback, with a real worker running the
syncs: the report's requests and paging, the three days read again, resuming a broken sync, retries, malformed
answers, refused and refreshed credentials, and the traffic metrics worked out by hand from the fixture."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.fakes.google_analytics import FakeGoogleAnalytics, Traffic
from tests.integrations.conftest import connect, integration_of, sync_now, wait_for_sync
from tests.metrics.money import amounts
from tests.workers import Workers

PROPERTY = "345678901"
FIRST_DAY = dt.date(2026, 10, 1)  # the fixture's backfill starts here
ROWS = {
    (dt.date(2026, 10, 30), "Organic Search"): Traffic(120, 100, 40, "6"),
    (dt.date(2026, 10, 30), "Direct"): Traffic(60, 55, 20, "3"),
    (dt.date(2026, 10, 30), "Paid Search"): Traffic(20, 18, 15, "1.5"),
    (dt.date(2026, 10, 31), "Organic Search"): Traffic(150, 120, 50, "9"),
    (dt.date(2026, 10, 31), "Direct"): Traffic(50, 45, 10, "0"),
    (dt.date(2026, 10, 31), "Email"): Traffic(30, 25, 5, "4"),
    (dt.date(2026, 11, 1), "Organic Search"): Traffic(90, 80, 30, "2"),
    (dt.date(2026, 11, 1), "Direct"): Traffic(70, 60, 25, "7"),
    (dt.date(2026, 11, 1), "Paid Search"): Traffic(40, 35, 30, "1"),
    (dt.date(2026, 11, 2), "Organic Search"): Traffic(110, 95, 35, "5.5"),
    (dt.date(2026, 11, 2), "Direct"): Traffic(45, 40, 12, "0"),
    (dt.date(2026, 11, 2), "Referral"): Traffic(15, 12, 8, "3"),
}


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _fake(**changes: Any) -> FakeGoogleAnalytics:
    """Twelve rows over four days; at most five rows a response, so the backfill is read in three pages."""
    return FakeGoogleAnalytics(
        **{"property_id": PROPERTY, "access_tokens": {"ya29.a0-valid"}, "rows": dict(ROWS), "page_cap": 5, **changes}
    )


async def _connect(
    client: httpx.AsyncClient,
    account: Account,
    base: str,
    *,
    test: bool = True,
    credentials: dict[str, str] | None = None,
) -> dict[str, Any]:
    return await connect(
        client,
        account,
        "google_analytics",
        test=test,
        credentials=credentials or {"accessToken": "ya29.a0-valid"},
        config={
            "propertyId": PROPERTY,
            "baseUrl": base,
            "tokenUri": f"{base}/token",
            "requestsPerSecond": 50,
            "backfillDays": (_today() - FIRST_DAY).days,
        },
    )


async def _stored(database: Database, account: Account) -> dict[tuple[dt.date, str], tuple[int, int, int, Decimal]]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        rows = (
            await session.execute(
                text("SELECT day, channel, sessions, users, new_users, conversions FROM metrics.traffic")
            )
        ).all()
    return {(row.day, row.channel): (row.sessions, row.users, row.new_users, row.conversions) for row in rows}


async def _records(database: Database, account: Account) -> int:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return int(
            (
                await session.execute(text("SELECT count(*) FROM integrations.records WHERE stream = 'traffic'"))
            ).scalar_one()
        )


async def _kpis(database: Database, account: Account) -> dict[tuple[str, str, dt.date, str], Decimal]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        rows = (
            await session.execute(
                text("SELECT metric, grain, day, dims, value FROM metrics.kpis WHERE source = 'traffic'")
            )
        ).all()
    return {(row.metric, row.grain, row.day, row.dims): row.value for row in rows}


async def test_a_full_sync_pages_the_report_and_computes_traffic_metrics(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"traffic": 12}
    today = _today()
    # three pages of one report: the same range, ordered by day then channel, offsets 0, 5, 10
    assert [report["offset"] for report in fake.reports] == [0, 5, 10]
    for report in fake.reports:
        assert report["dateRanges"] == [{"startDate": FIRST_DAY.isoformat(), "endDate": today.isoformat()}]
        assert [item["name"] for item in report["dimensions"]] == ["date", "sessionDefaultChannelGroup"]
        assert [item["name"] for item in report["metrics"]] == ["sessions", "totalUsers", "newUsers", "keyEvents"]
        assert [item["dimension"]["dimensionName"] for item in report["orderBys"]] == [
            "date",
            "sessionDefaultChannelGroup",
        ]
    assert set(fake.bearers) == {"ya29.a0-valid"}
    assert await _stored(database, founder) == {
        key: (row.sessions, row.users, row.new_users, Decimal(row.key_events)) for key, row in ROWS.items()
    }
    assert await _records(database, founder) == 12
    state = (await integration_of(client, founder, integration["id"]))["streams"]
    assert state == {"traffic": {"complete_through": (today - dt.timedelta(days=1)).isoformat()}}

    # by hand, all channels per day (sessions, users, new users, conversions; rate = conversions / sessions * 100):
    # 10-30: 120+60+20 = 200, 100+55+18 = 173, 40+20+15 = 75, 6+3+1.5 = 10.5 -> 5.25
    # 10-31: 150+50+30 = 230, 120+45+25 = 190, 50+10+5 = 65, 9+0+4 = 13 -> 5.652173.. = 5.6522
    # 11-01: 90+70+40 = 200, 80+60+35 = 175, 30+25+30 = 85, 2+7+1 = 10 -> 5
    # 11-02: 110+45+15 = 170, 95+40+12 = 147, 35+12+8 = 55, 5.5+0+3 = 8.5 -> 5
    daily = {
        dt.date(2026, 10, 30): (200, 173, 75, 10.5, 5.25),
        dt.date(2026, 10, 31): (230, 190, 65, 13, 5.6522),
        dt.date(2026, 11, 1): (200, 175, 85, 10, 5),
        dt.date(2026, 11, 2): (170, 147, 55, 8.5, 5),
    }
    for index, metric in enumerate(("sessions", "users", "new_users", "conversions", "conversion_rate")):
        response = await client.get(
            "/api/v1/dashboard/series",
            headers=founder.headers,
            params={"metric": metric, "grain": "day", "start": "2026-10-01", "end": "2026-11-30"},
        )
        assert response.status_code == 200, response.text
        assert [(point["day"], point["value"]) for point in amounts(response.json()["data"])["points"]] == [
            (day.isoformat(), values[index]) for day, values in daily.items()
        ], metric

    kpis = await _kpis(database, founder)
    october, november = dt.date(2026, 10, 1), dt.date(2026, 11, 1)
    # months: October 200+230 = 430 sessions, 173+190 = 363 users (user-days), 75+65 = 140 new, 10.5+13 = 23.5
    # conversions -> 23.5 / 430 * 100 = 5.46511.. = 5.4651; November 370, 322, 140, 18.5 -> 5
    assert {
        metric: kpis[(metric, "month", october, "")]
        for metric in ("sessions", "users", "new_users", "conversions", "conversion_rate")
    } == {
        "sessions": 430,
        "users": 363,
        "new_users": 140,
        "conversions": Decimal("23.5"),
        "conversion_rate": Decimal("5.4651"),
    }
    assert {
        metric: kpis[(metric, "month", november, "")]
        for metric in ("sessions", "users", "new_users", "conversions", "conversion_rate")
    } == {
        "sessions": 370,
        "users": 322,
        "new_users": 140,
        "conversions": Decimal("18.5"),
        "conversion_rate": Decimal("5.0000"),
    }
    # per channel: Organic Search in October 120+150 = 270 sessions, 6+9 = 15 conversions -> 5.5556; Direct in
    # November 70+45 = 115, 7+0 = 7 -> 6.0870; Direct on 10-31: 0 of 50 -> 0; Email on 10-31: 4 of 30 -> 13.3333
    assert kpis[("sessions", "month", october, "channel=Organic Search")] == 270
    assert kpis[("conversion_rate", "month", october, "channel=Organic Search")] == Decimal("5.5556")
    assert kpis[("users", "month", november, "channel=Direct")] == 100
    assert kpis[("conversion_rate", "month", november, "channel=Direct")] == Decimal("6.0870")
    assert kpis[("conversion_rate", "day", dt.date(2026, 10, 31), "channel=Direct")] == 0
    assert kpis[("conversion_rate", "day", dt.date(2026, 10, 31), "channel=Email")] == Decimal("13.3333")
    assert kpis[("new_users", "day", dt.date(2026, 11, 2), "channel=Referral")] == 8
    # 4 days + 2 months, for all channels and for each channel of each day (12) and month (4 + 4), 5 metrics each
    assert len(kpis) == (4 + 2 + 12 + 8) * 5

    # GA4 sends no webhooks: a delivery is refused like a bad signature
    webhook = await client.post(f"/api/v1/integrations/{integration['id']}/webhooks/google_analytics", content=b"{}")
    assert webhook.status_code == 401 and webhook.json()["error"]["code"] == "invalid_signature"


async def test_a_later_sync_reads_the_last_three_days_again(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    today = _today()

    def day(back: int) -> dt.date:
        return today - dt.timedelta(days=back)

    fake = _fake(rows={**ROWS, (day(2), "Direct"): Traffic(10, 9, 4, "1")})
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
        first_reports = len(fake.reports)

        fake.rows[(day(2), "Direct")] = Traffic(14, 12, 5, "2")  # settled later
        fake.rows[(day(1), "Email")] = Traffic(8, 8, 8, "0")  # arrived late
        fake.rows[(today, "Direct")] = Traffic(3, 3, 1, "0")  # today, so far
        fake.rows[(day(5), "Referral")] = Traffic(7, 7, 7, "1")  # before the window: not read again
        fake.rows[(dt.date(2026, 10, 30), "Direct")] = Traffic(999, 999, 999, "9")  # long settled: not read again
        run = await sync_now(client, founder, integration["id"])

    reports = fake.reports[first_reports:]
    assert [(report["dateRanges"], report["offset"]) for report in reports] == [
        ([{"startDate": day(3).isoformat(), "endDate": today.isoformat()}], 0)
    ]
    assert run["fetched"] == {"traffic": 3}
    stored = await _stored(database, founder)
    assert stored[(day(2), "Direct")] == (14, 12, 5, Decimal(2))
    assert stored[(day(1), "Email")] == (8, 8, 8, Decimal(0))
    assert stored[(today, "Direct")] == (3, 3, 1, Decimal(0))
    assert (day(5), "Referral") not in stored
    assert stored[(dt.date(2026, 10, 30), "Direct")] == (60, 55, 20, Decimal(3))
    assert len(stored) == 15


async def test_a_sync_broken_on_page_three_resumes_from_its_cursor(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.break_after(2)  # pages 1 and 2 answer, page 3 fails beyond every retry
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base)
        failed = await wait_for_sync(client, founder, integration["id"])
        assert failed["status"] == "failed"
        assert failed["error"] == f"POST /v1beta/properties/{PROPERTY}:runReport: 503 after 6 attempts"
        assert failed["fetched"] == {"traffic": 10}
        assert len(await _stored(database, founder)) == 10
        cursor = (await integration_of(client, founder, integration["id"]))["streams"]["traffic"]
        assert cursor == {"start": FIRST_DAY.isoformat(), "end": _today().isoformat(), "offset": 10}

        fake.repair()
        before = len(fake.reports)
        resumed = await sync_now(client, founder, integration["id"])

    assert [report["offset"] for report in fake.reports[before:]] == [10]
    assert fake.reports[-1]["dateRanges"] == fake.reports[0]["dateRanges"]
    assert resumed["fetched"] == {"traffic": 2}
    assert len(await _stored(database, founder)) == 12
    assert await _records(database, founder) == 12
    response = await client.get(
        "/api/v1/dashboard/series",
        headers=founder.headers,
        params={"metric": "sessions", "grain": "day", "start": "2026-10-30", "end": "2026-11-02"},
    )
    assert [point["value"] for point in amounts(response.json()["data"])["points"]] == [200, 230, 200, 170]


async def test_quota_errors_rate_limits_and_server_errors_are_retried(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.vendor.fail_next("rate_limited", path_prefix=fake.report_path)  # 429 with Retry-After: 0
    fake.vendor.fail_next("server_error", path_prefix=fake.report_path, count=2)  # 503
    fake.exhaust_quota(1)  # then Google's own 429 RESOURCE_EXHAUSTED
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "succeeded", run
    assert fake.quota_refusals == 1 and not fake.vendor.faults
    assert len(fake.vendor.requests_to(fake.report_path)) == 3 + 3 + 1
    assert len(await _stored(database, founder)) == 12


async def test_a_malformed_page_fails_the_run_and_keeps_what_was_stored(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = _fake()
    fake.break_after(1, kind="malformed")
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base)
        run = await wait_for_sync(client, founder, integration["id"])

    assert run["status"] == "failed"
    assert run["error"] == f"POST /v1beta/properties/{PROPERTY}:runReport: the answer is not JSON"
    assert len(await _stored(database, founder)) == 5
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "active" and found["lastError"] == run["error"]


async def test_refused_credentials_put_the_integration_in_error(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    fake = _fake()
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base, test=False, credentials={"accessToken": "ya29.a0-revoked"})
        run = await wait_for_sync(client, founder, integration["id"])
        checked = await client.post(f"/api/v1/integrations/{integration['id']}/test", headers=founder.headers)

    assert run["status"] == "failed" and run["error"] == "the provider refused the credentials (401)"
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "error" and found["lastError"] == run["error"]
    assert checked.status_code == 422 and checked.json()["error"]["code"] == "connection_failed"
    assert "ya29" not in checked.text and "ya29" not in str(found)


async def test_an_expired_access_token_is_refreshed_and_a_revoked_refresh_token_is_an_error(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    refresh_token = "1//0g-" + uuid.uuid4().hex
    fake = _fake(access_tokens=set(), refresh_tokens={refresh_token})
    credentials = {
        "accessToken": "ya29.a0-expired",
        "refreshToken": refresh_token,
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
    }
    async with serving(fake.app) as base:
        integration = await _connect(client, founder, base, credentials=credentials)  # the check refreshes too
        run = await wait_for_sync(client, founder, integration["id"])
        assert run["status"] == "succeeded", run
        assert run["fetched"] == {"traffic": 12}
        assert len(fake.token_grants) == 2  # one for the connection check, one for the sync (each 401 once)
        assert fake.token_grants[0] == {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
        }
        assert set(fake.bearers) == {"ya29.a0-issued-0", "ya29.a0-issued-1"}

        fake.refresh_tokens.clear()  # the user revoked the app's access
        fake.expire_access_tokens()
        response = await client.post(f"/api/v1/integrations/{integration['id']}/sync", headers=founder.headers)
        assert response.status_code == 202, response.text
        failed = await wait_for_sync(client, founder, integration["id"])

    assert failed["status"] == "failed"
    assert failed["error"] == (
        "Google refused the refresh token (invalid_grant): it was revoked or has expired; connect the account again"
    )
    found = await integration_of(client, founder, integration["id"])
    assert found["status"] == "error"
    assert refresh_token not in str(found) and fake.client_secret not in str(found)


async def test_unusable_settings_are_refused_with_a_readable_error(client: httpx.AsyncClient, founder: Account) -> None:
    for config, named in (
        ({"propertyId": "properties/1"}, "config.propertyId"),
        ({"propertyId": PROPERTY, "requestsPerSecond": -1}, "config.requestsPerSecond"),
        ({"propertyId": PROPERTY, "backfillDays": "a year"}, "config.backfillDays"),
    ):
        response = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "google_analytics",
                "name": "GA4",
                "credentials": {"accessToken": "ya29.a0-x"},
                "config": config,
            },
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_error" and named in error["message"], error
        assert f"body.{named}" in [detail["field"] for detail in error["details"]], error
    missing = await client.post(
        "/api/v1/integrations",
        headers=founder.headers,
        json={"provider": "google_analytics", "name": "GA4", "credentials": {"accessToken": "ya29.a0-x"}, "config": {}},
    )
    assert missing.status_code == 422
    assert "body.config.propertyId" in [detail["field"] for detail in missing.json()["error"]["details"]]
