"""What happened to the business in one month, gathered in one place for whoever explains it (the coach): the
headline metrics against the month before, MRR movements and the customers behind the largest, goals, anomalies,
and the series a playbook compares (churn history, trial conversions, contraction by plan, open pipeline).

Amounts are integer minor units of the reporting currency, as everywhere in metrics; rates are in percent."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import Unprocessable
from northstar.metrics import engine, queries
from northstar.metrics.inputs import minor_units
from northstar.metrics.models import Summary

HISTORY_MONTHS = 6  # the trailing window a month is compared with
SERIES_MONTHS = 12  # MRR month by month, for a report's chart
TRIAL_MONTHS = 4  # the month and the three before it
TOP_MOVEMENTS = 10
MOVEMENT_KINDS = ("new", "expansion", "reactivation", "contraction", "churn", "fx")


@dataclass(frozen=True)
class MetricChange:
    metric: str
    value: int | float | None
    previous: int | float | None
    money: bool  # minor units of the reporting currency
    percent: bool  # a rate, in percent


@dataclass(frozen=True)
class CustomerMovement:
    day: dt.date
    kind: str
    amount: int
    customer_id: uuid.UUID
    external_id: str
    name: str | None
    plans: tuple[str, ...]  # the prices (plans) of the invoice lines behind it


@dataclass(frozen=True)
class TrialMonth:
    month: dt.date
    ended: int  # trials whose end fell in the month
    converted: int  # of those, the ones still subscribed when the trial ended


@dataclass(frozen=True)
class MonthFacts:
    month: dt.date  # its first day
    today: dt.date
    currency: str
    exponent: int
    metrics: dict[str, MetricChange]
    mrr_series: list[tuple[dt.date, int | None]]  # MRR at the end of each month, the twelve up to this one
    mrr_start: int
    mrr_end: int
    movements: dict[str, int]  # the month's total per movement kind
    top_movements: list[CustomerMovement]
    contraction_by_plan: dict[str, int]
    churn_history: list[tuple[dt.date, float]]  # customer churn rate of the months before, oldest first
    trials: list[TrialMonth]  # oldest first, the month last
    goals: list[dict[str, Any]]
    anomalies: list[dict[str, Any]]  # MRR's unusual days in the month
    open_pipeline: int | None
    problem: str | None  # why metrics are stale, when they are
    computed_at: dt.datetime | None  # when metrics were last computed


@dataclass(frozen=True)
class RangeFacts:
    """MRR over a few days (a week, say): where it started and ended, each kind's total, and the largest moves."""

    start: dt.date
    end: dt.date
    currency: str
    exponent: int
    mrr_start: int
    mrr_end: int
    movements: dict[str, int]
    top_movements: list[CustomerMovement]


def _number(value: Any) -> int | float | None:
    return None if value is None else queries.plain_number(Decimal(str(value)))


async def month_facts(
    session: AsyncSession, *, org_id: uuid.UUID, month: dt.date, today: dt.date, currency: str
) -> MonthFacts:
    first = engine.month_start(month)
    last = min(engine.month_end(first), today)
    previous = engine.add_months(first, -1)
    wanted = [*queries.CARD_METRICS, *queries.SOURCE_CARD_METRICS]
    rows = (
        await session.execute(
            text("""
            SELECT metric, day, value FROM metrics.kpis
            WHERE org_id = :org AND grain = 'month' AND dims = '' AND metric = ANY (:metrics)
              AND day BETWEEN :since AND :month"""),
            {
                "org": org_id,
                "metrics": [*wanted, "customer_churn_rate"],
                "since": engine.add_months(first, -max(HISTORY_MONTHS, SERIES_MONTHS - 1)),
                "month": first,
            },
        )
    ).all()
    values: dict[tuple[str, dt.date], Any] = {(metric, day): _number(value) for metric, day, value in rows}
    metrics = {
        metric: MetricChange(
            metric=metric,
            value=values.get((metric, first)),
            previous=values.get((metric, previous)),
            money=metric in queries.MONEY,
            percent=metric.endswith("_rate") or metric in ("nrr", "grr"),
        )
        for metric in wanted
        if metric in queries.CARD_METRICS or (metric, first) in values or (metric, previous) in values
    }
    churn_history = [
        (day, float(values[("customer_churn_rate", day)]))
        for back in range(HISTORY_MONTHS, 0, -1)
        if (day := engine.add_months(first, -back)) and ("customer_churn_rate", day) in values
    ]
    series_months = [engine.add_months(first, back - SERIES_MONTHS + 1) for back in range(SERIES_MONTHS)]
    mrr_series = [(day, None if (found := values.get(("mrr", day))) is None else int(found)) for day in series_months]
    [month_movements] = await queries.waterfall(
        session, org_id=org_id, start=first, end=last, today=today, currency=currency
    )
    summary = await session.get(Summary, org_id)
    pipeline = await queries.value_on(session, org_id=org_id, metric="open_pipeline", day=last)
    try:
        unusual = await queries.anomalies(session, org_id=org_id, metric="mrr", start=first, end=last, visible=None)
    except Unprocessable:  # no daily MRR yet
        unusual = []
    return MonthFacts(
        month=first,
        today=today,
        currency=currency,
        exponent=minor_units(currency),
        metrics=metrics,
        mrr_series=mrr_series,
        mrr_start=month_movements["start"]["amount"],
        mrr_end=month_movements["end"]["amount"],
        movements={kind: month_movements[kind]["amount"] for kind in MOVEMENT_KINDS},
        top_movements=await _top_movements(session, org_id=org_id, start=first, end=last),
        contraction_by_plan=await _contraction_by_plan(session, org_id=org_id, start=first, end=last),
        churn_history=churn_history,
        trials=await _trials(session, org_id=org_id, month=first),
        goals=await queries.goal_statuses(session, org_id=org_id, today=today, currency=currency),
        anomalies=unusual,
        open_pipeline=int(pipeline) if pipeline is not None else None,
        problem=summary.problem if summary is not None else None,
        computed_at=summary.computed_at if summary is not None else None,
    )


async def range_facts(
    session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date, currency: str
) -> RangeFacts:
    before = await queries.value_on(session, org_id=org_id, metric="mrr", day=start - dt.timedelta(days=1))
    after = await queries.value_on(session, org_id=org_id, metric="mrr", day=end)
    totals: dict[str, int] = dict(
        (
            await session.execute(
                text("""
                SELECT kind, sum(amount) FROM metrics.movements
                WHERE org_id = :org AND day BETWEEN :start AND :end GROUP BY kind"""),
                {"org": org_id, "start": start, "end": end},
            )
        ).all()
    )
    return RangeFacts(
        start=start,
        end=end,
        currency=currency,
        exponent=minor_units(currency),
        mrr_start=int(before or 0),
        mrr_end=int(after or 0),
        movements={kind: int(totals.get(kind, 0)) for kind in MOVEMENT_KINDS},
        top_movements=await _top_movements(session, org_id=org_id, start=start, end=end),
    )


async def _top_movements(
    session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date
) -> list[CustomerMovement]:
    rows = await session.execute(
        text("""
        SELECT m.day, m.kind, m.amount, c.id, c.external_id, c.name,
               coalesce((SELECT array_agg(DISTINCT l.item_external_id ORDER BY l.item_external_id)
                         FROM metrics.invoice_lines l
                         WHERE l.org_id = m.org_id AND l.customer_id = m.customer_id AND l.external_id = ANY (m.lines)
                           AND l.item_external_id IS NOT NULL), '{}') AS plans
        FROM metrics.movements m JOIN metrics.customers c ON c.org_id = m.org_id AND c.id = m.customer_id
        WHERE m.org_id = :org AND m.day BETWEEN :start AND :end AND m.kind <> 'fx'
        ORDER BY abs(m.amount) DESC, m.day, c.external_id LIMIT :top"""),
        {"org": org_id, "start": start, "end": end, "top": TOP_MOVEMENTS},
    )
    return [
        CustomerMovement(
            day=row.day,
            kind=row.kind,
            amount=int(row.amount),
            customer_id=row.id,
            external_id=row.external_id,
            name=row.name,
            plans=tuple(row.plans),
        )
        for row in rows
    ]


async def _contraction_by_plan(
    session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date
) -> dict[str, int]:
    """The month's contraction per plan: a movement counts for the first plan among its lines."""
    rows = await session.execute(
        text("""
        SELECT coalesce((SELECT min(l.item_external_id) FROM metrics.invoice_lines l
                         WHERE l.org_id = m.org_id AND l.customer_id = m.customer_id
                           AND l.external_id = ANY (m.lines)), 'unknown') AS plan,
               sum(m.amount) AS amount
        FROM metrics.movements m
        WHERE m.org_id = :org AND m.day BETWEEN :start AND :end AND m.kind = 'contraction'
        GROUP BY 1 ORDER BY 2, 1"""),
        {"org": org_id, "start": start, "end": end},
    )
    return {plan: int(amount) for plan, amount in rows}


async def _trials(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date) -> list[TrialMonth]:
    """Trials ending in each month and how many became paying: still subscribed when the trial ended."""
    since = engine.add_months(month, 1 - TRIAL_MONTHS)
    rows = await session.execute(
        text("""
        SELECT CAST(date_trunc('month', trial_end) AS date) AS month, count(*) AS ended,
               count(*) FILTER (WHERE coalesce(least(canceled_at, ended_at), 'infinity') > trial_end) AS converted
        FROM metrics.subscriptions
        WHERE org_id = :org AND trial_end >= :since AND trial_end < :until AND trial_end <= now()
        GROUP BY 1"""),
        {"org": org_id, "since": since, "until": engine.add_months(month, 1)},
    )
    found = {row.month: TrialMonth(row.month, int(row.ended), int(row.converted)) for row in rows}
    months = [engine.add_months(since, step) for step in range(TRIAL_MONTHS)]
    return [found.get(each, TrialMonth(each, 0, 0)) for each in months]
