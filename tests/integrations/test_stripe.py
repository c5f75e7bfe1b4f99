"""Stripe end to end: a generated account behind the fake Stripe API, synced by a real worker, and the merchant's
metrics equal to the reference calculation run over an independent mapping of the same Stripe objects
(``tests/metrics/stripe_reference.py``): every month and movement to the cent, rates to 0.01 points.

Also: pagination (lists, invoice lines), incremental syncs that read only events, a sync failed mid-way that resumes
from its saved cursor, retried 429s and 5xx, a malformed page, a revoked key, an events cursor past Stripe's 30
days, and signed webhooks (the signatures made with Stripe's own library)."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import time
import uuid
import zoneinfo
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import stripe
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.loopback import serving
from northstar.demo.stripe_account import Account, add_months, generate, rates_body
from northstar.demo.stripe_api import EMBEDDED, FakeStripe
from northstar.metrics import engine
from northstar.metrics.service import MONTH_METRICS
from tests.factories import Account as Founder
from tests.integrations.conftest import connect, integration_of, latest_run, sync_now, wait_for_sync
from tests.metrics.compare import cohort_differences, differences
from tests.metrics.money import amounts
from tests.metrics.reference import Reference
from tests.metrics.stripe_reference import AsOf, rate_table, reference_lines
from tests.workers import Workers

WEBHOOK_SECRET = f"whsec_{uuid.uuid4().hex}"
RATES = ("customer_churn_rate", "gross_mrr_churn_rate", "net_mrr_churn_rate", "quick_ratio", "nrr", "grr")
SMALL = 120  # customers over 24 months: the account most tests sync


def account_until_now(customers: int = SMALL, seed: int = 7) -> Account:
    """A generated account whose 24 months end now (so its last 30 days of events are Stripe's 30 days)."""
    start = dt.datetime.fromtimestamp(add_months(int(time.time()), -24), dt.UTC)
    return generate(customers=customers, months=24, seed=seed, start=start)


@asynccontextmanager
async def served(account: Account, **options: Any) -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe(account, **options)
    async with serving(fake.app) as url:
        yield fake, url


async def connect_stripe(client: httpx.AsyncClient, founder: Founder, fake: FakeStripe, url: str, **config: Any) -> str:
    """Rates first (the account bills in three currencies), then the integration, whose first sync is queued."""
    rates = await client.put(
        "/api/v1/metrics/fx-rates", headers=founder.headers, json=rates_body(fake.account.fx_rates)
    )
    assert rates.status_code == 200, rates.text
    integration = await connect(
        client,
        founder,
        "stripe",
        credentials={"apiKey": fake.api_key, "webhookSecret": WEBHOOK_SECRET},
        config={"baseUrl": url, **config},
    )
    return str(integration["id"])


async def backfilled(client: httpx.AsyncClient, founder: Founder, fake: FakeStripe, url: str, **config: Any) -> str:
    integration_id = await connect_stripe(client, founder, fake, url, **config)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    return integration_id


async def rows(database: Database, founder: Founder, sql: str, **params: Any) -> list[Any]:
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        return list((await session.execute(text(sql), params)).all())


async def stored_counts(database: Database, founder: Founder, integration_id: str) -> dict[str, int]:
    found = await rows(
        database,
        founder,
        "SELECT stream, count(*) FROM integrations.records WHERE integration_id = :id GROUP BY stream",
        id=integration_id,
    )
    return {stream: int(count) for stream, count in found}


def listed_counts(account: Account) -> dict[str, int]:
    return {stream: len(objects) for stream, objects in account.streams().items() if objects}


async def today_of(client: httpx.AsyncClient, founder: Founder) -> tuple[dt.date, engine.Policy]:
    settings = (await client.get("/api/v1/metrics/settings", headers=founder.headers)).json()["data"]
    policy = engine.Policy(
        reporting_currency=settings["reportingCurrency"],
        timezone=settings["timezone"],
        deduct_discounts=settings["deductDiscounts"],
    )
    return dt.datetime.now(zoneinfo.ZoneInfo(policy.timezone)).date(), policy


def _typed(name: str, value: float | None) -> float | int | None:
    if value is None:
        return None
    return float(value) if name in RATES else int(value)


async def dashboard_months(
    client: httpx.AsyncClient, founder: Founder, first: dt.date, today: dt.date
) -> list[dict[str, object]]:
    """Every monthly metric from the dashboard's series, month by month (a metric with no value is null)."""
    values: dict[dt.date, dict[str, float]] = collections.defaultdict(dict)
    for name in MONTH_METRICS:
        response = await client.get(
            "/api/v1/dashboard/series",
            headers=founder.headers,
            params={"metric": name, "grain": "month", "start": first.isoformat(), "end": today.isoformat()},
        )
        if response.status_code == 404 and response.json()["error"]["code"] == "unknown_metric":
            continue
        assert response.status_code == 200, response.text
        for point in amounts(response.json()["data"])["points"]:
            values[dt.date.fromisoformat(point["day"])][name] = point["value"]
    months: list[dict[str, object]] = []
    month = first
    while month <= engine.month_start(today):
        months.append({"month": month, **{name: _typed(name, values[month].get(name)) for name in MONTH_METRICS}})
        month = engine.add_months(month, 1)
    return months


async def assert_metrics_equal_the_reference(
    client: httpx.AsyncClient, founder: Founder, database: Database, account: Account
) -> AsOf:
    """The dashboard (monthly metrics, daily MRR, cohorts, as of today) and the stored movements (every one,
    later ones included) against the reference run over the account's invoices."""
    today, policy = await today_of(client, founder)
    now = dt.datetime.now(dt.UTC)  # the moment of the recompute, to within the seconds since it ran
    reference = AsOf(reference_lines(account.invoices.values()), rate_table(account.fx_rates), policy, today, now)
    first = engine.month_start(min(day for _, day, _, _ in reference.movements))
    expected_months = reference.months(first, today, None)
    got_months = await dashboard_months(client, founder, first, today)
    wrong = [
        f"{want['month']} {line}"
        for got, want in zip(got_months, expected_months, strict=True)
        for line in differences(got, want)
    ]
    assert wrong[:20] == []

    stored = await rows(
        database,
        founder,
        """
        SELECT c.external_id, m.day, m.kind, m.amount FROM metrics.movements m
        JOIN metrics.customers c ON c.org_id = m.org_id AND c.id = m.customer_id""",
    )
    got_movements = sorted((str(customer), day, kind, int(amount)) for customer, day, kind, amount in stored)
    want_movements = sorted(
        Reference(reference_lines(account.invoices.values()), rate_table(account.fx_rates), policy, now).movements
    )  # kept whole: the months count those up to today
    assert [row for row in got_movements if row not in want_movements][:10] == []
    assert [row for row in want_movements if row not in got_movements][:10] == []

    response = await client.get(
        "/api/v1/dashboard/series",
        headers=founder.headers,
        params={"metric": "mrr", "grain": "day", "start": first.isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 200, response.text
    daily = {
        dt.date.fromisoformat(point["day"]): int(point["value"]) for point in amounts(response.json()["data"])["points"]
    }
    expected_daily = {
        first + dt.timedelta(days=offset): sum(
            reference.mrr_on(customer, first + dt.timedelta(days=offset)) for customer in reference.priced
        )
        for offset in range((today - first).days + 1)
    }
    assert {day: value for day, value in daily.items() if expected_daily.get(day) != value} == {}
    assert daily.keys() >= {day for day, value in expected_daily.items() if value}

    cohorts = amounts((await client.get("/api/v1/dashboard/cohorts", headers=founder.headers)).json()["data"])
    got_cohorts = [
        engine.CohortRow(
            cohort=dt.date.fromisoformat(row["cohort"]),
            k=row["k"],
            customers=row["customers"],
            mrr=row["mrr"],
            nrr=row["nrr"],
            grr=row["grr"],
        )
        for row in cohorts
    ]
    assert cohort_differences(got_cohorts, reference.cohorts(today))[:10] == []
    return reference


async def wait_until(check: Callable[[], Any], *, within: float = 60.0) -> None:
    """Poll ``check`` (an async callable) until it returns something true."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s")
        await asyncio.sleep(0.1)


def newest_first(account: Account, stream: str) -> list[str]:
    objects = account.streams()[stream]
    return sorted(objects, key=account.order.__getitem__, reverse=True)


# --- the fixture itself ------------------------------------------------------------------------------------------


def test_the_fixture_covers_every_case_and_is_the_same_for_a_seed() -> None:
    account = generate()
    invoices = list(account.invoices.values())
    lines = [line for invoice in invoices for line in invoice["lines"]["data"]]
    subscriptions = list(account.subscriptions.values())
    assert len(account.customers) == 500
    assert {invoice["status"] for invoice in invoices} == {"draft", "open", "paid", "uncollectible", "void"}
    assert {sub["status"] for sub in subscriptions} >= {
        "active",
        "past_due",
        "unpaid",
        "canceled",
        "trialing",
        "incomplete_expired",
    }
    recurring = [line["price"]["recurring"] for line in lines if line["price"]["recurring"]]
    assert {(part["interval"], part["interval_count"]) for part in recurring} == {
        ("month", 1),
        ("month", 3),
        ("year", 1),
    }
    assert {part["usage_type"] for part in recurring} == {"licensed", "metered"}
    assert any(line["price"]["recurring"] is None for line in lines)
    assert any(line["quantity"] > 1 for line in lines if line["price"]["recurring"])
    used = {
        (
            account.coupons[invoice["discount"]["coupon"]["id"]]["duration"],
            "percent" if invoice["discount"]["coupon"]["percent_off"] else "amount",
        )
        for invoice in invoices
        if invoice["discount"]
    }
    assert used == {("once", "percent"), ("repeating", "percent"), ("repeating", "amount"), ("forever", "percent")}
    assert any(line["proration"] and line["amount"] < 0 for line in lines)
    assert any(line["proration"] and line["amount"] > 0 for line in lines)
    assert any(len(invoice["lines"]["data"]) > EMBEDDED for invoice in invoices)
    trials = [sub for sub in subscriptions if sub["trial_end"]]
    assert any(sub["status"] == "canceled" and sub["ended_at"] == sub["trial_end"] for sub in trials)
    assert any(
        sub["status"] not in ("canceled", "trialing") and sub["trial_end"] <= sub["current_period_start"]
        for sub in trials
    )
    ended = [sub for sub in subscriptions if sub["status"] == "canceled"]
    assert any(sub["cancel_at_period_end"] and sub["ended_at"] == sub["current_period_end"] for sub in ended)
    assert any(sub["ended_at"] < sub["current_period_end"] for sub in ended)
    assert account.refunds and account.credit_notes
    assert {invoice["currency"] for invoice in invoices} == {"usd", "eur", "gbp"}
    taxes = [line["tax_amounts"][0]["inclusive"] if line["tax_amounts"] else None for line in lines]
    assert set(taxes) == {True, False, None}

    reference = AsOf(
        reference_lines(invoices),
        rate_table(account.fx_rates),
        engine.Policy(),
        dt.datetime.fromtimestamp(account.until, dt.UTC).date(),
    )
    assert {kind for _, _, kind, _ in reference.movements} == {
        "new",
        "expansion",
        "reactivation",
        "contraction",
        "churn",
        "fx",
    }
    rated = {(currency, day) for currency, day, _ in account.fx_rates}
    needed = {(line.currency, line.period_start.date()) for line in reference_lines(invoices) if line.currency != "USD"}
    assert needed <= rated

    first, again = generate(customers=60, seed=5), generate(customers=60, seed=5)
    assert orjson.dumps(first.streams()) == orjson.dumps(again.streams())
    assert orjson.dumps(first.events) == orjson.dumps(again.events)
    assert orjson.dumps(generate(customers=60, seed=6).streams()) != orjson.dumps(first.streams())


# --- full sync ---------------------------------------------------------------------------------------------------


async def test_backfill_pages_every_list_and_the_metrics_equal_the_reference(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now()
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)

        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        assert fake.vendor.throttled == 0  # the connector keeps under Stripe's 25 requests a second by itself
        stored_lines = await rows(database, founder, "SELECT count(*) FROM metrics.invoice_lines")
        assert stored_lines[0][0] == sum(len(invoice["lines"]["data"]) for invoice in account.invoices.values())
        for stream, path in (
            ("customers", "/v1/customers"),
            ("subscriptions", "/v1/subscriptions"),
            ("invoices", "/v1/invoices"),
        ):
            asked = [seen.query for seen in fake.seen if seen.path == path and seen.query.get("limit") == "100"]
            ids = newest_first(account, stream)
            assert [query.get("starting_after") for query in asked] == [None, *ids[99:-1:100]], stream
            assert all(query.get("status") == "all" for query in asked) or stream != "subscriptions"
        paged = {seen.path.split("/")[3]: seen.query for seen in fake.seen if seen.path.endswith("/lines")}
        long_invoices = {
            invoice["id"]: invoice for invoice in account.invoices.values() if len(invoice["lines"]["data"]) > EMBEDDED
        }
        assert paged.keys() == long_invoices.keys()
        assert all(
            query["starting_after"] == long_invoices[invoice_id]["lines"]["data"][EMBEDDED - 1]["id"]
            for invoice_id, query in paged.items()
        )

        await assert_metrics_equal_the_reference(client, founder, database, account)
        run = await latest_run(client, founder, integration_id)
        assert run["fetched"] == listed_counts(account)


async def test_a_full_size_account_in_another_currency_and_time_zone(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    """500 customers over 24 months, reported in euros in Berlin (days and months of that time zone)."""
    settings = await client.patch(
        "/api/v1/metrics/settings",
        headers=founder.headers,
        json={"reportingCurrency": "EUR", "timezone": "Europe/Berlin"},
    )
    assert settings.status_code == 200, settings.text
    account = account_until_now(customers=500, seed=11)
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)
        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        await assert_metrics_equal_the_reference(client, founder, database, account)


# --- incremental ---------------------------------------------------------------------------------------------------


def _active(account: Account) -> list[dict[str, Any]]:
    """Active monthly subscriptions of one item, not being cancelled."""
    found = [account.subscriptions[sub_id] for sub_id in newest_first(account, "subscriptions")]
    return [
        sub
        for sub in found
        if sub["status"] == "active"
        and not sub["cancel_at_period_end"]
        and len(sub["items"]["data"]) == 1
        and sub["items"]["data"][0]["price"]["recurring"]["interval"] == "month"
    ]


async def test_an_incremental_sync_reads_only_events_and_the_metrics_follow(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now()
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)
        upgraded, cancelled = _active(account)[:2]
        plan = account.price_keys[upgraded["items"]["data"][0]["price"]["id"]]
        bigger = "business" if plan != "business" else "pro"
        fake.change(upgraded["id"], price=account.price(bigger, upgraded["currency"]), quantity=3)
        fake.cancel(cancelled["id"], at_period_end=False, prorate=True)
        newcomer = fake.add_customer(currency="gbp", country="GB", state=None, tax_rate="gb_vat")
        fake.subscribe(newcomer["id"], [(account.price("team", "gbp"), 7)], coupon="LAUNCH20")
        since = (await integration_of(client, founder, integration_id))["streams"]["events"]["since"]
        listed = [event for event in account.events if event["created"] >= since]
        mark = len(fake.seen)

        run = await sync_now(client, founder, integration_id)

        asked = fake.seen[mark:]
        assert {seen.path for seen in asked} == {"/v1/events"}
        assert run["fetched"]["events"] == len(listed) > 4  # every event read, not only the objects they carried
        assert all("created[gte]" in seen.query or "created[gt]" in seen.query for seen in asked)
        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        status = await rows(
            database,
            founder,
            "SELECT external_id, status FROM metrics.subscriptions WHERE external_id = ANY(:ids)",
            ids=[cancelled["id"]],
        )
        assert status == [(cancelled["id"], "canceled")]
        await assert_metrics_equal_the_reference(client, founder, database, account)

        mark = len(fake.seen)
        await sync_now(client, founder, integration_id)  # nothing new: the last events again at most, nothing else
        assert {seen.path for seen in fake.seen[mark:]} == {"/v1/events"}
        await assert_metrics_equal_the_reference(client, founder, database, account)


async def test_events_older_than_thirty_days_mean_a_full_walk_again(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now(customers=40)
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)
        long_ago = int(time.time()) - 31 * 86400
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            await session.execute(
                text(
                    "UPDATE integrations.integrations SET state = jsonb_set(state, '{events,since}', to_jsonb(:since))"
                    " WHERE id = :id"
                ),
                {"since": long_ago, "id": integration_id},
            )
        fake.add_customer(name="Came while we were away")
        mark = len(fake.seen)

        await sync_now(client, founder, integration_id)

        paths = [seen.path for seen in fake.seen[mark:]]
        assert "/v1/events" not in paths
        assert paths[0] == "/v1/customers" and "starting_after" not in fake.seen[mark].query
        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        state = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()["data"][
            "streams"
        ]
        assert state["events"]["since"] > long_ago + 30 * 86400


# --- failures --------------------------------------------------------------------------------------------------------


async def test_a_sync_failed_mid_way_resumes_from_its_cursor_and_stores_nothing_twice(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now()
    invoices = newest_first(account, "invoices")
    failing = next(
        invoice_id
        for position, invoice_id in enumerate(invoices)
        if position >= 200 and len(account.invoices[invoice_id]["lines"]["data"]) > EMBEDDED
    )
    page = invoices.index(failing) // 100
    async with served(account) as (fake, url):
        fake.vendor.fail_next("server_error", path_prefix=f"/v1/invoices/{failing}/lines", count=6)
        integration_id = await connect_stripe(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "failed", run
        assert f"/v1/invoices/{failing}/lines" in run["error"] and "503" in run["error"]
        integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()[
            "data"
        ]
        assert integration["status"] == "active" and integration["lastError"] == run["error"]
        cursor = integration["streams"]["invoices"]
        assert cursor == {"starting_after": invoices[page * 100 - 1]}
        stored = await stored_counts(database, founder, integration_id)
        assert stored == {
            "customers": len(account.customers),
            "subscriptions": len(account.subscriptions),
            "invoices": page * 100,
        }
        mark = len(fake.seen)

        resumed = await sync_now(client, founder, integration_id)

        asked = fake.seen[mark:]
        assert not [seen for seen in asked if seen.path in ("/v1/customers", "/v1/subscriptions")]
        listing = [seen.query for seen in asked if seen.path == "/v1/invoices"]
        assert listing[0]["starting_after"] == cursor["starting_after"]
        assert [query["starting_after"] for query in listing] == invoices[page * 100 - 1 : -1 : 100]
        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        assert resumed["fetched"]["invoices"] == len(invoices) - page * 100
        twice = await rows(
            database, founder, "SELECT count(*) - count(DISTINCT external_id) FROM metrics.invoice_lines"
        )
        lines = await rows(database, founder, "SELECT count(*) FROM metrics.invoice_lines")
        assert twice[0][0] == 0
        assert lines[0][0] == sum(len(invoice["lines"]["data"]) for invoice in account.invoices.values())
        await assert_metrics_equal_the_reference(client, founder, database, account)


async def test_429s_with_retry_after_and_a_single_5xx_are_retried(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now(customers=60)
    async with served(account) as (fake, url):
        fake.vendor.fail_next("server_error", path_prefix="/v1/subscriptions")
        fake.vendor.fail_next("rate_limited", path_prefix="/v1/invoices", count=2)
        # a ceiling the connector's pace (60 a second) passes even on a busy machine: the fake answers 429 with
        # Retry-After, the connector waits
        fake.vendor.requests_per_second = 8
        integration_id = await backfilled(client, founder, fake, url, requestsPerSecond=60)
        assert fake.vendor.throttled > 0
        assert await stored_counts(database, founder, integration_id) == listed_counts(account)
        subscriptions = [seen.query for seen in fake.seen if seen.path == "/v1/subscriptions"]
        assert subscriptions[0] == subscriptions[1]  # the 503, then the same page again
        await assert_metrics_equal_the_reference(client, founder, database, account)


async def test_a_malformed_page_fails_the_run_readably_and_keeps_what_was_stored(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now(customers=40)
    async with served(account) as (fake, url):
        fake.vendor.fail_next("malformed", path_prefix="/v1/subscriptions", count=6)
        integration_id = await connect_stripe(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "failed", run
        assert run["error"] == "GET /v1/subscriptions: the answer is not JSON"
        assert await stored_counts(database, founder, integration_id) == {"customers": len(account.customers)}
        integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()[
            "data"
        ]
        assert integration["lastError"] == run["error"] and integration["status"] == "active"


async def test_a_revoked_key_puts_the_integration_in_error(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now(customers=20)
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)
        fake.revoke()
        response = await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=founder.headers)
        assert response.status_code == 202, response.text
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "failed"
        integration = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()[
            "data"
        ]
        assert integration["status"] == "error"
        assert "refused the credentials (401)" in integration["lastError"]
        assert fake.api_key not in integration["lastError"] and fake.api_key[-4:] not in run["error"]
        answered = fake.seen[-1]
        assert answered.path == "/v1/events"


async def test_unusable_settings_are_refused_naming_the_field(client: httpx.AsyncClient, founder: Founder) -> None:
    for config in ({"requestsPerSecond": "fast"}, {"requestsPerSecond": -3}, {"baseUrl": "stripe.com"}):
        response = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "stripe",
                "name": "Billing",
                "credentials": {"apiKey": "sk_test_x"},
                "config": config,
                "test": False,
            },
        )
        assert response.status_code == 422, response.text
        fields = [detail["field"] for detail in response.json()["error"]["details"]]
        assert fields == [f"body.config.{next(iter(config))}"], response.text


# --- webhooks --------------------------------------------------------------------------------------------------------


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=at)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_webhooks_are_verified_acknowledged_and_processed_once(
    client: httpx.AsyncClient, founder: Founder, database: Database, worker: Workers
) -> None:
    account = account_until_now(customers=30)
    async with served(account) as (fake, url):
        integration_id = await backfilled(client, founder, fake, url)
        path = f"/api/v1/integrations/{integration_id}/webhooks/stripe"
        before = len(account.events)
        newcomer = fake.add_customer(currency="eur", country="DE", state=None, tax_rate="de_vat")
        fake.subscribe(newcomer["id"], [(account.price("pro", "eur", "year"), 1)])
        paid = next(event for event in account.events[before:] if event["type"] == "invoice.paid")
        body = orjson.dumps(paid)

        for headers in (
            signed(body, secret="whsec_not_the_one"),
            signed(body, secret="whsec_not_the_one", at=int(time.time()) - 600),
            {"Content-Type": "application/json"},
        ):
            refused = await client.post(path, content=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "invalid_signature"
            assert refused.json()["error"]["message"] == "The signature does not match"
        # Stripe's own signature, replayed ten minutes later (or dated ten minutes ahead): it says so
        for moment in (int(time.time()) - 600, int(time.time()) + 600):
            expired = await client.post(path, content=body, headers=signed(body, at=moment))
            assert expired.status_code == 401, expired.text
            assert expired.json()["error"]["code"] == "signature_expired"
            assert "expired" in expired.json()["error"]["message"]

        for odd in (b"[1, 2]", b'{"id": 5}', b"{not json"):
            unreadable = await client.post(path, content=odd, headers=signed(odd))
            assert unreadable.status_code == 400, unreadable.text
            assert unreadable.json()["error"]["code"] == "invalid_delivery"

        accepted = await client.post(path, content=body, headers=signed(body))
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["data"] == {"received": True, "duplicate": False}

        async def processed() -> bool:
            found = await rows(
                database,
                founder,
                "SELECT status FROM integrations.webhook_deliveries WHERE integration_id = :id",
                id=integration_id,
            )
            return found == [("processed",)]

        await wait_until(processed)
        await assert_metrics_equal_the_reference(client, founder, database, account)
        mrr = await rows(database, founder, "SELECT sum(amount) FROM metrics.movements")

        replayed = await client.post(path, content=body, headers=signed(body))
        assert replayed.status_code == 200 and replayed.json()["data"] == {"received": True, "duplicate": True}
        deliveries = await rows(
            database,
            founder,
            "SELECT event_id, topic FROM integrations.webhook_deliveries WHERE integration_id = :id",
            id=integration_id,
        )
        assert deliveries == [(paid["id"], "invoice.paid")]
        assert await rows(database, founder, "SELECT sum(amount) FROM metrics.movements") == mrr
        await assert_metrics_equal_the_reference(client, founder, database, account)
