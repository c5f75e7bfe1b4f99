"""Recomputation against the real database: an incremental recompute leaves exactly what a full one would, the
stored series are the engine's numbers, and a missing exchange rate is reported instead of a wrong number."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.metrics import engine, service
from northstar.metrics.engine import Policy
from northstar.metrics.inputs import InvoiceLine, SourceBatch
from tests.factories import Account
from tests.metrics.money import amounts

from .generator import generate

Snapshot = tuple[Counter[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


async def _integration(client: httpx.AsyncClient, account: Account) -> uuid.UUID:
    response = await client.post(
        "/api/v1/integrations",
        headers=account.headers,
        json={"provider": "stripe", "name": "billing", "credentials": {"apiKey": "sk_test_x"}, "test": False},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def _store(
    database: Database, account: Account, integration_id: uuid.UUID, lines: list[InvoiceLine]
) -> set[uuid.UUID]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        touched = await service.store_batch(
            session, org_id=account.org_id, integration_id=integration_id, batch=SourceBatch(lines=lines)
        )
    return touched.customers


async def _recompute(database: Database, account: Account, customers: set[uuid.UUID] | None) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await service.recompute(session, org_id=account.org_id, customers=customers)


async def _snapshot(database: Database, account: Account) -> Snapshot:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        movements = Counter(
            (*row[:4], tuple(row[4]))
            for row in (
                await session.execute(text("SELECT customer_id, day, kind, amount, lines FROM metrics.movements"))
            ).all()
        )
        kpis = [
            tuple(row)
            for row in (
                await session.execute(
                    text("SELECT metric, grain, day, source, dims, value FROM metrics.kpis ORDER BY 1, 2, 3, 4, 5")
                )
            ).all()
        ]
        cohorts = [
            tuple(row)
            for row in (
                await session.execute(
                    text("SELECT cohort, k, customers, mrr, nrr, grr FROM metrics.cohorts ORDER BY 1, 2")
                )
            ).all()
        ]
    return movements, kpis, cohorts


async def _with_rates(database: Database, account: Account, rates: dict[tuple[str, dt.date], str]) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await service.set_rates(
            session,
            org_id=account.org_id,
            rates=[(currency, day, Decimal(rate)) for (currency, day), rate in rates.items()],
        )


async def test_incremental_recompute_equals_a_full_one(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    scenario = generate(11, Policy())
    integration_id = await _integration(client, founder)
    await _with_rates(database, founder, scenario.rates)
    late = set(scenario.customers[:6])
    held_back = [line for line in scenario.lines if line.customer in late and line.period_start.year >= 2026]
    await _store(database, founder, integration_id, [line for line in scenario.lines if line not in held_back])
    await _recompute(database, founder, None)
    before = await _snapshot(database, founder)

    touched = await _store(database, founder, integration_id, held_back)
    assert len(touched) == len({line.customer for line in held_back}) > 0
    await _recompute(database, founder, touched)
    incremental = await _snapshot(database, founder)
    await _recompute(database, founder, None)
    full = await _snapshot(database, founder)

    assert incremental != before
    assert incremental[0] == full[0]
    assert incremental[1] == full[1]
    assert incremental[2] == full[2]


async def test_stored_series_are_the_engines_numbers(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    scenario = generate(12, Policy())
    integration_id = await _integration(client, founder)
    await _with_rates(database, founder, scenario.rates)
    await _store(database, founder, integration_id, scenario.lines)
    await _recompute(database, founder, None)

    computed = engine.compute(
        scenario.lines,
        rates=engine.Rates((currency, day, rate) for (currency, day), rate in scenario.rates.items()),
        policy=Policy(),
    )
    today = dt.datetime.now(dt.UTC).date()
    this_month = engine.month_start(today)
    expected = engine.monthly_summary(
        computed, start=engine.month_start(computed.movements[0].day), end=this_month, as_of=today
    )
    _, kpis, cohorts = await _snapshot(database, founder)
    stored = {(metric, day): value for metric, grain, day, _, _, value in kpis if grain == "month"}
    for month in expected:
        for name in service.MONTH_METRICS:
            value = getattr(month, name)
            assert stored.get((name, month.month)) == (None if value is None else Decimal(str(value))), (
                name,
                month.month,
            )
    assert [row[:4] for row in cohorts] == [
        (row.cohort, row.k, row.customers, row.mrr)
        for row in engine.cohort_table(computed, until=this_month, as_of=today)
    ]
    mrr = amounts(
        (
            await client.get(
                "/api/v1/dashboard/series",
                headers=founder.headers,
                params={"metric": "mrr", "start": today.isoformat(), "end": today.isoformat()},
            )
        ).json()["data"]
    )["points"]
    assert mrr == [{"day": today.isoformat(), "value": expected[-1].mrr}]


async def test_a_missing_rate_is_reported_and_cleared_once_the_rate_is_in(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    scenario = generate(13, Policy(), customers=10)
    integration_id = await _integration(client, founder)
    await _store(database, founder, integration_id, scenario.lines)
    await _recompute(database, founder, None)
    dashboard = (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]
    assert "no exchange rate for" in dashboard["problem"]
    assert "PUT /api/v1/metrics/fx-rates" in dashboard["problem"]

    await _with_rates(database, founder, scenario.rates)
    some = await _store(database, founder, integration_id, scenario.lines[:1])
    await _recompute(database, founder, some)  # asked for one customer, recomputes everyone after the problem
    dashboard = (await client.get("/api/v1/dashboard", headers=founder.headers)).json()["data"]
    assert dashboard["problem"] is None
    movements, _, _ = await _snapshot(database, founder)
    assert len({row[0] for row in movements}) == len(
        {line.customer for line in scenario.lines if line.kind == "recurring" and line.amount}
    )
