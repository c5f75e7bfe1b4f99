"""KPIx (issue 5): full and incremental metrics recompute, the dashboard under load, a Stripe backfill.

Runs a real ``northstar run`` (API and worker) on a fresh data dir. Baselines are measured in the same run:

* recompute: copying the same invoice lines out of PostgreSQL with ``COPY`` (what any recompute must at least
  read), and the engine alone over lines already in memory (the calculation without the database);
* dashboard: an authenticated list of 20 projects at the same concurrency (the platform's cheapest real route);
* backfill: the fake Stripe's own ceiling (its requests per second times 100 objects a page);
* webhooks: signed deliveries of the account's events, one after another, timed until acknowledged.

The recompute data is a generated Stripe account (``northstar.demo.stripe_account``) of
``NORTHSTAR_BENCH_CUSTOMERS`` customers (default 10,000) over 36 months, normalised by the Stripe connector and
stored in-process (a sync would store the same rows, a page at a time). The backfill account has
``NORTHSTAR_BENCH_OBJECTS`` objects (default 50,000) and is synced by the worker from the fake over loopback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any, cast

import httpx
import orjson
import psycopg
import stripe
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncSession

from bench.server import Server, running_server, signup, wrk
from bench.socialproof import conninfo, server_database
from northstar.core.db import driver_connection
from northstar.demo.loopback import serving
from northstar.demo.stripe_account import Account, generate, rates_body
from northstar.demo.stripe_api import FakeStripe
from northstar.integrations.connectors.stripe import LIST_STREAMS, normalise
from northstar.metrics import engine, service
from northstar.metrics.inputs import InvoiceLine, SourceBatch

MONTHS = 36
INCREMENTAL_RUNS = 20
DASHBOARD_CONNECTIONS = 32
FAKE_CEILING_RPS = 25  # Stripe's test-mode limit, which the fake enforces
WEBHOOK_SECRET = "whsec_bench"  # noqa: S105 - the bench's own throwaway secret
WEBHOOK_DELIVERIES = 300
OBJECTS_PER_CUSTOMER = 10.2  # what the generated accounts hold over 36 months (invoices, subscriptions, refunds, …)


def _months_ago(months: int) -> dt.datetime:
    today = dt.date.today()
    index = today.year * 12 + today.month - 1 - months
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


class Founder:
    """A new founder's client and organization on the bench server."""

    def __init__(self, base_url: str, email: str) -> None:
        self.client = httpx.Client(
            base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {signup(base_url, email)}"}
        )

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, path, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()["data"]

    def connect_stripe(self, config: dict[str, Any], *, test: bool) -> dict[str, Any]:
        found: dict[str, Any] = self.send(
            "POST",
            "/api/v1/integrations",
            {
                "provider": "stripe",
                "name": "Stripe",
                "credentials": {"apiKey": "sk_test_bench"},
                "config": config,
                "test": test,
            },
        )
        return found


def _org_of(server: Server, integration_id: str) -> uuid.UUID:
    with psycopg.connect(conninfo(server.data_dir)) as connection:
        row = connection.execute(
            "SELECT org_id FROM integrations.integrations WHERE id = %s", (integration_id,)
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _batch_of(account: Account) -> SourceBatch:
    """Everything the connector would store for this account, as one batch."""
    batch = SourceBatch()
    for stream in LIST_STREAMS:
        found = normalise(stream, list(account.streams()[stream].values()))
        batch.customers += found.customers
        batch.subscriptions += found.subscriptions
        batch.lines += found.lines
    return batch


async def _timed(action: Callable[[], Coroutine[Any, Any, object]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def _changed(batch: SourceBatch, run: int) -> SourceBatch:
    """One subscription change: the latest line of one subscription gets another seat (and back, every other run)."""
    latest = max(
        (line for line in batch.lines if line.kind == "recurring" and line.invoice_status == "paid"),
        key=lambda line: line.period_end,
    )
    return SourceBatch(lines=[dataclasses.replace(latest, quantity=latest.quantity + run % 2)])


async def _recompute(server: Server, founder: Founder, customers: int) -> dict[str, Any]:
    started = time.perf_counter()
    account = generate(customers=customers, months=MONTHS, seed=5, start=_months_ago(MONTHS))
    generated = time.perf_counter() - started
    integration = founder.connect_stripe({}, test=False)
    founder.send("PUT", "/api/v1/metrics/fx-rates", rates_body(account.fx_rates))
    org_id, integration_id = _org_of(server, integration["id"]), uuid.UUID(integration["id"])
    batch = _batch_of(account)
    database = server_database(server.data_dir)

    async def in_org(work: Callable[[AsyncSession], Coroutine[Any, Any, object]]) -> object:
        async with database.tenant_transaction(org_id=org_id) as session:
            return await work(session)

    async def store(session: AsyncSession, changes: SourceBatch = batch) -> service.Touched:
        return await service.store_batch(session, org_id=org_id, integration_id=integration_id, batch=changes)

    async def full(session: AsyncSession) -> int:
        return await service.recompute(session, org_id=org_id)

    async def copy_out(session: AsyncSession) -> int:
        """Every invoice line of the org out of PostgreSQL with COPY: the floor of reading them at all."""
        size = 0
        statement = sql.SQL("COPY (SELECT * FROM metrics.invoice_lines WHERE org_id = {}) TO STDOUT").format(
            sql.Literal(str(org_id))
        )
        async with (await driver_connection(session)).cursor() as cursor, cursor.copy(statement) as copy:
            async for block in copy:
                size += len(block)
        return size

    async def read(session: AsyncSession) -> list[InvoiceLine]:
        return await service.billed_lines(session, org_id=org_id, customers=None)

    try:
        stored = await _timed(lambda: in_org(store))
        reads = [await _timed(lambda: in_org(copy_out)) for _ in range(3)]
        lines = cast(list[InvoiceLine], await in_org(read))
        rates = engine.Rates(account.fx_rates)
        today = dt.date.today()
        calculations = []
        for _ in range(3):
            begun = time.perf_counter()
            engine.totals_of(
                engine.compute(lines, rates=rates, policy=engine.Policy()), until=engine.month_start(today), as_of=today
            )
            calculations.append(time.perf_counter() - begun)
        fulls = [await _timed(lambda: in_org(full)) for _ in range(3)]
        incrementals = []
        for run in range(INCREMENTAL_RUNS):
            change = _changed(batch, run)

            async def change_and_recompute(session: AsyncSession, change: SourceBatch = change) -> int:
                touched = await store(session, change)
                return await service.recompute(session, org_id=org_id, customers=touched.customers)

            incrementals.append(await _timed(lambda: in_org(change_and_recompute)))
    finally:
        await database.dispose()
    incrementals.sort()
    return {
        "recompute_customers": customers,
        "recompute_months": MONTHS,
        "recompute_invoice_lines": len(batch.lines),
        "fixture_generation_s": generated,
        "store_every_line_s": stored,
        "baseline_copy_lines_out_s": min(reads),
        "baseline_engine_in_memory_s": min(calculations),
        "full_recompute_best_s": min(fulls),
        "full_recompute_median_s": statistics.median(fulls),
        "incremental_recompute_p50_ms": 1000 * statistics.median(incrementals),
        "incremental_recompute_p95_ms": 1000 * incrementals[round(0.95 * (len(incrementals) - 1))],
    }


def _dashboard(base_url: str, founder: Founder, seconds: int) -> dict[str, Any]:
    headers = {"Authorization": str(founder.client.headers["Authorization"])}
    for number in range(20):
        founder.send("POST", "/api/v1/projects", {"name": f"Project {number}"})
    baseline = wrk(
        f"{base_url}/api/v1/projects?limit=20", connections=DASHBOARD_CONNECTIONS, seconds=seconds, headers=headers
    )
    cards = wrk(f"{base_url}/api/v1/dashboard", connections=DASHBOARD_CONNECTIONS, seconds=seconds, headers=headers)
    series = wrk(
        f"{base_url}/api/v1/dashboard/series?metric=mrr&grain=week",
        connections=DASHBOARD_CONNECTIONS,
        seconds=seconds,
        headers=headers,
    )
    return {
        "baseline_projects_rps": baseline.requests_per_second,
        "baseline_projects_p99_ms": baseline.p99_ms,
        "dashboard_rps": cards.requests_per_second,
        "dashboard_p50_ms": cards.p50_ms,
        "dashboard_p99_ms": cards.p99_ms,
        "dashboard_errors": cards.non_2xx,
        "mrr_series_weekly_rps": series.requests_per_second,
        "mrr_series_weekly_p99_ms": series.p99_ms,
        "mrr_series_errors": series.non_2xx,
    }


async def _backfill(base_url: str, founder: Founder, objects: int) -> dict[str, Any]:
    """A first sync of a Stripe account of about ``objects`` objects, run by the worker against the fake."""
    customers = max(1, round(objects / OBJECTS_PER_CUSTOMER))
    account = generate(customers=customers, months=MONTHS, seed=9, start=_months_ago(MONTHS))
    fake = FakeStripe(account, requests_per_second=FAKE_CEILING_RPS)
    listed = sum(len(found) for found in account.streams().values())
    async with (
        serving(fake.app) as url,
        httpx.AsyncClient(base_url=base_url, timeout=60, headers=dict(founder.client.headers)) as client,
    ):
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/integrations",
            json={
                "provider": "stripe",
                "name": "Stripe backfill",
                "credentials": {"apiKey": fake.api_key, "webhookSecret": WEBHOOK_SECRET},
                "config": {"baseUrl": url},
                "test": False,
            },
        )
        response.raise_for_status()
        integration = response.json()["data"]["id"]
        while True:
            run = (await client.get(f"/api/v1/integrations/{integration}/runs")).json()["data"][0]
            if run["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
        acknowledged = await _webhooks(client, integration, account)
    if run["status"] != "succeeded":
        raise RuntimeError(f"the backfill failed: {run['error']}")
    fetched = sum(run["fetched"].values())
    requests = len(fake.seen)
    alone_objects, alone_seconds = await _walk_alone(account)
    return {
        "backfill_objects": fetched,
        "backfill_objects_in_account": listed,
        "backfill_s": seconds,
        "backfill_objects_per_s": fetched / seconds,
        "backfill_requests": requests,
        "backfill_requests_per_s": requests / seconds,
        "backfill_throttled_429": fake.vendor.throttled,
        "baseline_fake_ceiling_objects_per_s": FAKE_CEILING_RPS * 100,
        "baseline_fake_ceiling_for_these_requests_s": requests / FAKE_CEILING_RPS,
        "baseline_fake_unlimited_walk_s": alone_seconds,
        "baseline_fake_unlimited_objects_per_s": alone_objects / alone_seconds,
        **acknowledged,
    }


async def _walk_alone(account: Account) -> tuple[int, float]:
    """The same lists and invoice lines read from the fake without its limit by a client that stores nothing: what
    the fake itself can serve to one sequential reader."""
    fake = FakeStripe(account, requests_per_second=None)
    objects = 0
    async with (
        serving(fake.app) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {fake.api_key}"}) as client,
    ):
        started = time.perf_counter()
        for stream in LIST_STREAMS:
            after: str | None = None
            while True:
                params: dict[str, Any] = {
                    "limit": 100,
                    **({"starting_after": after} if after else {}),
                    **({"status": "all"} if stream == "subscriptions" else {}),
                }
                page = (await client.get(f"/v1/{stream}", params=params)).json()
                objects += len(page["data"])
                for found in page["data"]:
                    lines = found.get("lines") if stream == "invoices" else None
                    if lines and lines["has_more"]:
                        await client.get(f"/v1/invoices/{found['id']}/lines", params={"limit": 100})
                if not page["has_more"]:
                    break
                after = page["data"][-1]["id"]
        return objects, time.perf_counter() - started


async def _webhooks(client: httpx.AsyncClient, integration: str, account: Account) -> dict[str, Any]:
    """Signed Stripe deliveries one after another: how long the acknowledgement takes (the work is queued)."""
    path = f"/api/v1/integrations/{integration}/webhooks/stripe"
    latencies = []
    for event in account.events[:WEBHOOK_DELIVERIES]:
        body = orjson.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
        started = time.perf_counter()
        response = await client.post(
            path, content=body, headers={"Stripe-Signature": header, "Content-Type": "application/json"}
        )
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    latencies.sort()
    return {
        "webhook_deliveries": len(latencies),
        "webhook_ack_p50_ms": 1000 * statistics.median(latencies),
        "webhook_ack_p99_ms": 1000 * latencies[round(0.99 * (len(latencies) - 1))],
    }


def run(seconds: int = 10) -> dict[str, Any]:
    customers = int(os.environ.get("NORTHSTAR_BENCH_CUSTOMERS", "10000"))
    objects = int(os.environ.get("NORTHSTAR_BENCH_OBJECTS", "50000"))
    with running_server(
        "run", NORTHSTAR_OUTBOUND__ALLOW_PRIVATE_NETWORKS="true", NORTHSTAR_OUTBOUND__ALLOW_HTTP="true"
    ) as server:
        founder = Founder(server.base_url, "bench-kpix@example.com")
        results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
        results |= asyncio.run(_recompute(server, founder, customers))
        results |= _dashboard(server.base_url, founder, seconds)
        results |= asyncio.run(
            _backfill(server.base_url, Founder(server.base_url, "bench-backfill@example.com"), objects)
        )
        results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
