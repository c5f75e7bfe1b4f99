"""Sales pipeline metrics from the deals a CRM sync keeps (``metrics.deals``): what is open, what was won and lost,
and how fast deals close.

Every definition, with a worked example, is in docs/integrations/hubspot.md ("Metrics"). Days and months are the
organization's time zone. A deal keeps only its current state, so the past is rebuilt from creation and close
dates: a deal is open from the day it was created until the day it closed, at its current amount. Each deal's
amount (hundredths of its currency) is converted to the reporting currency's minor units once, at the rate of its
close day (an open deal's at today's), rounded half away from zero exactly as the billing engine does, so a yen
has no hundredths and a dinar has thousandths, as in every other metric; all of it is SQL aggregation. The weighted
pipeline needs each open deal's stage probability, read from the pipelines the same sync stored
(``integrations.records``, stream ``pipelines``), and has today's value only, since the stages deals were in on
past days are not kept. When a deal's currency has no rate on or before its rate day, the money metrics are left
out (the missing rate is shown on the dashboard) rather than computed without the deal; the counts are still written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import engine
from northstar.metrics.inputs import minor_units
from northstar.metrics.series import Point, replace_series

SOURCE = "pipeline"
VELOCITY_MONTHS = 3  # the trailing window of sales velocity: the month and the two before it
RATE_PLACES = Decimal("0.0001")
DEAL_DECIMALS = 2  # deals keep hundredths of their currency's unit, whatever its minor unit (HubSpot's decimals)
DAY_PLACES = Decimal("0.01")

# each deal with its days in the time zone and its amount in the reporting currency (``value``; NULL without an
# amount or without a rate). A closed deal's close day is its close date (else its last modification), never before
# its creation nor after today; it is converted at the rate of that day, an open deal at today's.
_VALUED = """
WITH deal AS (
    SELECT integration_id, pipeline, stage, amount, currency, closed, won,
           CAST(coalesce(created_at, updated_at) AT TIME ZONE :zone AS date) AS created,
           CAST(close_date AT TIME ZONE :zone AS date) AS close_day,
           CAST(updated_at AT TIME ZONE :zone AS date) AS updated
    FROM metrics.deals WHERE org_id = :org),
dated AS (
    SELECT deal.*, CASE WHEN closed THEN
        least(greatest(coalesce(close_day, updated), created), CAST(:today AS date)) END AS closed_on
    FROM deal),
rated AS (SELECT dated.*, coalesce(closed_on, CAST(:today AS date)) AS rate_day FROM dated),
valued AS (
    SELECT rated.*, CASE
        WHEN amount IS NULL THEN NULL
        WHEN currency = :reporting THEN CAST(CASE WHEN amount < 0 THEN -1 ELSE 1 END
                  * div(2 * abs(amount) * CAST(:up AS numeric) + CAST(:down AS numeric),
                        2 * CAST(:down AS numeric)) AS bigint)
        ELSE CAST(CASE WHEN amount < 0 THEN -1 ELSE 1 END
                  * div(2 * abs(amount) * rep.per_usd * CAST(:up AS numeric) + cur.per_usd * CAST(:down AS numeric),
                        2 * cur.per_usd * CAST(:down AS numeric)) AS bigint) END AS value
    FROM rated
    LEFT JOIN LATERAL (SELECT CASE WHEN CAST(:reporting AS text) = 'USD' THEN 1 ELSE (
        SELECT r.per_usd FROM metrics.fx_rates r WHERE r.org_id = :org AND r.currency = :reporting
        AND r.day <= rated.rate_day ORDER BY r.day DESC LIMIT 1) END AS per_usd) rep ON true
    LEFT JOIN LATERAL (SELECT CASE WHEN rated.currency = 'USD' THEN 1 ELSE (
        SELECT r.per_usd FROM metrics.fx_rates r WHERE r.org_id = :org AND r.currency = rated.currency
        AND r.day <= rated.rate_day ORDER BY r.day DESC LIMIT 1) END AS per_usd) cur ON true)
"""
# per day from the first creation to today: the open deals and their amounts (a running sum of openings and closes)
_DAYS = text(
    _VALUED  # noqa: S608 - constant SQL fragments, no input
    + """,
moves AS (
    SELECT created AS day, value, 1 AS deals FROM valued WHERE created <= CAST(:today AS date)
    UNION ALL
    SELECT closed_on, -value, -1 FROM valued WHERE closed_on IS NOT NULL AND created <= CAST(:today AS date)),
per_day AS (SELECT day, sum(value) AS value, sum(deals) AS deals FROM moves GROUP BY day)
SELECT CAST(d AS date) AS day, CAST(sum(coalesce(p.value, 0)) OVER w AS bigint) AS value,
       CAST(sum(coalesce(p.deals, 0)) OVER w AS bigint) AS deals
FROM generate_series((SELECT min(created) FROM valued), CAST(:today AS date), interval '1 day') AS d
LEFT JOIN per_day p ON p.day = CAST(d AS date)
WINDOW w AS (ORDER BY d)
ORDER BY d"""
)
# per month of the close day: won and lost deals, the won amounts, and the won deals' days from creation to close
_MONTHS = text(
    _VALUED
    + """
SELECT CAST(date_trunc('month', closed_on) AS date) AS month,
       count(*) FILTER (WHERE won) AS won, count(*) FILTER (WHERE NOT won) AS lost,
       coalesce(sum(value) FILTER (WHERE won), 0) AS won_amount, count(value) FILTER (WHERE won) AS won_valued,
       coalesce(sum(closed_on - created) FILTER (WHERE won), 0) AS cycle_days,
       count(created) FILTER (WHERE won) AS cycles
FROM valued WHERE closed_on IS NOT NULL
GROUP BY 1"""
)
# today: the open deals weighted by their stage's probability, and a rate that is missing (if one is)
_NOW = text(
    _VALUED  # noqa: S608 - constant SQL fragments, no input
    + """,
stage AS (
    SELECT r.integration_id, r.external_id AS pipeline, s.value ->> 'id' AS stage,
           s.value -> 'metadata' ->> 'probability' AS probability
    FROM integrations.records r
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(r.data -> 'stages') = 'array'
                                                 THEN r.data -> 'stages' ELSE CAST('[]' AS jsonb) END) s
    WHERE r.org_id = :org AND r.stream = 'pipelines')
SELECT CAST(round(coalesce(sum(v.value * CASE WHEN s.probability ~ '^[0-9]+([.][0-9]+)?$'
                                              THEN CAST(s.probability AS numeric) ELSE 0 END)
                           FILTER (WHERE NOT v.closed), 0)) AS bigint) AS weighted,
       min(v.currency || ' on or before ' || CAST(v.rate_day AS text))
           FILTER (WHERE v.amount IS NOT NULL AND v.value IS NULL) AS missing
FROM valued v
LEFT JOIN stage s
    ON s.integration_id = v.integration_id AND s.pipeline = v.pipeline AND s.stage = v.stage"""
)


async def rebuild(session: AsyncSession, org_id: uuid.UUID, policy: engine.Policy) -> str | None:
    """Replace the pipeline series with what the stored deals say now; a missing rate is the problem returned (the
    money metrics are left out, the counts written)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('metrics:pipeline:' || :org, 0))"), {"org": str(org_id)}
    )
    shift = minor_units(policy.reporting_currency) - DEAL_DECIMALS
    params: dict[str, Any] = {
        "org": org_id,
        "zone": policy.timezone,
        "reporting": policy.reporting_currency,
        "up": 10 ** max(shift, 0),
        "down": 10 ** max(-shift, 0),
    }
    params["today"] = await session.scalar(text("SELECT CAST(now() AT TIME ZONE :zone AS date)"), params)
    days = (await session.execute(_DAYS, params)).all()
    months = {row.month: row for row in (await session.execute(_MONTHS, params)).all()}
    now = (await session.execute(_NOW, params)).one()
    await replace_series(
        session,
        org_id=org_id,
        source=SOURCE,
        points=points_of(days, months, weighted=None if now.missing else int(now.weighted), today=params["today"]),
    )
    return f"no exchange rate for {now.missing}" if now.missing else None


def points_of(days: Sequence[Any], months: dict[dt.date, Any], *, weighted: int | None, today: dt.date) -> list[Point]:
    """The daily and monthly points; without ``weighted`` (a rate is missing) no money metric is written."""
    if not days:
        return []
    money = weighted is not None
    points = [Point("weighted_pipeline", "day", today, weighted)] if weighted is not None else []
    open_on: dict[dt.date, int] = {}
    for row in days:
        open_on[row.day] = int(row.deals)
        points.append(Point("open_deals", "day", row.day, int(row.deals)))
        if money:
            points.append(Point("open_pipeline", "day", row.day, int(row.value)))
    month = engine.month_start(days[0].day)
    while month <= today:
        closed = months.get(month)
        won, lost = (int(closed.won), int(closed.lost)) if closed else (0, 0)
        points += [Point("deals_won", "month", month, won), Point("deals_lost", "month", month, lost)]
        if money:
            points.append(Point("won_amount", "month", month, int(closed.won_amount) if closed else 0))
        if won + lost:
            points.append(Point("win_rate", "month", month, _ratio(won * 100, won + lost, RATE_PLACES)))
        if closed and closed.cycles:
            points.append(
                Point(
                    "sales_cycle_days", "month", month, _ratio(int(closed.cycle_days), int(closed.cycles), DAY_PLACES)
                )
            )
        window = [
            months[start] for back in range(VELOCITY_MONTHS) if (start := engine.add_months(month, -back)) in months
        ]
        velocity = sales_velocity(open_on.get(min(engine.month_end(month), today), 0), window)
        if money and velocity is not None:
            points.append(Point("sales_velocity", "month", month, velocity))
        month = engine.add_months(month, 1)
    return points


def _ratio(numerator: int, denominator: int, places: Decimal) -> Decimal:
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, ROUND_HALF_UP)


def sales_velocity(open_deals: int, window: Sequence[Any]) -> int | None:
    """Open deals times the average won amount times the win rate, over the average sales cycle: cents a day, from
    the window's months (None without a won deal with an amount, or when the average cycle is zero days)."""
    won, lost = sum(int(row.won) for row in window), sum(int(row.lost) for row in window)
    amount, valued = sum(int(row.won_amount) for row in window), sum(int(row.won_valued) for row in window)
    cycle_days, cycles = sum(int(row.cycle_days) for row in window), sum(int(row.cycles) for row in window)
    if not valued or not cycle_days:
        return None
    return engine.round_div(open_deals * amount * won * cycles, valued * (won + lost) * cycle_days)
