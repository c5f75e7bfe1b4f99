"""Shopify through its fake GraphQL Admin API: full and incremental syncs, paging under the cost limit, a killed
sync resuming, retries and throttling, failures a merchant can read, webhooks, and the commerce metrics checked
against numbers worked out by hand (docs/integrations/shopify.md, "Worked example")."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.fakes.shopify import GRAPHQL_PATH, ShopifyStore, sign
from tests.integrations.conftest import connect, latest_run, sync_now, wait_for_sync
from tests.metrics.money import amounts
from tests.workers import Workers

SECRET = f"shpss_{uuid.uuid4().hex}"
FULL_PAGE = 58  # 250 orders would cost 4252 points: the page is asked again with 250 * 1000 // 4252 orders


def _store(**options: Any) -> ShopifyStore:
    return ShopifyStore(token=f"shpat_{uuid.uuid4().hex}", **{"restore_rate": 5000.0, **options})


@pytest.fixture
def store() -> ShopifyStore:
    return _store()


@pytest.fixture
async def store_url(store: ShopifyStore) -> AsyncIterator[str]:
    async with serving(store.app) as url:
        yield url


async def _connect(
    client: httpx.AsyncClient, account: Account, store: ShopifyStore, url: str, *, test: bool = True
) -> str:
    integration = await connect(
        client,
        account,
        "shopify",
        credentials={"accessToken": store.token, "webhookSecret": SECRET},
        config={"shop": store.domain, "baseUrl": url},
        test=test,
    )
    return str(integration["id"])


async def _rows(database: Database, account: Account, sql: str, **params: Any) -> list[Any]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return list((await session.execute(text(sql), params)).all())


async def _count(database: Database, account: Account, table: str) -> int:
    rows = await _rows(database, account, f"SELECT count(*) FROM {table}")
    return int(rows[0][0])


def _many_orders(store: ShopifyStore, count: int) -> list[str]:
    return [
        store.add_order(processed_at=f"2026-03-{1 + index // 60:02d}T10:{index % 60:02d}:00Z", subtotal="10.00")
        for index in range(count)
    ]


async def _series(
    client: httpx.AsyncClient, account: Account, metric: str, grain: str, start: str, end: str
) -> dict[str, Any]:
    response = await client.get(
        "/api/v1/dashboard/series",
        headers=account.headers,
        params={"metric": metric, "grain": grain, "start": start, "end": end},
    )
    assert response.status_code == 200, response.text
    return {point["day"]: point["value"] for point in amounts(response.json()["data"])["points"]}


async def _daily(client: httpx.AsyncClient, account: Account, metric: str, start: str, end: str) -> dict[str, Any]:
    return await _series(client, account, metric, "day", start, end)


async def test_full_sync_stores_orders_and_computes_the_commerce_metrics(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    """The worked example of docs/integrations/shopify.md: days and months in New York (UTC-5 in winter)."""
    policy = await client.patch(
        "/api/v1/metrics/settings", headers=founder.headers, json={"timezone": "America/New_York"}
    )
    assert policy.status_code == 200, policy.text
    ann, bob, cat, dan, eve = (store.add_customer(created_at="2025-12-01T00:00:00Z") for _ in range(5))
    first = store.add_order(
        customer=ann, processed_at="2026-01-05T15:00:00Z", subtotal="100.00", shipping="10.00", tax="8.00"
    )
    store.add_order(customer=bob, processed_at="2026-01-06T03:30:00Z", subtotal="50.00", shipping="5.00", tax="4.00")
    second = store.add_order(customer=ann, processed_at="2026-01-07T12:00:00Z", subtotal="80.00", tax="6.40")
    store.add_order(processed_at="2026-01-07T20:00:00Z", subtotal="25.55", shipping="4.45")  # a guest
    test_order = store.add_order(customer=cat, processed_at="2026-01-07T16:00:00Z", subtotal="999.00", test=True)
    cancelled = store.add_order(
        customer=bob, processed_at="2026-01-08T15:00:00Z", subtotal="40.00", cancelled_at="2026-01-08T18:00:00Z"
    )
    store.add_order(customer=cat, processed_at="2026-02-01T04:30:00Z", subtotal="20.00")
    taxed = store.add_order(
        customer=bob,
        processed_at="2026-02-02T16:00:00Z",
        subtotal="60.00",
        tax="10.00",
        shipping="6.00",
        shipping_tax="1.00",
        taxes_included=True,
    )
    store.add_order(customer=dan, processed_at="2026-02-02T18:00:00Z", subtotal="30.00")
    store.add_order(customer=eve, processed_at="2026-02-03T17:00:00Z", subtotal="12.34")
    store.add_refund(second, amount="30.00", created_at="2026-01-09T14:00:00Z")
    store.add_refund(cancelled, amount="40.00", created_at="2026-01-08T18:05:00Z")
    store.add_refund(first, amount="10.00", created_at="2026-02-03T15:00:00Z")

    integration_id = await _connect(client, founder, store, store_url)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"orders": 10, "customers": 5}

    rows = {
        row.external_id: row
        for row in await _rows(
            database,
            founder,
            (
                "SELECT external_id, customer, subtotal, shipping, tax, total, currency, financial_status, test, "
                "cancelled_at FROM metrics.orders WHERE integration_id = :id"
            ),
            id=integration_id,
        )
    }
    assert len(rows) == 10
    assert (rows[first].subtotal, rows[first].shipping, rows[first].tax, rows[first].total) == (10000, 1000, 800, 11800)
    # prices including tax: 60.00 of items less their 9.00 of tax, 6.00 of shipping less its 1.00
    assert (rows[taxed].subtotal, rows[taxed].shipping, rows[taxed].tax, rows[taxed].total) == (5100, 500, 1000, 6600)
    assert rows[taxed].customer == bob and rows[taxed].currency == "USD"
    assert rows[test_order].test is True
    assert rows[cancelled].cancelled_at is not None and rows[cancelled].financial_status == "refunded"
    refunds = await _rows(database, founder, 'SELECT "order", amount FROM metrics.order_refunds ORDER BY amount')
    assert [(row.order, row.amount) for row in refunds] == [(first, 1000), (second, 3000), (cancelled, 4000)]

    span = ("2026-01-05", "2026-02-03")
    revenue, orders, aov, refunded, repeat = [
        await _daily(client, founder, metric, *span)
        for metric in ("revenue", "orders", "aov", "refunds", "repeat_rate")
    ]
    # Jan 5: 100.00 + 50.00 (22:30 in New York); Jan 7: 80.00 + 25.55 (the test order does not count); Jan 9: the
    # 30.00 refund; Jan 31: 20.00 (04:30 UTC on Feb 1); Feb 2: 51.00 + 30.00; Feb 3: 12.34 less a 10.00 refund
    assert {day: value for day, value in revenue.items() if value} == {
        "2026-01-05": 15000,
        "2026-01-07": 10555,
        "2026-01-09": -3000,
        "2026-01-31": 2000,
        "2026-02-02": 8100,
        "2026-02-03": 234,
    }
    assert revenue["2026-01-06"] == 0 and revenue["2026-01-08"] == 0  # the cancelled order and its refund: nothing
    assert {day: value for day, value in orders.items() if value} == {
        "2026-01-05": 2,
        "2026-01-07": 2,
        "2026-01-31": 1,
        "2026-02-02": 2,
        "2026-02-03": 1,
    }
    assert {day: value for day, value in refunded.items() if value} == {"2026-01-09": 3000, "2026-02-03": 1000}
    # 10555 / 2 = 5277.5, rounded half up
    assert aov == {"2026-01-05": 7500, "2026-01-07": 5278, "2026-01-31": 2000, "2026-02-02": 4050, "2026-02-03": 234}
    # Jan 7: Ann ordered on Jan 5 (the guest is not a customer); Jan 31: Cat's earlier order was a test; Feb 2: Bob
    # ordered in January, Dan never had
    assert repeat == {"2026-01-05": 0, "2026-01-07": 100, "2026-01-31": 0, "2026-02-02": 50, "2026-02-03": 0}

    monthly = {
        metric: await _series(client, founder, metric, "month", "2026-01-01", "2026-02-28")
        for metric in ("revenue", "orders", "refunds", "aov", "repeat_rate")
    }
    assert monthly == {
        "revenue": {"2026-01-01": 24555, "2026-02-01": 8334},
        "orders": {"2026-01-01": 5, "2026-02-01": 3},
        "refunds": {"2026-01-01": 3000, "2026-02-01": 1000},
        "aov": {"2026-01-01": 4911, "2026-02-01": 2778},
        "repeat_rate": {"2026-01-01": 0, "2026-02-01": 33.3333},
    }
    weekly = await _series(client, founder, "revenue", "week", "2026-01-05", "2026-01-11")
    assert weekly == {"2026-01-05": 15000 + 10555 - 3000}  # Monday to Sunday, the days' sum


async def test_pages_follow_the_cursor_and_shrink_under_the_cost_limit(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    _many_orders(store, 130)
    integration_id = await _connect(client, founder, store, store_url)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"orders": 130, "customers": 0}
    assert await _count(database, founder, "metrics.orders") == 130

    calls = store.calls_of("orders")
    assert [call.arguments["first"] for call in calls] == [250, FULL_PAGE, FULL_PAGE, FULL_PAGE]
    assert store.refused_as_too_costly == 1
    assert all(call.arguments["sortKey"] == "UPDATED_AT" and call.arguments["query"] is None for call in calls)
    afters = [call.arguments["after"] for call in calls]
    assert afters[:2] == [None, None] and afters[2] and afters[3] and afters[2] != afters[3]


async def test_an_incremental_sync_fetches_only_what_changed(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    orders = [store.add_order(processed_at=f"2026-03-01T0{8 + index}:00:00Z", subtotal="10.00") for index in range(2)]
    orders += [
        store.add_order(processed_at=at, subtotal="10.00") for at in ("2026-03-01T09:58:00Z", "2026-03-01T10:00:00Z")
    ]
    integration_id = await _connect(client, founder, store, store_url)
    assert (await wait_for_sync(client, founder, integration_id))["fetched"]["orders"] == 4

    store.edit_order(orders[0], updated_at="2026-03-02T10:00:00Z", subtotal="15.00")
    store.add_refund(orders[1], amount="4.00", created_at="2026-03-02T11:00:00Z")
    added = store.add_order(processed_at="2026-03-02T12:00:00Z", subtotal="7.00")
    before = len(store.calls)
    run = await sync_now(client, founder, integration_id)
    # the two orders changed within five minutes of the newest one are listed again, but were stored: not fetched
    assert run["fetched"]["orders"] == 3
    listed = [call for call in store.calls[before:] if call.root == "orders"]
    assert {call.arguments["query"] for call in listed} == {"updated_at:>'2026-03-01T09:55:00Z'"}
    subtotals = {
        row.external_id: row.subtotal
        for row in await _rows(database, founder, "SELECT external_id, subtotal FROM metrics.orders")
    }
    assert subtotals == {orders[0]: 1500, orders[1]: 1000, orders[2]: 1000, orders[3]: 1000, added: 700}
    assert [row.amount for row in await _rows(database, founder, "SELECT amount FROM metrics.order_refunds")] == [400]

    assert (await sync_now(client, founder, integration_id))["fetched"] == {"orders": 0, "customers": 0}


async def test_a_sync_killed_midway_resumes_from_its_cursor(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    _many_orders(store, 130)
    store.fail_after_pages(2, "server_error", count=6)  # the third page fails beyond the five retries
    integration_id = await _connect(client, founder, store, store_url)
    failed = await wait_for_sync(client, founder, integration_id)
    assert failed["status"] == "failed"
    assert failed["error"] == f"POST {GRAPHQL_PATH}: 503 after 6 attempts"
    assert failed["fetched"] == {"orders": 2 * FULL_PAGE}
    assert await _count(database, founder, "metrics.orders") == 2 * FULL_PAGE
    state = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()["data"]
    saved = state["streams"]["orders"]["after"]
    assert saved and state["lastError"] == failed["error"]

    before = len(store.calls)
    resumed = await sync_now(client, founder, integration_id)
    assert resumed["fetched"] == {"orders": 130 - 2 * FULL_PAGE, "customers": 0}
    assert [call.arguments["after"] for call in store.calls[before:] if call.root == "orders"] == [saved, saved]
    assert await _count(database, founder, "metrics.orders") == 130
    assert await _count(database, founder, "integrations.records") == 130


async def test_rate_limited_and_failing_requests_are_retried(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    """429s (Retry-After: 1) from a ceiling of one request a second, and two 503s: the sync still succeeds."""
    _many_orders(store, 10)
    store.vendor.requests_per_second = 1
    store.vendor.fail_next("server_error", path_prefix=GRAPHQL_PATH, count=2)
    integration_id = await _connect(client, founder, store, store_url, test=False)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert await _count(database, founder, "metrics.orders") == 10
    assert store.vendor.throttled >= 1
    answered_by_shopify = len(store.calls)
    assert len(store.vendor.requests_to(GRAPHQL_PATH)) == answered_by_shopify + 2 + store.vendor.throttled


async def test_throttled_queries_wait_for_the_cost_bucket(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    """A THROTTLED answer (HTTP 200) is retried once the bucket refilled; the pages after it wait for the bucket
    instead of being throttled: each costs 988 of a bucket of 1000 refilled at 1000 points a second."""
    store = _store(maximum_available=1000.0, restore_rate=1000.0)
    _many_orders(store, 130)
    store.drain_before_next("orders")
    async with serving(store.app) as url:
        integration_id = await _connect(client, founder, store, url, test=False)
        run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert store.throttled == 1
    assert await _count(database, founder, "metrics.orders") == 130


async def test_a_malformed_page_fails_the_run_and_keeps_what_was_stored(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    _many_orders(store, 130)
    store.fail_after_pages(1, "malformed", count=6)
    integration_id = await _connect(client, founder, store, store_url)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "failed"
    assert run["error"] == f"POST {GRAPHQL_PATH}: the answer is not JSON"
    assert await _count(database, founder, "metrics.orders") == FULL_PAGE
    integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()
    assert integration["data"]["status"] == "active" and integration["data"]["lastError"] == run["error"]


async def test_a_revoked_token_puts_the_integration_in_error(
    client: httpx.AsyncClient, founder: Account, worker: Workers, store: ShopifyStore, store_url: str
) -> None:
    _many_orders(store, 3)
    integration_id = await _connect(client, founder, store, store_url)
    assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
    token = store.token
    store.revoke()
    response = await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=founder.headers)
    assert response.status_code == 202
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "failed" and run["error"] == "the provider refused the credentials (401)"
    integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).text
    assert json.loads(integration)["data"]["status"] == "error"
    assert token not in integration and token not in json.dumps(await latest_run(client, founder, integration_id))


async def test_a_missing_scope_puts_the_integration_in_error(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    _many_orders(store, 3)
    store.scopes.discard("read_customers")
    integration_id = await _connect(client, founder, store, store_url)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "failed" and run["fetched"] == {"orders": 3}
    assert run["error"] == (
        "the access token lacks a scope: Access denied for customers field. Required access: "
        "`read_customers` access scope."
    )
    integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()
    assert integration["data"]["status"] == "error"
    assert await _count(database, founder, "metrics.orders") == 3


async def test_a_store_address_that_is_not_a_shop_is_refused(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.post(
        "/api/v1/integrations",
        headers=founder.headers,
        json={
            "provider": "shopify",
            "name": "Store",
            "credentials": {"accessToken": "shpat_x"},
            "config": {"shop": "https://example.com/admin"},
        },
    )
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["body.config.shop"]
    assert "myshopify.com" in response.json()["error"]["message"]
    for config in ({}, {"shop": 42}, {"shop": "acme.myshopify.com", "requestsPerSecond": 0}):
        refused = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={"provider": "shopify", "name": "Store", "credentials": {"accessToken": "shpat_x"}, "config": config},
        )
        assert refused.status_code == 422, (config, refused.text)
    listed = await client.get("/api/v1/integrations", headers=founder.headers)
    assert listed.json()["data"] == []


async def _deliver(
    client: httpx.AsyncClient, integration_id: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(f"/api/v1/integrations/{integration_id}/webhooks/shopify", content=body, headers=headers)


async def _processed(database: Database, account: Account, event_id: str) -> None:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        rows = await _rows(
            database,
            account,
            "SELECT status FROM integrations.webhook_deliveries WHERE event_id = :event",
            event=event_id,
        )
        if rows and rows[0].status == "processed":
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"delivery {event_id} not processed: {rows}")
        await asyncio.sleep(0.1)


async def test_webhooks_are_verified_processed_once_and_update_the_synced_rows(
    client: httpx.AsyncClient,
    founder: Account,
    database: Database,
    worker: Workers,
    store: ShopifyStore,
    store_url: str,
) -> None:
    ann = store.add_customer(created_at="2026-04-01T00:00:00Z")
    store.add_order(customer=ann, processed_at="2026-04-02T10:00:00Z", subtotal="10.00")
    integration_id = await _connect(client, founder, store, store_url)
    assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"

    placed = store.add_order(
        customer=ann,
        processed_at="2026-04-03T23:30:00Z",
        subtotal="60.00",
        tax="10.00",
        shipping="6.00",
        shipping_tax="1.00",
        taxes_included=True,
    )
    body = json.dumps(store.rest_order(placed)).encode()
    headers = store.webhook_headers(body, topic="orders/create", secret=SECRET)
    first = await _deliver(client, integration_id, body, headers)
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"received": True, "duplicate": False}
    replay = await _deliver(client, integration_id, body, headers)
    assert replay.status_code == 200 and replay.json()["data"]["duplicate"] is True
    forged = await _deliver(client, integration_id, body, {**headers, "X-Shopify-Hmac-Sha256": sign(body, "guess")})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    unsigned = {name: value for name, value in headers.items() if name != "X-Shopify-Hmac-Sha256"}
    assert (await _deliver(client, integration_id, body, unsigned)).status_code == 401
    no_topic = {name: value for name, value in headers.items() if name != "X-Shopify-Topic"}
    refused = await _deliver(client, integration_id, body, no_topic)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_delivery"

    await _processed(database, founder, headers["X-Shopify-Webhook-Id"])
    deliveries = await _rows(database, founder, "SELECT count(*) FROM integrations.webhook_deliveries")
    assert deliveries[0][0] == 1
    columns = "customer, placed_at, currency, subtotal, shipping, tax, total, cancelled_at, test"
    query = f"SELECT {columns} FROM metrics.orders WHERE external_id = :id"
    from_webhook = await _rows(database, founder, query, id=placed)
    assert len(from_webhook) == 1
    assert (from_webhook[0].customer, from_webhook[0].subtotal, from_webhook[0].shipping, from_webhook[0].total) == (
        ann,
        5100,
        500,
        6600,
    )
    assert (await _daily(client, founder, "revenue", "2026-04-03", "2026-04-03")) == {"2026-04-03": 5100}

    refund = store.add_refund(placed, amount="5.00", created_at="2026-04-05T09:00:00Z")
    refund_body = json.dumps(store.rest_refund(refund)).encode()
    refund_headers = store.webhook_headers(refund_body, topic="refunds/create", secret=SECRET)
    assert (await _deliver(client, integration_id, refund_body, refund_headers)).status_code == 200
    await _processed(database, founder, refund_headers["X-Shopify-Webhook-Id"])
    assert [
        (row.external_id, row.amount)
        for row in await _rows(database, founder, "SELECT external_id, amount FROM metrics.order_refunds")
    ] == [(refund, 500)]
    assert store.calls_of("order")[-1].arguments == {"id": placed}

    store.edit_order(placed, updated_at="2026-04-06T08:00:00Z", subtotal="80.00")
    late = store.webhook_headers(body, topic="orders/updated", secret=SECRET)  # the first state, delivered late
    assert (await _deliver(client, integration_id, body, late)).status_code == 200
    await _processed(database, founder, late["X-Shopify-Webhook-Id"])
    from_webhook = await _rows(database, founder, query, id=placed)
    assert from_webhook[0].subtotal == 7100  # the order as it is now (80.00 less 9.00 of item tax), not 51.00

    await sync_now(client, founder, integration_id)
    from_sync = await _rows(database, founder, query, id=placed)
    assert from_sync == from_webhook  # the webhook and the sync update the same row, alike
    records = await _rows(
        database, founder, "SELECT count(*) FROM integrations.records WHERE external_id = :id", id=placed
    )
    assert records[0][0] == 1


async def test_orders_in_another_currency_are_converted_with_their_minor_units(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    """A yen has no minor unit: ¥1,500 is 1500, and at 150 yen a dollar it is $10.00 of revenue, 1000 cents."""
    store = _store(currency="JPY", domain="tokyo.myshopify.com", timezone="Asia/Tokyo")
    store.add_order(processed_at="2026-03-10T03:00:00Z", subtotal="1500")
    async with serving(store.app) as url:
        integration_id = await _connect(client, founder, store, url)
        assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
    stored = await _rows(database, founder, "SELECT subtotal, currency FROM metrics.orders")
    assert [(row.subtotal, row.currency) for row in stored] == [(1500, "JPY")]
    unconverted = await client.get("/api/v1/dashboard/series", headers=founder.headers, params={"metric": "revenue"})
    assert unconverted.status_code == 404  # no rate for JPY yet: no number rather than a wrong one
    stale = (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]["problem"]
    assert stale.startswith("Commerce metrics are not up to date: no exchange rate for JPY on or before"), stale

    rates = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={"rates": [{"currency": "JPY", "day": "2026-03-01", "perUsd": "150"}]},
    )
    assert rates.status_code == 200, rates.text
    deadline = asyncio.get_running_loop().time() + 60
    while (
        response := await client.get(
            "/api/v1/dashboard/series",
            headers=founder.headers,
            params={"metric": "revenue", "start": "2026-03-10", "end": "2026-03-10"},
        )
    ).status_code == 404:
        assert asyncio.get_running_loop().time() < deadline, "the metrics were not recomputed"
        await asyncio.sleep(0.1)
    assert amounts(response.json()["data"])["points"] == [{"day": "2026-03-10", "value": 1000}]
    assert (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]["problem"] is None
