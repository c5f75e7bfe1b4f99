"""HubSpot through the public API, against the fake HubSpot account on loopback and a real worker process: the
search requests, paging, the 10,000-result cap, incremental syncs, resuming a stopped sync, retries, broken pages,
revoked tokens, bad settings, and the pipeline metrics, checked against numbers worked out by hand below."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.fakes.hubspot import SEARCH_PATH, FakeHubSpot, millis
from tests.integrations.conftest import connect, sync_now, wait_for_sync
from tests.metrics.money import amounts
from tests.workers import Workers

UTC = dt.UTC
BASE = dt.datetime(2025, 1, 1, tzinfo=UTC)
LAG_MS = 5 * 60 * 1000
PROPERTIES = [
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "deal_currency_code",
    "hs_is_closed",
    "hs_is_closed_won",
    "description",
]


def _at(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment).replace(tzinfo=UTC)


def _hourly(fake: FakeHubSpot, count: int) -> list[dt.datetime]:
    """``count`` open deals of 100.00, created and last modified an hour apart; their modification times."""
    times = [BASE + dt.timedelta(hours=hour) for hour in range(count)]
    for number, moment in enumerate(times):
        fake.add_deal(
            created=moment,
            dealname=f"Deal {number}",
            amount="100",
            dealstage="appointmentscheduled",
            pipeline="default",
            hs_is_closed="false",
            hs_is_closed_won="false",
        )
    return times


async def _connect(
    client: httpx.AsyncClient, account: Account, fake: FakeHubSpot, url: str, **config: Any
) -> dict[str, Any]:
    return await connect(
        client, account, "hubspot", credentials={"accessToken": fake.token}, config={"baseUrl": url, **config}
    )


async def _deal_rows(database: Database, account: Account) -> list[Any]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return list(
            (
                await session.execute(
                    text(
                        "SELECT external_id, name, pipeline, stage, amount, currency, created_at, close_date,"
                        " closed, won"
                        " FROM metrics.deals ORDER BY CAST(external_id AS bigint)"
                    )
                )
            ).all()
        )


async def _series(client: httpx.AsyncClient, account: Account, metric: str, **query: str) -> list[tuple[str, Any]]:
    response = await client.get("/api/v1/dashboard/series", headers=account.headers, params={"metric": metric, **query})
    assert response.status_code == 200, response.text
    return [(point["day"], point["value"]) for point in amounts(response.json()["data"])["points"]]


def _search(since: int | str, after: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(since)}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": PROPERTIES,
        "limit": 100,
    }
    return {**body, "after": after} if after is not None else body


async def test_deals_are_synced_and_the_pipeline_metrics_match_the_hand_computed_ones(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    """Nine deals, days in New York (UTC-5 in winter, UTC-4 from 2025-03-09), euros converted at 0.8 per dollar.

    | deal | amount | created (NY) | closed (NY) | state |
    |---|---|---|---|---|
    | D1 | 1000.00 | 01-05 | 02-10 | won (cycle 36 days) |
    | D2 | 500.50 | 01-20 | 02-20 | lost |
    | D3 | 2000 | 02-01 | 03-03 | won (30) |
    | D4 | EUR 1000.00 = 1250.00 | 02-15 | 03-17 | won (30); the 2025-03-01 rate (0.8), not January's or April's |
    | D5 | 3000.00 | 03-01 | | open, contract sent (0.9) |
    | D6 | 1500.255 = 1500.26 | 03-10 | | open, appointment scheduled (0.2) |
    | D7 | none | 03-12 | | open, qualified to buy (0.4) |
    | D8 | 800 | 03-05 | 03-25 | lost: only its stage says so (no hs_is_closed flags) |
    | D9 | 600.00 | 01-30 (01-31 03:00 UTC) | 03-31 (04-01 02:00 UTC) | won (60) |
    """
    settings = await client.patch(
        "/api/v1/metrics/settings", headers=founder.headers, json={"timezone": "America/New_York"}
    )
    assert settings.status_code == 200, settings.text
    rates = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={
            "rates": [
                {"currency": "EUR", "day": "2025-01-01", "perUsd": "0.9"},
                {"currency": "EUR", "day": "2025-03-01", "perUsd": "0.8"},
                {"currency": "EUR", "day": "2025-04-01", "perUsd": "0.5"},
            ]
        },
    )
    assert rates.status_code == 200, rates.text
    fake = FakeHubSpot()
    modified = iter(BASE + dt.timedelta(days=200, hours=hour) for hour in range(100))

    def deal(
        name: str,
        amount: str | None,
        stage: str,
        created: str,
        closed: str | None = None,
        currency: str | None = None,
        flags: bool = True,
    ) -> None:
        won = stage == "closedwon"
        fake.add_deal(
            created=_at(created),
            modified=next(modified),
            dealname=name,
            amount=amount,
            dealstage=stage,
            pipeline="default",
            closedate=closed and _at(closed).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            deal_currency_code=currency,
            hs_is_closed=(str(closed is not None).lower() if flags else None),
            hs_is_closed_won=(str(won).lower() if flags else None),
        )

    deal("D1", "1000.00", "closedwon", "2025-01-05T15:00", "2025-02-10T15:00")
    deal("D2", "500.50", "closedlost", "2025-01-20T15:00", "2025-02-20T15:00")
    deal("D3", "2000", "closedwon", "2025-02-01T15:00", "2025-03-03T15:00")
    deal("D4", "1000.00", "closedwon", "2025-02-15T15:00", "2025-03-17T15:00", currency="EUR")
    deal("D5", "3000.00", "contractsent", "2025-03-01T15:00", None)
    deal("D6", "1500.255", "appointmentscheduled", "2025-03-10T15:00", None)
    deal("D7", None, "qualifiedtobuy", "2025-03-12T15:00", None)
    deal("D8", "800", "closedlost", "2025-03-05T15:00", "2025-03-25T15:00", flags=False)
    deal("D9", "600.00", "closedwon", "2025-01-31T03:00", "2025-04-01T02:00")

    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"pipelines": 1, "deals": 9}
    assert fake.searches == [_search(0)]
    assert [seen.path for seen in fake.vendor.seen] == [
        "/crm/v3/pipelines/deals",
        "/crm/v3/pipelines/deals",
        "/account-info/v3/details",
        SEARCH_PATH,
    ]

    rows = {row.name: row for row in await _deal_rows(database, founder)}
    assert (rows["D4"].amount, rows["D4"].currency, rows["D4"].closed, rows["D4"].won) == (100000, "EUR", True, True)
    assert (rows["D6"].amount, rows["D6"].currency, rows["D6"].stage, rows["D6"].closed) == (
        150026,
        "USD",
        "appointmentscheduled",
        False,
    )
    assert rows["D7"].amount is None
    assert (rows["D8"].closed, rows["D8"].won) == (True, False)
    assert rows["D9"].created_at == _at("2025-01-31T03:00") and rows["D9"].close_date == _at("2025-04-01T02:00")

    # open on a day: created on or before it and not closed by it. 01-29: D1 + D2; 01-30: + D9 (in New York)
    assert await _series(client, founder, "open_pipeline", start="2025-01-29", end="2025-01-30") == [
        ("2025-01-29", 150050),
        ("2025-01-30", 210050),
    ]
    # 03-12: D9 60000 + D4 125000 + D5 300000 + D8 80000 + D6 150026 (+ D7, no amount) = 715026, six deals
    assert await _series(client, founder, "open_pipeline", start="2025-03-12", end="2025-03-12") == [
        ("2025-03-12", 715026)
    ]
    assert await _series(client, founder, "open_deals", start="2025-03-12", end="2025-03-12") == [("2025-03-12", 6)]
    # month ends: Jan D1 + D2 + D9; Feb D9 + D3 + D4; Mar (D9 closed on the 31st) D5 + D6 (+ D7), and so on since
    months = [f"2025-{month:02d}-01" for month in range(1, 7)]
    assert await _series(client, founder, "open_pipeline", grain="month", start="2025-01-01", end="2025-06-30") == list(
        zip(months, [210050, 385000, 450026, 450026, 450026, 450026], strict=True)
    )
    assert await _series(client, founder, "open_deals", grain="month", start="2025-01-01", end="2025-06-30") == list(
        zip(months, [3, 3, 3, 3, 3, 3], strict=True)
    )
    current = await _series(client, founder, "open_pipeline")
    assert current[-1][1] == 450026
    # today: D5 300000 * 0.9 + D6 150026 * 0.2 = 270000 + 30005.2 → 300005
    assert [value for _, value in await _series(client, founder, "weighted_pipeline")] == [300005]

    monthly = {"start": "2025-01-01", "end": "2025-06-30"}
    assert await _series(client, founder, "deals_won", **monthly) == list(zip(months, [0, 1, 3, 0, 0, 0], strict=True))
    assert await _series(client, founder, "deals_lost", **monthly) == list(zip(months, [0, 1, 1, 0, 0, 0], strict=True))
    # March: D3 200000 + D4 125000 + D9 60000
    assert await _series(client, founder, "won_amount", **monthly) == list(
        zip(months, [0, 100000, 385000, 0, 0, 0], strict=True)
    )
    assert await _series(client, founder, "win_rate", **monthly) == [("2025-02-01", 50), ("2025-03-01", 75)]
    # March: (30 + 30 + 60) / 3
    assert await _series(client, founder, "sales_cycle_days", **monthly) == [("2025-02-01", 36), ("2025-03-01", 40)]
    # open deals at the month's end * won amount / won deals * won / (won + lost) / (cycle days / won deals), over
    # the month and the two before it:
    # Feb: 3 * 100000 * 1/2 / 36 = 4166.67; Mar and Apr (Feb + Mar): 3 * 121250 * 4/6 / 39 = 6217.95;
    # May (Mar): 3 * 128333.33 * 3/4 / 40 = 7218.75; Jan and Jun have no closed deal in their window
    assert await _series(client, founder, "sales_velocity", **monthly) == [
        ("2025-02-01", 4167),
        ("2025-03-01", 6218),
        ("2025-04-01", 6218),
        ("2025-05-01", 7219),
    ]


async def test_pages_are_followed_and_a_later_sync_reads_only_what_changed(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    fake = FakeHubSpot()
    times = _hourly(fake, 250)
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url, currency="usd")
        first = await wait_for_sync(client, founder, integration["id"])
        assert first["status"] == "succeeded", first
        assert first["fetched"] == {"pipelines": 1, "deals": 250}
        assert fake.searches == [_search(0), _search(0, "100"), _search(0, "200")]
        assert not fake.vendor.requests_to("/account-info")  # the currency is configured
        state = (await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)).json()
        assert state["data"]["streams"] == {"deals": {"since": millis(times[-1]) - LAG_MS}}

        ids = sorted(fake.deals, key=int)
        later = times[-1] + dt.timedelta(days=3)
        fake.update_deal(
            ids[10],
            modified=later,
            amount="999.99",
            dealstage="closedwon",
            hs_is_closed="true",
            hs_is_closed_won="true",
            closedate="2025-01-20T10:00:00.000Z",
        )
        fake.update_deal(ids[20], modified=later, dealname="Renamed")
        fake.add_deal(created=later, dealname="New", amount="5", dealstage="qualifiedtobuy", pipeline="default")
        second = await sync_now(client, founder, integration["id"])
    # the three changes, and the newest deal of the first sync again (the five minutes the cursor steps back)
    assert fake.searches[3:] == [_search(millis(times[-1]) - LAG_MS)]
    assert second["fetched"] == {"pipelines": 1, "deals": 4}
    rows = await _deal_rows(database, founder)
    assert len(rows) == 251
    by_id = {row.external_id: row for row in rows}
    assert (by_id[ids[10]].amount, by_id[ids[10]].closed, by_id[ids[10]].won) == (99999, True, True)
    assert by_id[ids[20]].name == "Renamed"
    assert by_id[ids[0]].amount == 10000


async def test_a_search_restarts_from_the_newest_modification_before_the_result_cap(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    """With a cap of 250 results a query, the third page (after 200) would pass it: the search starts again from
    one millisecond before the newest modification seen, so the deals sharing that millisecond (195 to 205) are all
    read, five of them twice."""
    fake = FakeHubSpot(result_cap=250)
    times = _hourly(fake, 320)
    tied = times[195]
    for deal_id in sorted(fake.deals, key=int)[195:206]:
        fake.update_deal(deal_id, modified=tied)
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url, maxResultsPerSearch=250)
        run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "succeeded", run
    restart = millis(tied) - 1
    assert fake.searches == [_search(0), _search(0, "100"), _search(restart), _search(restart, "100")]
    assert run["fetched"]["deals"] == 325
    assert len({row.external_id for row in await _deal_rows(database, founder)}) == 320


async def test_a_sync_stopped_on_page_three_resumes_from_its_cursor_without_duplicates(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    fake = FakeHubSpot(fail_after_searches=2, failures=6)  # page 3 fails on every attempt (5 retries)
    times = _hourly(fake, 250)
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        failed = await wait_for_sync(client, founder, integration["id"])
        assert failed["status"] == "failed"
        assert "503" in failed["error"] and SEARCH_PATH in failed["error"]
        assert len(await _deal_rows(database, founder)) == 200
        found = (await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)).json()
        assert found["data"]["status"] == "active" and found["data"]["lastError"] == failed["error"]
        assert found["data"]["streams"]["deals"] == {"since": millis(times[199]) - 1}

        resumed = await sync_now(client, founder, integration["id"])
    assert fake.searches[2:] == [_search(millis(times[199]) - 1)]
    assert resumed["fetched"]["deals"] == 51  # deal 199 again, then 200 to 249
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM metrics.deals),"
                    " (SELECT count(DISTINCT external_id) FROM metrics.deals),"
                    " (SELECT count(*) FROM integrations.records WHERE stream = 'deals')"
                )
            )
        ).one()
    assert tuple(counts) == (250, 250, 250)


async def test_rate_limits_and_server_errors_are_retried(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    """Asked to go at 50 requests a second, the connector meets HubSpot's 4 a second: 429 with Retry-After, waited
    out; two 503 answers are retried with backoff."""
    fake = FakeHubSpot()
    _hourly(fake, 600)
    fake.vendor.fail_next("server_error", path_prefix=SEARCH_PATH, count=2)
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url, requestsPerSecond=50)
        run = await wait_for_sync(client, founder, integration["id"])
        fake.vendor.fail_next("rate_limited")
        async with httpx.AsyncClient(base_url=url) as http:
            refused = await http.get("/crm/v3/pipelines/deals", headers={"Authorization": f"Bearer {fake.token}"})
    assert run["status"] == "succeeded", run
    assert fake.vendor.throttled > 0
    assert len(fake.searches) == 6
    assert len(await _deal_rows(database, founder)) == 600
    assert refused.status_code == 429 and refused.headers["retry-after"] == "0"
    assert refused.json()["category"] == "RATE_LIMITS"  # HubSpot's error body


async def test_a_malformed_page_fails_the_run_and_keeps_the_pages_before_it(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database: Database
) -> None:
    fake = FakeHubSpot(malformed_searches={2})
    times = _hourly(fake, 250)
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration["id"])
    assert run["status"] == "failed"
    assert run["error"] == "HubSpot sent a deals search page that cannot be read"
    assert len(await _deal_rows(database, founder)) == 100
    found = (await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)).json()["data"]
    assert found["status"] == "active"
    assert found["streams"]["deals"] == {"since": millis(times[99]) - 1}


async def test_a_revoked_token_puts_the_integration_in_error(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    fake = FakeHubSpot()
    _hourly(fake, 3)
    token = fake.token
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
        fake.revoke()
        response = await client.post(f"/api/v1/integrations/{integration['id']}/sync", headers=founder.headers)
        assert response.status_code == 202, response.text
        run = await wait_for_sync(client, founder, integration["id"])
        tested = await client.post(f"/api/v1/integrations/{integration['id']}/test", headers=founder.headers)
        async with httpx.AsyncClient(base_url=url) as http:
            refused = await http.get("/crm/v3/pipelines/deals", headers={"Authorization": f"Bearer {token}"})
    assert run["status"] == "failed" and run["error"] == "the provider refused the credentials (401)"
    found = (await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)).json()["data"]
    assert found["status"] == "error" and token not in str(found)
    assert tested.status_code == 422 and tested.json()["error"]["code"] == "connection_failed"
    assert refused.status_code == 401 and refused.json()["category"] == "INVALID_AUTHENTICATION"


async def test_bad_settings_and_deliveries_are_refused_with_a_reason(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    fake = FakeHubSpot()
    async with serving(fake.app) as url:
        for config, named in (
            ({"requestsPerSecond": "fast"}, "config.requestsPerSecond"),
            ({"currency": "dollars"}, "config.currency"),
            ({"maxResultsPerSearch": 50_000}, "config.maxResultsPerSearch"),
        ):
            response = await client.post(
                "/api/v1/integrations",
                headers=founder.headers,
                json={
                    "provider": "hubspot",
                    "name": "CRM",
                    "credentials": {"accessToken": fake.token},
                    "config": {"baseUrl": url, **config},
                },
            )
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "validation_error" and named in error["message"], error
            assert f"body.{named}" in [detail["field"] for detail in error["details"]], error
        unknown = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "hubspot",
                "name": "CRM",
                "credentials": {"accessToken": fake.token},
                "config": {"baseUrl": url, "portalId": 1},
            },
        )
        assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "body.config.portalId"
        untested = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "hubspot",
                "name": "CRM",
                "credentials": {"accessToken": fake.token},
                "config": {"baseUrl": url, "currency": 42},
                "test": False,
            },
        )
        assert untested.status_code == 422, untested.text  # checked even when the connection is not tried
        integration = await connect(
            client, founder, "hubspot", credentials={"accessToken": fake.token}, config={"baseUrl": url}, test=False
        )
    delivery = await client.post(
        integration["webhookPath"], content=b'{"objectId": 1}', headers={"Content-Type": "application/json"}
    )
    assert delivery.status_code == 401 and delivery.json()["error"]["code"] == "invalid_signature"


async def test_a_missing_exchange_rate_leaves_the_money_metrics_out_until_it_is_added(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    fake = FakeHubSpot()
    fake.add_deal(
        created=BASE,
        dealname="Pounds",
        amount="100.00",
        deal_currency_code="GBP",
        dealstage="contractsent",
        pipeline="default",
    )
    fake.add_deal(created=BASE, dealname="Dollars", amount="50.00", dealstage="contractsent", pipeline="default")
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
    missing = await client.get("/api/v1/dashboard/series", headers=founder.headers, params={"metric": "open_pipeline"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_metric"
    assert (await _series(client, founder, "open_deals"))[-1][1] == 2
    stale = (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]["problem"]
    assert stale.startswith("Pipeline metrics are not up to date: no exchange rate for GBP"), stale

    added = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={"rates": [{"currency": "GBP", "day": "2025-01-01", "perUsd": "0.8"}]},
    )
    assert added.status_code == 200, added.text
    deadline = asyncio.get_running_loop().time() + 60
    while (
        found := await client.get(
            "/api/v1/dashboard/series", headers=founder.headers, params={"metric": "open_pipeline"}
        )
    ).status_code == 404:
        assert asyncio.get_running_loop().time() < deadline, "the metrics were not rebuilt"
        await asyncio.sleep(0.1)
    # 10000 pence / 0.8 = 12500 cents, and 5000: open since 2025-01-01, weighted 0.9 each
    assert amounts(found.json()["data"])["points"][-1]["value"] == 17500
    assert [value for _, value in await _series(client, founder, "weighted_pipeline")] == [15750]
    assert (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]["problem"] is None


async def test_pipeline_money_is_in_the_reporting_currency_minor_units(
    client: httpx.AsyncClient, founder: Account, worker: Workers
) -> None:
    """Reported in yen, which have no minor unit: a deal kept as hundredths is divided down, never shown as 100x."""
    rates = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={"rates": [{"currency": "JPY", "day": "2025-01-01", "perUsd": "150"}]},
    )
    assert rates.status_code == 200, rates.text
    settings = await client.patch(
        "/api/v1/metrics/settings", headers=founder.headers, json={"reportingCurrency": "JPY"}
    )
    assert settings.status_code == 200, settings.text
    fake = FakeHubSpot()
    fake.add_deal(created=BASE, dealname="Dollars", amount="1000.00", dealstage="contractsent", pipeline="default")
    fake.add_deal(
        created=BASE,
        dealname="Yen",
        amount="5000",
        deal_currency_code="JPY",
        dealstage="contractsent",
        pipeline="default",
    )
    async with serving(fake.app) as url:
        integration = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
    response = await client.get("/api/v1/dashboard/series", headers=founder.headers, params={"metric": "open_pipeline"})
    assert response.status_code == 200, response.text
    # $1,000.00 at 150 yen a dollar is ¥150,000, and ¥5,000 stays ¥5,000: 155000 yen, exponent 0
    assert response.json()["data"]["points"][-1]["value"] == {"amount": 155000, "currency": "JPY", "exponent": 0}
