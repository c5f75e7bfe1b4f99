"""Site analytics from the rollups: counts, CTR, conversions in their 7-day window, unique visitors, time zones,
granularities, and bad queries."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
import zoneinfo
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from northstar.core.db import Database
from northstar.socialproof.service import rollups
from tests.factories import Account

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


async def _site(client: httpx.AsyncClient, founder: Account, timezone: str = "UTC") -> dict[str, Any]:
    site = (
        await client.post(
            "/api/v1/sites",
            headers=founder.headers,
            json={
                "name": "Shop",
                "domain": f"shop-{secrets.token_hex(4)}.example.com",
                "settings": {"timezone": timezone},
            },
        )
    ).json()["data"]
    return dict(site)


async def _notification(client: httpx.AsyncClient, founder: Account, site: dict[str, Any], name: str) -> str:
    response = await client.post(
        f"/api/v1/sites/{site['id']}/notifications",
        headers=founder.headers,
        json={"name": name, "type": "recent_activity", "status": "active", "source": {"eventTypes": ["purchase"]}},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def _collect(
    client: httpx.AsyncClient,
    site: dict[str, Any],
    events: list[dict[str, Any]],
    *,
    agent: str = CHROME,
    at: dt.datetime | None = None,
) -> None:
    """Widget events, stamped ``at`` (the browser's clock agrees with the server's, so the time is kept)."""
    moment = (at or dt.datetime.now(dt.UTC)).isoformat()
    body = {
        "siteKey": site["siteKey"],
        "sentAt": dt.datetime.now(dt.UTC).isoformat(),
        "events": [
            {"id": str(uuid.uuid4()), "url": f"https://{site['domain']}/p", "occurredAt": moment, **event}
            for event in events
        ],
    }
    response = await client.post(
        "/api/v1/collect",
        content=orjson.dumps(body),
        headers={"Origin": f"https://{site['domain']}", "User-Agent": agent},
    )
    assert response.status_code == 202 and response.json()["data"]["accepted"] == len(events), response.text


async def _analytics(client: httpx.AsyncClient, founder: Account, site: dict[str, Any], **query: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sites/{site['id']}/analytics", headers=founder.headers, params=query)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


def _counts(metrics: dict[str, Any]) -> tuple[int, ...]:
    return tuple(
        metrics[name]
        for name in ("impressions", "hovers", "clicks", "closes", "conversions", "uniqueVisitors", "pageViews")
    )


async def test_counts_rates_conversions_and_visitors(client: httpx.AsyncClient, founder: Account) -> None:
    site = await _site(client, founder)
    shown, quiet = (
        await _notification(client, founder, site, "Shown"),
        await _notification(client, founder, site, "Quiet"),
    )
    await _collect(client, site, [{"type": "page_view"}, {"type": "page_view"}])
    await _collect(client, site, [{"type": "page_view"}], agent=FIREFOX)
    await _collect(
        client,
        site,
        [{"type": kind, "notificationId": shown} for kind in ("impression", "impression", "hover", "click")],
    )
    await _collect(
        client,
        site,
        [{"type": "impression", "notificationId": shown}, {"type": "close", "notificationId": shown}],
        agent=FIREFOX,
    )
    await _collect(client, site, [{"type": "purchase", "details": {"product": "Shoes"}}])  # after the click
    await _collect(client, site, [{"type": "purchase"}])  # the same visitor again: still one conversion
    await _collect(client, site, [{"type": "purchase"}], agent=FIREFOX)  # never clicked
    data = await _analytics(client, founder, site)
    totals = data["totals"]
    assert _counts(totals) == (3, 1, 1, 1, 1, 2, 3)
    assert (totals["ctr"], totals["conversionRate"]) == (0.3333, 1.0)
    by_id = {item["notificationId"]: item for item in data["notifications"]}
    assert [item["name"] for item in data["notifications"]] == ["Shown", "Quiet"]
    assert _counts(by_id[shown]) == (3, 1, 1, 1, 1, 2, 0)
    assert _counts(by_id[quiet]) == (0, 0, 0, 0, 0, 0, 0) and by_id[quiet]["ctr"] is None
    assert len(data["series"]) == 30 and data["granularity"] == "day"  # the last 30 days, today included
    today = data["series"][-1]
    assert _counts(today) == _counts(totals) and sum(point["impressions"] for point in data["series"]) == 3
    only = await _analytics(client, founder, site, notificationId=quiet)
    assert [item["notificationId"] for item in only["notifications"]] == [quiet]
    assert _counts(only["totals"]) == (0, 0, 0, 0, 0, 0, 3)  # page views stay the site's


async def test_a_click_older_than_seven_days_converts_nothing(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site = await _site(client, founder)
    shown = await _notification(client, founder, site, "Shown")
    await _collect(client, site, [{"type": "page_view"}])
    with psycopg.connect(database_url) as connection:  # the same visitor clicked 8 days ago
        visitor = connection.execute(
            "SELECT visitor_id FROM socialproof.notification_events WHERE site_id = %s", (site["id"],)
        ).fetchone()
        connection.execute(
            "INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, notification_id,"
            " visitor_id, occurred_at) VALUES (gen_random_uuid(), %s, %s, 'click', %s, %s, now() - interval '8 days')",
            (founder.org_id, site["id"], shown, visitor[0] if visitor else None),
        )
    await _collect(client, site, [{"type": "purchase"}])
    assert (await _analytics(client, founder, site))["totals"]["conversions"] == 0
    await _collect(
        client, site, [{"type": "click", "notificationId": shown}], at=dt.datetime.now(dt.UTC) - dt.timedelta(days=6)
    )
    await _collect(client, site, [{"type": "signup"}])
    assert (await _analytics(client, founder, site))["totals"]["conversions"] == 1


async def test_unique_visitors_are_the_same_before_and_after_folding(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    site = await _site(client, founder)
    shown = await _notification(client, founder, site, "Shown")
    for number in range(12):
        await _collect(
            client,
            site,
            [{"type": "page_view"}, {"type": "impression", "notificationId": shown}],
            agent=f"{CHROME} Visitor/{number}",
        )
    before = await _analytics(client, founder, site)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await rollups.fold_visitor_hashes(session) > 0
    after = await _analytics(client, founder, site)
    assert before["totals"]["uniqueVisitors"] == after["totals"]["uniqueVisitors"] == 12
    assert before["notifications"][0]["uniqueVisitors"] == after["notifications"][0]["uniqueVisitors"] == 12
    assert before["series"] == after["series"]


async def test_days_are_the_sites_local_days(client: httpx.AsyncClient, founder: Account) -> None:
    site = await _site(client, founder, timezone="Europe/Berlin")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    yesterday = dt.datetime.now(berlin).date() - dt.timedelta(days=1)
    local_midnight = dt.datetime.combine(yesterday, dt.time(), berlin)
    await _collect(client, site, [{"type": "page_view"}], at=local_midnight + dt.timedelta(minutes=20))
    local = await _analytics(client, founder, site, start=yesterday.isoformat(), end=yesterday.isoformat())
    assert local["timezone"] == "Europe/Berlin"
    assert [(point["bucket"], point["pageViews"]) for point in local["series"]] == [(local_midnight.isoformat(), 1)]
    day_before = (yesterday - dt.timedelta(days=1)).isoformat()  # 00:20 in Berlin is the evening before in UTC
    in_utc = await _analytics(client, founder, site, start=day_before, end=day_before, timezone="UTC")
    assert in_utc["totals"]["pageViews"] == 1
    same_date_in_utc = await _analytics(
        client, founder, site, start=yesterday.isoformat(), end=yesterday.isoformat(), timezone="UTC"
    )
    assert same_date_in_utc["totals"]["pageViews"] == 0


async def test_granularities_align_their_buckets(client: httpx.AsyncClient, founder: Account) -> None:
    site = await _site(client, founder)
    hours = await _analytics(client, founder, site, start="2026-11-02", end="2026-11-02", granularity="hour")
    assert len(hours["series"]) == 24 and hours["series"][0]["bucket"] == "2026-11-02T00:00:00Z"
    weeks = await _analytics(client, founder, site, start="2026-11-04", end="2026-11-20", granularity="week")
    assert [point["bucket"][:10] for point in weeks["series"]] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert weeks["start"] == "2026-11-02T00:00:00Z" and weeks["end"] == "2026-11-23T00:00:00Z"
    months = await _analytics(client, founder, site, start="2026-01-15", end="2026-03-01", granularity="month")
    assert [point["bucket"][:10] for point in months["series"]] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    minutes = await _analytics(
        client, founder, site, start="2026-11-02T10:00:00Z", end="2026-11-02T11:00:00Z", granularity="minute"
    )
    assert len(minutes["series"]) == 60
    kolkata = await _analytics(
        client, founder, site, start="2026-11-02", end="2026-11-02", granularity="day", timezone="Asia/Kolkata"
    )
    assert kolkata["series"][0]["bucket"] == "2026-11-02T00:00:00+05:30"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "0001-01-01", "end": "9999-12-31"}, "query.end"),
        ({"start": "0001-01-01", "end": "9999-12-31", "granularity": "month"}, "query.end"),
        ({"start": "0001-01-01"}, "query.start"),
        ({"end": "9999-12-31T23:59:59-12:00"}, "query.end"),
        ({"start": "0001-01-01T00:00:00+14:00", "end": "2026-01-01"}, "query.start"),
        ({"start": "1999-12-31", "end": "2000-01-31"}, "query.start"),
        ({"start": "2099-12-01", "end": "2100-01-01"}, "query.end"),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_422(
    client: httpx.AsyncClient, founder: Account, query: dict[str, str], field: str
) -> None:
    """Dates run from 2000-01-01 to 2099-12-31 (the day after 9999-12-31 does not exist)."""
    site = await _site(client, founder)
    response = await client.get(f"/api/v1/sites/{site['id']}/analytics", headers=founder.headers, params=query)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert [detail["field"] for detail in error["details"]] == [field]
    assert "2000-01-01 to 2099-12-31" in error["details"][0]["message"]
    edges = await client.get(
        f"/api/v1/sites/{site['id']}/analytics",
        headers=founder.headers,
        params={"start": "2000-01-01", "end": "2099-12-31", "granularity": "month"},
    )
    assert edges.status_code == 200, edges.text
    assert len(edges.json()["data"]["series"]) == 1200


async def test_bad_queries_are_client_errors(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site = await _site(client, founder)
    theirs = await _site(client, other_founder)
    their_notification = await _notification(client, other_founder, theirs, "Theirs")
    path = f"/api/v1/sites/{site['id']}/analytics"
    for query, field in (
        ({"start": "2026-11-10", "end": "2026-11-01"}, "query.start"),
        ({"start": "yesterday"}, "query.start"),
        ({"end": "2026-13-01"}, "query.end"),
        ({"timezone": "Mars/Olympus"}, "query.timezone"),
        ({"granularity": "minute", "start": "2026-01-01", "end": "2026-03-01"}, "query.granularity"),
        ({"granularity": "fortnight"}, "query.granularity"),
    ):
        response = await client.get(path, headers=founder.headers, params=query)
        assert response.status_code == 422, query
        assert field in [detail["field"] for detail in response.json()["error"]["details"]], response.text
    foreign = await client.get(path, headers=founder.headers, params={"notificationId": their_notification})
    assert foreign.status_code == 404
    stolen = await client.get(f"/api/v1/sites/{theirs['id']}/analytics", headers=founder.headers)
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "not_found"
