"""The read side of metrics: KPI cards, series, the MRR waterfall, cohorts, goals' status, anomalies, explanations.

Everything reads the KPI store (``metrics.kpis``), the movements and the cohort table that ``service.recompute``
keeps, never invoice lines or raw records, so a dashboard costs a few indexed queries.

Anomalies use a robust seasonal baseline: a day is compared with the same weekday of the previous eight weeks, by
median and median absolute deviation (MAD); its robust z-score is 0.6745 * (value - median) / MAD, and |z| > 3.5 is
flagged (Iglewicz and Hoaglin's rule). Flat histories (MAD = 0) flag any departure from the median.
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import NotFound, Unprocessable
from northstar.metrics import engine
from northstar.metrics.inputs import minor_units
from northstar.metrics.models import Cohort, Goal, Kpi, MetricsPolicy

CARD_METRICS = (
    "mrr",
    "arr",
    "customers",
    "arpa",
    "net_new",
    "customer_churn_rate",
    "net_mrr_churn_rate",
    "nrr",
    "quick_ratio",
    "ltv",
)
# cards of the other sources, shown once a connected source has values for them
SOURCE_CARD_METRICS = ("revenue", "orders", "aov", "sessions", "conversion_rate", "won_amount", "win_rate")
MONEY = frozenset(
    {
        "mrr",
        "arr",
        "arpa",
        "new",
        "expansion",
        "reactivation",
        "contraction",
        "churn",
        "fx",
        "net_new",
        "ltv",
        "cac",
        "open_pipeline",
        "weighted_pipeline",
        "won_amount",
        "sales_velocity",
        "revenue",
        "aov",
        "refunds",
    }
)
# daily metrics whose week or month is their last day's value, and those whose week or month is the days' sum
DAILY_BALANCES = frozenset({"mrr", "open_pipeline", "open_deals", "weighted_pipeline", "wau", "mau"})
DAILY_FLOWS = frozenset({"sessions", "new_users", "conversions", "revenue", "orders", "refunds", "events"})
ANOMALY_WEEKS = 8
ANOMALY_THRESHOLD = 3.5
SPARK_MONTHS = 12


def plain_number(number: Decimal) -> float | int:
    """A stored value as JSON shows it: whole numbers as integers."""
    return int(number) if number == number.to_integral_value() else float(number)


def money(amount: Any, currency: str) -> dict[str, Any]:
    """Money as the API shows it (``schemas.Money``): integer minor units, the currency and its exponent. Amounts
    are kept in minor units; a fraction of one (a goal's expected value, a median) is rounded half away from zero,
    as the engine rounds."""
    whole = int(Decimal(str(amount)).quantize(Decimal(1), ROUND_HALF_UP))
    return {"amount": whole, "currency": currency, "exponent": minor_units(currency)}


def metric_value(metric: str, value: Any, currency: str) -> Any:
    """A value of ``metric``: money in the reporting currency for a money metric, else the number itself."""
    return money(value, currency) if value is not None and metric in MONEY else value


async def visible_metrics(session: AsyncSession, *, org_id: uuid.UUID, investor: bool) -> set[str] | None:
    """None: every metric; for investors, only those the founder shared."""
    if not investor:
        return None
    found = await session.get(MetricsPolicy, org_id)
    return set(found.investor_metrics) if found else set()


def check_visible(metric: str, visible: set[str] | None) -> None:
    if visible is not None and metric not in visible:
        raise NotFound("No such metric", code="metric_not_shared")


async def _grains(session: AsyncSession, *, org_id: uuid.UUID, metric: str) -> set[str]:
    """The grains the metric has points of ("day", "month"); empty when it has none."""
    return set(
        (await session.scalars(select(Kpi.grain).where(Kpi.org_id == org_id, Kpi.metric == metric).distinct())).all()
    )


async def grains(session: AsyncSession, *, org_id: uuid.UUID, metric: str) -> tuple[str, ...]:
    """The grains a metric can be asked for by (``series``): day, week and month for daily balances and flows;
    day and month for other daily metrics; month for monthly-only ones; none without values."""
    stored = await _grains(session, org_id=org_id, metric=metric)
    if "day" not in stored:
        return ("month",) if stored else ()
    if metric in DAILY_BALANCES | DAILY_FLOWS:
        return ("day", "week", "month")
    return ("day", "month") if "month" in stored else ("day",)


async def series(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    metric: str,
    grain: str | None,
    start: dt.date | None,
    end: dt.date | None,
    visible: set[str] | None,
) -> tuple[str, list[tuple[dt.date, Any]]]:
    """A metric's grain and points by day, week or month (``None``: by day when it has daily points, else by month).
    Monthly points are used by month when the metric has them; daily points make weeks and months as their last
    day (balances) or their sum (flows); other daily metrics (rates, distinct users) have no weekly values, and
    monthly-only metrics only monthly ones."""
    check_visible(metric, visible)
    grains = await _grains(session, org_id=org_id, metric=metric)
    if not grains:
        raise NotFound(f"No values of {metric} yet", code="unknown_metric")
    grain = grain or ("day" if "day" in grains else "month")
    if "day" not in grains and grain != "month":
        raise Unprocessable(
            f"{metric} has monthly values only: ask for it by month",
            details=[{"field": "query.grain", "message": "month", "type": "value_error"}],
        )
    stored = "month" if grain == "month" and "month" in grains else "day"
    if stored == "day" and grain != "day" and metric not in DAILY_BALANCES | DAILY_FLOWS:
        allowed = "day or month" if "month" in grains else "day"
        raise Unprocessable(
            f"{metric} does not add up over days: ask for it by {allowed}",
            details=[{"field": "query.grain", "message": allowed, "type": "value_error"}],
        )
    query = select(Kpi.day, Kpi.value).where(
        Kpi.org_id == org_id, Kpi.metric == metric, Kpi.grain == stored, Kpi.dims == ""
    )
    if start is not None:
        query = query.where(
            Kpi.day
            >= (engine.month_start(start) if grain == "month" else _week_start(start) if grain == "week" else start)
        )
    if end is not None:
        query = query.where(Kpi.day <= end)
    points = [(day, plain_number(value)) for day, value in (await session.execute(query.order_by(Kpi.day))).all()]
    if stored == "month" or grain == "day":
        return grain, points
    period = engine.month_start if grain == "month" else _week_start
    return grain, _last_of(points, period) if metric in DAILY_BALANCES else _sum_of(points, period)


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _sum_of(points: list[tuple[dt.date, Any]], period: Callable[[dt.date], dt.date]) -> list[tuple[dt.date, Any]]:
    """Daily flows added up over longer periods (their start as the label)."""
    totals: dict[dt.date, Any] = defaultdict(int)
    for day, value in points:
        totals[period(day)] += value
    return sorted(totals.items())


def _last_of(points: list[tuple[dt.date, Any]], period: Callable[[dt.date], dt.date]) -> list[tuple[dt.date, Any]]:
    """Daily balances rolled up to longer periods: the value on the last day of each (its start as the label)."""
    last: dict[dt.date, Any] = {}
    for day, value in points:
        last[period(day)] = value
    return sorted(last.items())


@dataclass(frozen=True)
class Card:
    metric: str
    value: Any
    previous: Any
    change: Any
    change_percent: float | None
    sparkline: list[Any]
    goal: dict[str, Any] | None


@dataclass(frozen=True)
class Headline:
    """What the dashboard's first screen shows: the cards, in the reporting currency, as of today."""

    currency: str
    today: dt.date
    problem: str | None
    cards: list[Card]


# one round trip for the whole first screen: the policy (or its defaults), why metrics are stale if they are (billing
# first, then the other sources), whether there are goals, and the card metrics' monthly values of the sparkline
_HEADLINE = text("""
    WITH policy AS (
        SELECT coalesce(p.reporting_currency, 'USD') AS currency, coalesce(p.timezone, 'UTC') AS zone,
               coalesce(p.investor_metrics, '{}') AS shared
        FROM (SELECT 1) AS one LEFT JOIN metrics.policies p ON p.org_id = :org),
    today AS (SELECT policy.*, CAST(now() AT TIME ZONE policy.zone AS date) AS day FROM policy)
    SELECT t.currency, t.day, t.shared,
           (SELECT string_agg(problem, '. ' ORDER BY position) FROM (
                SELECT s.problem, 0 AS position FROM metrics.summaries s
                WHERE s.org_id = :org AND s.problem IS NOT NULL
                UNION ALL SELECT p.problem, 1 FROM metrics.source_problems p WHERE p.org_id = :org) AS found
           ) AS problem,
           EXISTS (SELECT 1 FROM metrics.goals g WHERE g.org_id = :org) AS goals,
           (SELECT coalesce(json_agg(json_build_array(k.metric, k.day, k.value)), '[]') FROM metrics.kpis k
            WHERE k.org_id = :org AND k.grain = 'month' AND k.dims = '' AND k.metric = ANY (:metrics)
              AND k.day > CAST(date_trunc('month', t.day) - make_interval(months => :months) AS date)) AS kpis
    FROM today t""")


async def headline(session: AsyncSession, *, org_id: uuid.UUID, investor: bool) -> Headline:
    """The headline metrics: this month against last month, the last 12 months, and goal progress. Billing cards
    are always there; those of commerce, traffic and pipeline once their source has values. Investors get the
    cards of the metrics shared with them."""
    row = (
        await session.execute(
            _HEADLINE, {"org": org_id, "metrics": [*CARD_METRICS, *SOURCE_CARD_METRICS], "months": SPARK_MONTHS}
        )
    ).one()
    by_metric: dict[str, dict[dt.date, Any]] = defaultdict(dict)
    for metric, day, value in row.kpis:
        by_metric[metric][dt.date.fromisoformat(day)] = plain_number(Decimal(str(value)))
    metrics = [
        metric
        for metric in (*CARD_METRICS, *SOURCE_CARD_METRICS)
        if (metric in CARD_METRICS or metric in by_metric) and (not investor or metric in row.shared)
    ]
    today: dt.date = row.day
    currency: str = row.currency
    goals = await goal_statuses(session, org_id=org_id, today=today, currency=currency) if row.goals else []
    found = []
    this_month = engine.month_start(today)
    for metric in metrics:
        values = by_metric.get(metric, {})
        current, previous = values.get(this_month), values.get(engine.add_months(this_month, -1))
        change = current - previous if current is not None and previous is not None else None
        found.append(
            Card(
                metric=metric,
                value=metric_value(metric, current, currency),
                previous=metric_value(metric, previous, currency),
                change=metric_value(metric, change, currency),
                change_percent=round(change * 100 / abs(previous), 2) if change is not None and previous else None,
                sparkline=[
                    metric_value(metric, values.get(engine.add_months(this_month, back - SPARK_MONTHS + 1)), currency)
                    for back in range(SPARK_MONTHS)
                ],
                goal=next((goal for goal in goals if goal["metric"] == metric), None),
            )
        )
    return Headline(currency=currency, today=today, problem=row.problem, cards=found)


async def waterfall(
    session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date, today: dt.date, currency: str
) -> list[dict[str, Any]]:
    """Per month: MRR at the start, each movement, and MRR at the end (start + movements = end, to the cent). The
    months end with the current one: later months have no values yet."""
    end = min(end, today)
    wanted = ("mrr", "new", "expansion", "reactivation", "contraction", "churn", "fx")
    rows = (
        await session.execute(
            select(Kpi.metric, Kpi.day, Kpi.value).where(
                Kpi.org_id == org_id,
                Kpi.grain == "month",
                Kpi.metric.in_(wanted),
                Kpi.dims == "",
                Kpi.day >= engine.add_months(engine.month_start(start), -1),
                Kpi.day <= end,
            )
        )
    ).all()
    values: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for metric, day, value in rows:
        values[day][metric] = int(value)
    months = []
    month = engine.month_start(start)
    while month <= end:
        current = values.get(month, {})
        months.append(
            {
                "month": month,
                "start": money(values.get(engine.add_months(month, -1), {}).get("mrr", 0), currency),
                **{kind: money(current.get(kind, 0), currency) for kind in wanted[1:]},
                "end": money(current.get("mrr", 0), currency),
            }
        )
        month = engine.add_months(month, 1)
    return months


async def cohort_rows(session: AsyncSession, *, org_id: uuid.UUID) -> list[Cohort]:
    return list(
        (await session.scalars(select(Cohort).where(Cohort.org_id == org_id).order_by(Cohort.cohort, Cohort.k))).all()
    )


async def value_on(session: AsyncSession, *, org_id: uuid.UUID, metric: str, day: dt.date) -> Any:
    """The metric's latest value on or before ``day``: its daily points when it has some, else the month's (a
    monthly point is dated the 1st but holds the whole month, so the two grains are never mixed)."""
    grain = "day" if "day" in await _grains(session, org_id=org_id, metric=metric) else "month"
    found = (
        await session.execute(
            select(Kpi.value)
            .where(Kpi.org_id == org_id, Kpi.metric == metric, Kpi.grain == grain, Kpi.dims == "", Kpi.day <= day)
            .order_by(Kpi.day.desc())
            .limit(1)
        )
    ).scalar()
    return plain_number(found) if found is not None else None


async def goal_statuses(
    session: AsyncSession, *, org_id: uuid.UUID, today: dt.date, currency: str
) -> list[dict[str, Any]]:
    goals = (await session.scalars(select(Goal).where(Goal.org_id == org_id).order_by(Goal.target_date))).all()
    return [await goal_status(session, goal=goal, today=today, currency=currency) for goal in goals]


async def goal_status(session: AsyncSession, *, goal: Goal, today: dt.date, currency: str) -> dict[str, Any]:
    """Progress from the value at the goal's start to its target; on track when the current value is at or past
    where a straight line from start to target says it should be today."""
    start_value = await value_on(session, org_id=goal.org_id, metric=goal.metric, day=goal.start_date)
    current = await value_on(session, org_id=goal.org_id, metric=goal.metric, day=today)
    target = plain_number(goal.target)
    progress = expected = None
    status = "no_data"
    if start_value is not None and current is not None and target != start_value:
        span = (goal.target_date - goal.start_date).days or 1
        elapsed = min(max((today - goal.start_date).days, 0), span)
        expected = start_value + (target - start_value) * elapsed / span
        progress = round((current - start_value) / (target - start_value) * 100, 2)
        rising = target > start_value
        ahead = current >= expected if rising else current <= expected
        reached = current >= target if rising else current <= target
        status = "achieved" if reached else "on_track" if ahead else "missed" if today > goal.target_date else "at_risk"
    shown = {
        "target": target,
        "start_value": start_value,
        "current": current,
        "expected": round(expected, 4) if expected is not None else None,
    }
    return {
        "id": goal.id,
        "metric": goal.metric,
        "target_date": goal.target_date,
        "start_date": goal.start_date,
        **{name: metric_value(goal.metric, value, currency) for name, value in shown.items()},
        "progress_percent": progress,
        "status": status,
    }


def robust_anomalies(points: list[tuple[dt.date, float]]) -> list[dict[str, Any]]:
    """Days far from the median of the same weekday over the previous weeks (module docstring)."""
    values = dict(points)
    flagged = []
    for day, value in points:
        history = [
            values[past] for week in range(1, ANOMALY_WEEKS + 1) if (past := day - dt.timedelta(weeks=week)) in values
        ]
        if len(history) < 4:
            continue
        median = statistics.median(history)
        mad = statistics.median(abs(item - median) for item in history)
        score = (0.6745 * (value - median) / mad) if mad else (0.0 if value == median else float("inf"))
        if abs(score) > ANOMALY_THRESHOLD:
            flagged.append(
                {
                    "day": day,
                    "value": value,
                    "baseline": median,
                    "mad": mad,
                    "score": round(score, 2) if score != float("inf") else None,
                    "direction": "up" if value > median else "down",
                }
            )
    return flagged


async def daily_changes(
    session: AsyncSession, *, org_id: uuid.UUID, metric: str, start: dt.date, end: dt.date, visible: set[str] | None
) -> list[tuple[dt.date, float]]:
    """What anomalies are looked for in: a daily flow (for MRR its daily change, the sum of the day's movements;
    for net new MRR the same without FX), or the metric itself."""
    check_visible(metric, visible)
    if metric in ("mrr", "net_new"):
        rows = (
            await session.execute(
                text(
                    "SELECT d::date, coalesce(sum(m.amount), 0)"
                    " FROM generate_series(CAST(:start AS date), CAST(:end AS date), interval '1 day') d"
                    " LEFT JOIN metrics.movements m ON m.org_id = :org AND m.day = d::date"
                    " AND (m.kind <> 'fx' OR :with_fx) GROUP BY 1 ORDER BY 1"
                ),
                {"start": start, "end": end, "org": org_id, "with_fx": metric == "mrr"},
            )
        ).all()
        return [(day, float(value)) for day, value in rows]
    if await _grains(session, org_id=org_id, metric=metric) == {"month"}:
        raise Unprocessable(
            f"{metric} has monthly values only: anomalies are found in daily metrics",
            details=[{"field": "query.metric", "message": "a metric with daily values", "type": "value_error"}],
        )
    _, points = await series(session, org_id=org_id, metric=metric, grain="day", start=start, end=end, visible=visible)
    return [(day, float(value)) for day, value in points]


async def anomalies(
    session: AsyncSession, *, org_id: uuid.UUID, metric: str, start: dt.date, end: dt.date, visible: set[str] | None
) -> list[dict[str, Any]]:
    """The flagged days from ``start`` to ``end``, each judged against the weeks before it (also before ``start``)."""
    points = await daily_changes(
        session,
        org_id=org_id,
        metric=metric,
        start=start - dt.timedelta(weeks=ANOMALY_WEEKS),
        end=end,
        visible=visible,
    )
    return [item for item in robust_anomalies(points) if item["day"] >= start]


def parse_range(
    start: dt.date | None, end: dt.date | None, *, today: dt.date, default_days: int
) -> tuple[dt.date, dt.date]:
    """The days from ``start`` to ``end`` (both included): by default the ``default_days`` before today."""
    last = end or today
    first = start or last - dt.timedelta(days=default_days)
    if first > last:
        raise Unprocessable(
            "start is after end",
            details=[{"field": "query.start", "message": "must not be after end", "type": "value_error"}],
        )
    return first, last


async def explain(
    session: AsyncSession, *, org_id: uuid.UUID, start: dt.date, end: dt.date, kind: str | None, currency: str
) -> list[dict[str, Any]]:
    """The movements between ``start`` and ``end`` (both included) with their customer and the invoice lines that
    started or ended that day, largest first: "why did MRR drop on the 14th?"."""
    rows = (
        await session.execute(
            text("""
        SELECT m.day, m.kind, m.amount, c.id AS customer_id, c.external_id, c.name, m.lines
        FROM metrics.movements m JOIN metrics.customers c ON c.org_id = m.org_id AND c.id = m.customer_id
        WHERE m.org_id = :org AND m.day BETWEEN :start AND :end AND (CAST(:kind AS text) IS NULL OR m.kind = :kind)
        ORDER BY abs(m.amount) DESC, m.day, c.external_id LIMIT 500"""),
            {"org": org_id, "start": start, "end": end, "kind": kind},
        )
    ).all()
    wanted = {line for row in rows for line in row.lines}
    lines: dict[str, dict[str, Any]] = {}
    if wanted:
        for line in (
            await session.execute(
                text("""
                SELECT external_id, invoice_external_id, subscription_external_id, kind, proration, period_start,
                       period_end, currency, amount, net_amount, invoice_status
                FROM metrics.invoice_lines WHERE org_id = :org AND external_id = ANY (:ids)"""),
                {"org": org_id, "ids": list(wanted)},
            )
        ).mappings():
            lines[line["external_id"]] = {
                **line,
                "amount": money(line["amount"], line["currency"]),
                "net_amount": money(line["net_amount"], line["currency"]),
            }
    return [
        {
            "day": row.day,
            "kind": row.kind,
            "amount": money(row.amount, currency),
            "customer": {"id": row.customer_id, "external_id": row.external_id, "name": row.name},
            "lines": [lines[line] for line in row.lines if line in lines],
        }
        for row in rows
    ]
