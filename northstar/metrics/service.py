"""Metrics: billing data in, the engine run over it, its results kept where dashboards read them.

``store_batch`` upserts what a sync page normalised into and says what it touched. ``recompute`` runs the engine
(``engine.py``) for the touched customers only (each customer's MRR depends on their own lines alone), replaces
their movements, updates the organization's additive totals (their old part out, the new in) and writes the KPI
series and cohorts from the totals; with no customers given it recomputes everyone. ``refresh`` does that and
rebuilds the other domains a sync changed (commerce, traffic, product, pipeline).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from psycopg.rows import args_row
from sqlalchemy import delete, func, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import Base, bulk_insert, driver_connection, fetch_page, get_in_org
from northstar.core.http import Forbidden, Unprocessable
from northstar.core.permissions import Principal
from northstar.core.queue import announce, enqueue_named
from northstar.core.search.indexing import index_rows
from northstar.metrics import commerce, engine, facts, product, queries, sales_pipeline, traffic
from northstar.metrics.facts import MonthFacts, RangeFacts
from northstar.metrics.inputs import InvoiceLine, SourceBatch, minor_units
from northstar.metrics.models import (
    Cohort,
    Customer,
    Deal,
    FxRate,
    Goal,
    Kpi,
    MetricsPolicy,
    Movement,
    Order,
    OrderRefund,
    ProductEvent,
    SourceProblem,
    Spend,
    Subscription,
    Summary,
    Traffic,
    invoice_lines,
)
from northstar.metrics.series import Point as Point  # the KPI store's point, for modules that write series
from northstar.metrics.series import replace_series

SOURCE = "billing"
REFRESHED = "metrics.refreshed"  # the signal announced after every refresh (``core.queue.announce``)
MONTH_METRICS = tuple(name for name in engine.Month.__dataclass_fields__ if name != "month")


async def policy_of(session: AsyncSession, *, org_id: uuid.UUID) -> engine.Policy:
    found = await session.get(MetricsPolicy, org_id)
    if found is None:
        return engine.Policy()
    return engine.Policy(
        reporting_currency=found.reporting_currency, timezone=found.timezone, deduct_discounts=found.deduct_discounts
    )


async def time_zone_of(session: AsyncSession, org_id: uuid.UUID) -> str:
    """The organization's time zone: the one its metrics are reported in, so a day on a page is a day on a chart."""
    return (await policy_of(session, org_id=org_id)).timezone


async def _customer_ids(
    session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID, externals: set[str]
) -> dict[str, uuid.UUID]:
    """Customer ids by external id, creating bare customers for ids a line names before its customer was synced."""
    if not externals:
        return {}
    rows = [{"org_id": org_id, "integration_id": integration_id, "external_id": external} for external in externals]
    await bulk_insert(session, Customer, rows, conflict="uq_customers_integration_id")
    found = await session.execute(
        select(Customer.external_id, Customer.id).where(
            Customer.org_id == org_id, Customer.integration_id == integration_id, Customer.external_id.in_(externals)
        )
    )
    return dict(found.all())


FULL_RECOMPUTE_AFTER = 2000  # touched customers beyond which all are recomputed at once


@dataclass
class Touched:
    """What stored batches changed: the billing customers to recompute, and the other domains to rebuild."""

    customers: set[uuid.UUID] = field(default_factory=set)
    domains: set[str] = field(default_factory=set)

    def __ior__(self, other: Touched) -> Touched:
        self.customers |= other.customers
        self.domains |= other.domains
        return self


# batch field -> the table it is kept in, and whether a record seen again replaces the stored one (or is ignored)
_ACTIVITY_TABLES: dict[str, tuple[type[Base], bool]] = {
    "orders": (Order, True),
    "refunds": (OrderRefund, True),
    "traffic": (Traffic, True),
    "events": (ProductEvent, False),
    "deals": (Deal, True),
}


async def store_batch(
    session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID, batch: SourceBatch
) -> Touched:
    """Upsert what a page normalised into; returns what it changed."""
    touched = Touched(domains=batch.domains() - {"billing"})
    if "billing" in batch.domains():
        touched.customers = await _store_billing(session, org_id=org_id, integration_id=integration_id, batch=batch)
    for name, (model, replace) in _ACTIVITY_TABLES.items():
        records = getattr(batch, name)
        if not records:
            continue
        key = [column.name for column in inspect(model).primary_key]
        rows = [{**asdict(record), "org_id": org_id, "integration_id": integration_id} for record in records]
        unique = list({tuple(row[column] for column in key): row for row in rows}.values())
        await bulk_insert(
            session,
            model,
            unique,
            conflict=f"pk_{model.__tablename__}",
            update=[column for column in unique[0] if column not in key] if replace else (),
        )
    return touched


async def _store_billing(
    session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID, batch: SourceBatch
) -> set[uuid.UUID]:
    """Billing customers, subscriptions and lines; returns the ids of the customers whose metrics they may change."""
    if batch.customers:
        rows = [
            {
                "org_id": org_id,
                "integration_id": integration_id,
                "external_id": customer.external_id,
                "name": customer.name,
                "email": customer.email,
                "country": customer.country,
                "source_created_at": customer.created_at,
            }
            for customer in batch.customers
        ]
        await bulk_insert(
            session,
            Customer,
            rows,
            conflict="uq_customers_integration_id",
            update=("name", "email", "country", "source_created_at"),
        )
    ids = await _customer_ids(
        session,
        org_id=org_id,
        integration_id=integration_id,
        externals={
            *(subscription.customer for subscription in batch.subscriptions),
            *(line.customer for line in batch.lines),
        },
    )
    if batch.subscriptions:
        rows = [
            {
                **_fields(subscription, drop=("customer",)),
                "org_id": org_id,
                "integration_id": integration_id,
                "customer_id": ids[subscription.customer],
            }
            for subscription in batch.subscriptions
        ]
        await bulk_insert(
            session,
            Subscription,
            rows,
            conflict="uq_subscriptions_integration_id",
            update=[name for name in rows[0] if name not in ("org_id", "external_id")],
        )
    if batch.lines:
        rows = [
            {
                **_fields(line, drop=("id", "customer", "invoice", "subscription", "item")),
                "org_id": org_id,
                "integration_id": integration_id,
                "external_id": line.id,
                "customer_id": ids[line.customer],
                "invoice_external_id": line.invoice,
                "subscription_external_id": line.subscription,
                "item_external_id": line.item,
            }
            for line in batch.lines
        ]
        await bulk_insert(
            session,
            invoice_lines,
            rows,
            conflict="uq_invoice_lines_integration_id",
            update=[name for name in rows[0] if name not in ("org_id", "external_id")],
        )
    return {ids[subscription.customer] for subscription in batch.subscriptions} | {
        ids[line.customer] for line in batch.lines
    }


def _fields(item: Any, *, drop: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in asdict(item).items() if key not in drop}


async def rates_of(session: AsyncSession, *, org_id: uuid.UUID) -> engine.Rates:
    rows = await session.execute(select(FxRate.currency, FxRate.day, FxRate.per_usd).where(FxRate.org_id == org_id))
    return engine.Rates((currency, day, rate) for currency, day, rate in rows.all())


async def recompute(session: AsyncSession, *, org_id: uuid.UUID, customers: set[uuid.UUID] | None = None) -> int:
    """Recompute the given customers (everyone when ``None``) and the organization's series; returns movements.

    The stored totals are updated by taking the customers' old part out and their new part in; everyone is
    recomputed when asked, when there are no totals yet, or when the policy or the day (totals are as of today)
    changed since: the first recompute of a day, or the nightly one, is a full one.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('metrics:' || :org, 0))"), {"org": str(org_id)}
    )
    policy = await policy_of(session, org_id=org_id)
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(zoneinfo.ZoneInfo(policy.timezone)).date()
    until = engine.month_start(today)
    summary = await session.get(Summary, org_id)
    if customers is not None and not customers:
        return 0
    if summary is None or summary.policy != asdict(policy) or summary.totals.get("as_of") != today.isoformat():
        customers = None
    lines = await billed_lines(session, org_id=org_id, customers=customers)
    try:
        computed = engine.compute(lines, rates=await rates_of(session, org_id=org_id), policy=policy, now=now)
    except engine.MissingRate as exc:
        await _record_problem(
            session,
            org_id=org_id,
            policy=policy,
            problem=(f"Metrics are not up to date: {exc}; add it with PUT /api/v1/metrics/fx-rates"),
        )
        return 0
    if customers is None or summary is None:
        totals = engine.totals_of(computed, until=until, as_of=today)
    else:
        totals = engine.Totals.from_json(summary.totals)
        totals.add(
            engine.totals_of(
                await stored_computation(session, org_id=org_id, customers=customers), until=until, as_of=today
            ),
            -1,
        )
        totals.add(engine.totals_of(computed, until=until, as_of=today))
    removed = delete(Movement).where(Movement.org_id == org_id)
    if customers is not None:
        removed = removed.where(Movement.customer_id.in_(customers))
    await session.execute(removed)
    rows = [
        {
            "org_id": org_id,
            "customer_id": movement.customer,
            "day": movement.day,
            "kind": movement.kind,
            "amount": movement.amount,
            "lines": list(movement.lines),
        }
        for movement in computed.movements
    ]
    await bulk_insert(session, Movement, rows)
    statement = pg_insert(Summary).values(org_id=org_id, policy=asdict(policy), totals=totals.to_json())
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["org_id"],
            set_={
                "policy": statement.excluded.policy,
                "totals": statement.excluded.totals,
                "problem": None,
                "computed_at": text("now()"),
            },
        )
    )
    await write_series(session, org_id=org_id, totals=totals, today=today)
    return len(rows)


async def _record_problem(session: AsyncSession, *, org_id: uuid.UUID, policy: engine.Policy, problem: str) -> None:
    """Say why the metrics are stale; the series stay as they were (or empty, the first time). The stored policy is
    cleared, so the next recompute is a full one whichever customers it is asked for."""
    empty = engine.Totals(until=engine.month_start(today_in(policy))).to_json()
    statement = pg_insert(Summary).values(org_id=org_id, policy={}, totals=empty, problem=problem)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["org_id"], set_={"policy": {}, "problem": problem, "computed_at": text("now()")}
        )
    )


# the engine's input in ``InvoiceLine``'s field order; lines that carry no MRR (not recurring, draft or void) are
# skipped here already, which spares loading them
_BILLED_LINES = """
    SELECT external_id, invoice_external_id, customer_id::text, subscription_external_id, item_external_id, kind,
           proration, period_start, period_end, currency, unit_amount, quantity, amount, amount_excluding_tax,
           net_amount, interval, interval_count, invoice_status, issued_at
    FROM metrics.invoice_lines
    WHERE org_id = %(org)s AND kind = 'recurring' AND invoice_status NOT IN ('draft', 'void')"""


async def billed_lines(
    session: AsyncSession, *, org_id: uuid.UUID, customers: set[uuid.UUID] | None
) -> list[InvoiceLine]:
    """The lines of some customers (everyone when ``None``) as engine input, read without the ORM (100,000s of
    rows: building ORM rows would cost more than the engine itself)."""
    query = _BILLED_LINES if customers is None else _BILLED_LINES + " AND customer_id = ANY(%(customers)s)"
    async with (await driver_connection(session)).cursor(row_factory=args_row(InvoiceLine)) as cursor:
        await cursor.execute(query, {"org": org_id, "customers": list(customers or ())})
        return await cursor.fetchall()


async def stored_computation(
    session: AsyncSession, *, org_id: uuid.UUID, customers: set[uuid.UUID] | None = None
) -> engine.Computation:
    """The engine's results as stored: the movements (of some customers), and timelines rebuilt from them."""
    query = select(Movement.customer_id, Movement.day, Movement.kind, Movement.amount).where(Movement.org_id == org_id)
    if customers is not None:
        query = query.where(Movement.customer_id.in_(customers))
    rows = (await session.execute(query.order_by(Movement.day, Movement.id))).all()
    movements = [
        engine.Movement(str(customer), day, cast(engine.MovementKind, kind), amount)
        for customer, day, kind, amount in rows
    ]
    timelines: dict[str, engine.Timeline] = defaultdict(engine.Timeline)
    for movement in movements:
        timeline = timelines[movement.customer]
        value = (timeline.values[-1] if timeline.values else 0) + movement.amount
        if timeline.days and timeline.days[-1] == movement.day:
            timeline.values[-1] = value
        else:
            timeline.days.append(movement.day)
            timeline.values.append(value)
    return engine.Computation(movements, dict(timelines))


def today_in(policy: engine.Policy) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(policy.timezone)).date()


async def write_series(session: AsyncSession, *, org_id: uuid.UUID, totals: engine.Totals, today: dt.date) -> None:
    """The daily MRR series, the monthly metrics and the cohort table, from the totals."""
    await session.execute(delete(Cohort).where(Cohort.org_id == org_id))
    if not totals.daily:
        await replace_series(session, org_id=org_id, source=SOURCE, points=())
        return
    spend: dict[dt.date, int] = {
        month: int(total)
        for month, total in (
            await session.execute(
                text("SELECT month, sum(amount) FROM metrics.spend WHERE org_id = :org GROUP BY month"), {"org": org_id}
            )
        ).all()
    }
    first = min(totals.daily)
    points = [
        Point(name, "month", month.month, value)
        for month in engine.months_of(totals, start=engine.month_start(first), end=totals.until, spend=spend)
        for name in MONTH_METRICS
        if (value := getattr(month, name)) is not None
    ]
    running, day = 0, first
    while day <= today:
        running += totals.daily.get(day, 0)
        points.append(Point("mrr", "day", day, running))
        day += dt.timedelta(days=1)
    await replace_series(session, org_id=org_id, source=SOURCE, points=points)
    cohorts = [{"org_id": org_id, **asdict(row)} for row in engine.cohorts_of(totals)]
    await bulk_insert(session, Cohort, cohorts)


# a domain's rebuild: its series from its stored records (commerce.py, traffic.py, product.py,
# sales_pipeline.py), and why
# they could not all be written if so (a missing exchange rate)
Rebuild = Callable[[AsyncSession, uuid.UUID, engine.Policy], Awaitable[str | None]]
DOMAIN_REBUILDS: dict[str, Rebuild] = {
    "traffic": traffic.rebuild,
    "product": product.rebuild,
    "commerce": commerce.rebuild,
    "pipeline": sales_pipeline.rebuild,
}


async def refresh(session: AsyncSession, *, org_id: uuid.UUID, touched: Touched | None = None) -> None:
    """Bring the metrics up to date after stored batches: the billing customers they touched, and every other
    domain they changed (``None``: everything, as after an integration is removed). Past
    ``FULL_RECOMPUTE_AFTER`` touched customers, recomputing everyone at once is cheaper than one by one. Then
    ``REFRESHED`` is announced, in the same transaction: whoever watches the metrics (alerts) looks again once
    they are committed."""
    if touched is None or touched.customers:
        few = touched is not None and len(touched.customers) <= FULL_RECOMPUTE_AFTER
        await recompute(session, org_id=org_id, customers=touched.customers if few and touched else None)
    policy = await policy_of(session, org_id=org_id)
    for domain, rebuild in DOMAIN_REBUILDS.items():
        if touched is None or domain in touched.domains:
            await _note_problem(session, org_id=org_id, source=domain, problem=await rebuild(session, org_id, policy))
    await announce(session, REFRESHED, org_id=org_id)


async def store_series(session: AsyncSession, *, org_id: uuid.UUID, source: str, points: Iterable[Point]) -> int:
    """Replace another module's KPI series (``source``, which no metrics domain writes) and announce ``REFRESHED``,
    so dashboards, goals, anomalies and alerts take its points like any other; returns how many were written."""
    if source == SOURCE or source in DOMAIN_REBUILDS:
        raise ValueError(f"the KPI source {source!r} belongs to the metrics module")
    written = await replace_series(session, org_id=org_id, source=source, points=points)
    await announce(session, REFRESHED, org_id=org_id)
    return written


async def source_points(
    session: AsyncSession, *, org_id: uuid.UUID, source: str, grain: str, since: dt.date | None = None
) -> list[Point]:
    """A source's stored points of ``grain`` (every scope), from ``since`` on, oldest first."""
    query = select(Kpi).where(Kpi.org_id == org_id, Kpi.source == source, Kpi.grain == grain)
    if since is not None:
        query = query.where(Kpi.day >= since)
    rows = (await session.scalars(query.order_by(Kpi.day))).all()
    return [Point(row.metric, row.grain, row.day, queries.plain_number(row.value), row.dims) for row in rows]


@dataclass(frozen=True)
class CustomerRef:
    id: uuid.UUID
    name: str | None
    email: str | None


@dataclass(frozen=True)
class DealRef:
    """A synced deal, by the integration it came from and its id there; ``amount`` in minor units of ``currency``."""

    integration_id: uuid.UUID
    external_id: str
    name: str | None
    amount: int | None
    currency: str
    closed: bool
    won: bool
    notes: str | None = None


async def customers_by_id(
    session: AsyncSession, *, org_id: uuid.UUID, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CustomerRef]:
    """The org's billing customers among ``customer_ids`` (others, and other orgs', are left out)."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Customer.id, Customer.name, Customer.email).where(Customer.org_id == org_id, Customer.id.in_(wanted))
    )
    return {row.id: CustomerRef(row.id, row.name, row.email) for row in rows}


_DEALS = """
SELECT d.integration_id, d.external_id, d.name, d.amount, d.currency, d.closed, d.won,
       r.data -> 'properties' ->> 'description' AS notes
FROM metrics.deals d
LEFT JOIN integrations.records r
  ON r.integration_id = d.integration_id AND r.stream = 'deals' AND r.external_id = d.external_id
WHERE d.org_id = :org"""
_DEALS_BY_KEY = (
    _DEALS  # noqa: S608 - constant SQL fragments, no input
    + """ AND (d.integration_id, d.external_id) IN (
      SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:externals AS text[])))"""
)


def _deal(row: Any) -> DealRef:
    """A deal row; deals keep hundredths of their currency, shown in its minor units."""
    amount = row.amount
    if amount is not None:
        exponent = minor_units(row.currency) - sales_pipeline.DEAL_DECIMALS
        amount = amount * 10**exponent if exponent >= 0 else engine.round_div(amount, 10**-exponent)
    return DealRef(row.integration_id, row.external_id, row.name, amount, row.currency, row.closed, row.won, row.notes)


async def deals_with_notes(session: AsyncSession, *, org_id: uuid.UUID) -> list[DealRef]:
    """Every synced deal with its notes (a CRM deal's description), for finding what they mention."""
    return [_deal(row) for row in await session.execute(text(_DEALS), {"org": org_id})]


async def deals_by_key(
    session: AsyncSession, *, org_id: uuid.UUID, keys: Iterable[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], DealRef]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = await session.execute(
        text(_DEALS_BY_KEY), {"org": org_id, "ids": [key[0] for key in wanted], "externals": [key[1] for key in wanted]}
    )
    return {(row.integration_id, row.external_id): _deal(row) for row in rows}


async def customer_mrr(
    session: AsyncSession, *, org_id: uuid.UUID, customer_ids: Iterable[uuid.UUID], day: dt.date
) -> dict[uuid.UUID, int]:
    """Each customer's MRR on ``day`` (the sum of their movements until then), in reporting currency minor units."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await session.execute(
        select(Movement.customer_id, func.sum(Movement.amount))
        .where(Movement.org_id == org_id, Movement.customer_id.in_(wanted), Movement.day <= day)
        .group_by(Movement.customer_id)
    )
    found = {customer: int(total) for customer, total in rows.tuples()}
    return {customer: found.get(customer, 0) for customer in wanted}


async def movements_between(
    session: AsyncSession, *, org_id: uuid.UUID, customer_ids: Iterable[uuid.UUID], start: dt.date, end: dt.date
) -> dict[str, int]:
    """The customers' MRR movements by kind from ``start`` to ``end`` (both included), reporting currency minor
    units; every kind is present."""
    wanted = list(set(customer_ids))
    found: dict[str, int] = dict.fromkeys(engine.MOVEMENT_KINDS, 0)
    if not wanted:
        return found
    rows = await session.execute(
        select(Movement.kind, func.sum(Movement.amount))
        .where(Movement.org_id == org_id, Movement.customer_id.in_(wanted), Movement.day.between(start, end))
        .group_by(Movement.kind)
    )
    for kind, total in rows.tuples():
        found[kind] = int(total)
    return found


def money_text(amount: int, currency: str) -> str:
    """Minor units of ``currency`` as people read them: ``12,000.50 EUR``, ``1,200 JPY``."""
    exponent = minor_units(currency)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**exponent) if exponent else (abs(amount), 0)
    return f"{sign}{whole:,}" + (f".{part:0{exponent}d}" if exponent else "") + f" {currency}"


async def _note_problem(session: AsyncSession, *, org_id: uuid.UUID, source: str, problem: str | None) -> None:
    """Keep why a source's metrics are stale (the dashboard shows it), or forget it once they are not."""
    if problem is None:
        await session.execute(
            delete(SourceProblem).where(SourceProblem.org_id == org_id, SourceProblem.source == source)
        )
        return
    text_of = f"{source.capitalize()} metrics are not up to date: {problem}; add it with PUT /api/v1/metrics/fx-rates"
    statement = pg_insert(SourceProblem).values(org_id=org_id, source=source, problem=text_of)
    await session.execute(
        statement.on_conflict_do_update(
            constraint="pk_source_problems", set_={"problem": statement.excluded.problem, "noted_at": text("now()")}
        )
    )


async def set_spend(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date, channel: str, amount: int) -> None:
    statement = pg_insert(Spend).values(org_id=org_id, month=engine.month_start(month), channel=channel, amount=amount)
    await session.execute(statement.on_conflict_do_update(constraint="pk_spend", set_={"amount": amount}))


async def set_rates(session: AsyncSession, *, org_id: uuid.UUID, rates: Iterable[tuple[str, dt.date, Decimal]]) -> int:
    rows = [
        {"org_id": org_id, "currency": currency.upper(), "day": day, "per_usd": rate} for currency, day, rate in rates
    ]
    await bulk_insert(session, FxRate, rows, conflict="pk_fx_rates", update=("per_usd",))
    return len(rows)


async def request_recompute(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    """Recompute everything on the queue, after a change of rules (policy, rates, spend), in the caller's
    transaction."""
    await enqueue_named(session, "metrics.recompute", org_id=org_id)


async def stored_policy(session: AsyncSession, *, org_id: uuid.UUID) -> MetricsPolicy:
    found = await session.get(MetricsPolicy, org_id)
    if found is None:
        found = MetricsPolicy(
            org_id=org_id, reporting_currency="USD", timezone="UTC", deduct_discounts=True, investor_metrics=[]
        )
        session.add(found)
        await session.flush()
        await session.refresh(found)
    return found


async def update_policy(session: AsyncSession, *, org_id: uuid.UUID, changes: dict[str, Any]) -> MetricsPolicy:
    policy = await stored_policy(session, org_id=org_id)
    counting = {"reporting_currency", "timezone", "deduct_discounts"}
    for name, value in changes.items():
        setattr(policy, name, value)
    await session.flush()
    await session.refresh(policy)
    if counting & changes.keys():
        await request_recompute(session, org_id=org_id)
    if "reporting_currency" in changes:  # goals' money targets are titled in it
        await index_rows(session, Goal, Goal.org_id == org_id)
    return policy


async def list_rates(
    session: AsyncSession, *, org_id: uuid.UUID, currency: str | None, offset: int, limit: int
) -> tuple[list[FxRate], int]:
    query = select(FxRate).where(FxRate.org_id == org_id)
    if currency:
        query = query.where(FxRate.currency == currency.upper())
    return await fetch_page(session, query.order_by(FxRate.currency, FxRate.day.desc()), offset=offset, limit=limit)


async def list_spend(session: AsyncSession, *, org_id: uuid.UUID) -> list[Spend]:
    return list(
        (await session.scalars(select(Spend).where(Spend.org_id == org_id).order_by(Spend.month, Spend.channel))).all()
    )


async def create_goal(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    metric: str,
    target: Decimal,
    target_date: dt.date,
    start_date: dt.date | None,
) -> Goal:
    """A goal measured from ``start_date``, by default today in the org's time zone."""
    if start_date is None:
        start_date = today_in(await policy_of(session, org_id=org_id))
    if target_date <= start_date:
        raise Unprocessable(
            "The target date must come after the start",
            details=[{"field": "body.targetDate", "message": "after startDate", "type": "value_error"}],
        )
    goal = Goal(
        id=uuid.uuid4(),
        org_id=org_id,
        metric=metric,
        target=target,
        target_date=target_date,
        start_date=start_date,
        created_by=user_id,
    )
    session.add(goal)
    await session.flush()
    await session.refresh(goal)
    return goal


async def get_goal(session: AsyncSession, *, org_id: uuid.UUID, goal_id: uuid.UUID) -> Goal:
    return await get_in_org(session, Goal, goal_id, org_id=org_id, missing="No such goal")


def _ensure_may_change(principal: Principal, goal: Goal, action: str) -> None:
    """Members change only the goals they set; founders and admins change any."""
    if not principal.can(action, "dashboards", owner_id=goal.created_by):
        raise Forbidden(f"Your role cannot {action} a goal set by someone else", code="not_owner")


async def update_goal(
    session: AsyncSession,
    *,
    principal: Principal,
    goal_id: uuid.UUID,
    target: Decimal | None,
    target_date: dt.date | None,
) -> Goal:
    goal = await get_goal(session, org_id=principal.org_id, goal_id=goal_id)
    _ensure_may_change(principal, goal, "update")
    if target is not None:
        goal.target = target
    if target_date is not None:
        if target_date <= goal.start_date:
            raise Unprocessable(
                "The target date must come after the start",
                details=[{"field": "body.targetDate", "message": "after the goal's start", "type": "value_error"}],
            )
        goal.target_date = target_date
    await session.flush()
    await session.refresh(goal)
    return goal


async def delete_goal(session: AsyncSession, *, principal: Principal, goal_id: uuid.UUID) -> None:
    goal = await get_goal(session, org_id=principal.org_id, goal_id=goal_id)
    _ensure_may_change(principal, goal, "delete")
    await session.delete(goal)
    await session.flush()


async def org_today(session: AsyncSession, *, org_id: uuid.UUID) -> dt.date:
    """Today in the organization's time zone."""
    return today_in(await policy_of(session, org_id=org_id))


async def month_facts(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date | None) -> MonthFacts:
    """What happened in a month (default: this one, so far), for the coach: ``metrics.facts``."""
    policy = await policy_of(session, org_id=org_id)
    today = today_in(policy)
    if month is not None and engine.month_start(month) > today:
        raise Unprocessable(
            "That month has not started yet",
            details=[{"field": "query.month", "message": "a month not after this one", "type": "value_error"}],
        )
    return await facts.month_facts(
        session, org_id=org_id, month=month or today, today=today, currency=policy.reporting_currency
    )


async def range_facts(session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date) -> RangeFacts:
    """MRR from ``start`` to ``end`` (both included) in the org's currency."""
    policy = await policy_of(session, org_id=org_id)
    return await facts.range_facts(session, org_id=org_id, start=start, end=end, currency=policy.reporting_currency)


async def shared_with_investors(session: AsyncSession, *, org_id: uuid.UUID) -> set[str]:
    """The metrics the founder shares with investors (``investorMetrics``)."""
    return await queries.visible_metrics(session, org_id=org_id, investor=True) or set()


async def has_metrics(session: AsyncSession, *, org_id: uuid.UUID) -> bool:
    """Whether the org's metrics were ever computed (it has connected a source)."""
    return await session.get(Summary, org_id) is not None


# What watchers of the metrics (alerts) read: values, anomalies and goals as of the organization's today.


@dataclass(frozen=True)
class Reporting:
    """The organization's today (in its time zone) and reporting currency."""

    today: dt.date
    currency: str


async def reporting(session: AsyncSession, *, org_id: uuid.UUID) -> Reporting:
    policy = await policy_of(session, org_id=org_id)
    return Reporting(today=today_in(policy), currency=policy.reporting_currency)


async def value_on(session: AsyncSession, *, org_id: uuid.UUID, metric: str, day: dt.date) -> float | int | None:
    """A metric's latest value on or before ``day`` (money in minor units of the reporting currency); None before
    it has any."""
    found: float | int | None = await queries.value_on(session, org_id=org_id, metric=metric, day=day)
    return found


def shown_value(metric: str, value: Any, currency: str) -> Any:
    """A value as the API shows it: ``{"amount", "currency", "exponent"}`` for a money metric, else the number."""
    return queries.metric_value(metric, value, currency)


async def anomalies(
    session: AsyncSession, *, org_id: uuid.UUID, metric: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    """The days from ``start`` to ``end`` that the anomaly detector flags (``GET /dashboard/anomalies``)."""
    return await queries.anomalies(session, org_id=org_id, metric=metric, start=start, end=end, visible=None)


async def goal_statuses(session: AsyncSession, *, org_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every goal's progress and status (achieved, on_track, at_risk, missed, no_data), as of today."""
    found = await reporting(session, org_id=org_id)
    return await queries.goal_statuses(session, org_id=org_id, today=found.today, currency=found.currency)


def typed_value(metric: str, typed: str, currency: str) -> str:
    """A metric's value as the API takes it, from what a person types: money in the reporting currency's major units
    ("50,000.00") becomes minor units; rates stay in percent, counts as they are."""
    try:
        amount = Decimal(typed.replace(",", "").strip())
    except InvalidOperation:
        return typed  # the request model says why
    return str(amount.scaleb(minor_units(currency)) if metric in queries.MONEY else amount)


def value_as_typed(metric: str, target: Decimal, currency: str) -> str:
    if metric in queries.MONEY:
        return f"{target.scaleb(-minor_units(currency)):.{minor_units(currency)}f}"
    return f"{target.normalize():f}"


async def headline(session: AsyncSession, *, org_id: uuid.UUID, investor: bool) -> queries.Headline:
    """The dashboard's first screen (KPI cards), as the REST dashboard and the GraphQL API both show it."""
    return await queries.headline(session, org_id=org_id, investor=investor)
