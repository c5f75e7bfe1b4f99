"""Commerce metrics: a store's revenue, orders, average order value, repeat rate and refunds, per day and month.

They are computed from the stored orders and refunds (``metrics.orders``, ``metrics.order_refunds``) by SQL
aggregation, with days and months in the organization's time zone. Test orders and cancelled orders count nowhere,
and neither do their refunds. Revenue is net sales: order subtotals after discounts, without tax and shipping, on
the day the order was placed, less refunds on the day they were given. An amount in a currency other than the
reporting one is converted at the rate of its day, minor units included (a yen has none, a dinar three). The
definitions, with a worked example, are in docs/integrations/shopify.md ("Metrics").
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import engine
from northstar.metrics.models import FxRate
from northstar.metrics.series import Point, replace_series

SOURCE = "commerce"
RATE_PLACES = Decimal("0.0001")

_SALES = text("""
    SELECT CAST(placed_at AT TIME ZONE CAST(:zone AS text) AS date) AS day, currency, count(*) AS orders,
           sum(subtotal) AS amount
    FROM metrics.orders WHERE org_id = :org AND NOT test AND cancelled_at IS NULL
    GROUP BY 1, 2""")
_REFUNDS = text("""
    SELECT CAST(r.refunded_at AT TIME ZONE CAST(:zone AS text) AS date) AS day, r.currency, sum(r.amount) AS amount
    FROM metrics.order_refunds r
    JOIN metrics.orders o ON o.org_id = r.org_id AND o.integration_id = r.integration_id AND o.external_id = r."order"
    WHERE r.org_id = :org AND NOT o.test AND o.cancelled_at IS NULL
    GROUP BY 1, 2""")
# per period (day or month): the customers who placed an order, and those of them with an order before the period
_CUSTOMERS = text("""
    WITH counted AS (
        SELECT integration_id, customer, CAST(placed_at AT TIME ZONE CAST(:zone AS text) AS date) AS day
        FROM metrics.orders WHERE org_id = :org AND NOT test AND cancelled_at IS NULL AND customer IS NOT NULL),
    firsts AS (SELECT integration_id, customer, min(day) AS first_day FROM counted GROUP BY 1, 2),
    periods AS (
        SELECT DISTINCT CAST(date_trunc(CAST(:grain AS text), CAST(day AS timestamp)) AS date) AS period,
               integration_id, customer
        FROM counted)
    SELECT p.period, count(*) AS customers, count(*) FILTER (WHERE f.first_day < p.period) AS returning
    FROM periods p JOIN firsts f USING (integration_id, customer)
    GROUP BY p.period""")


@dataclass
class Flow:
    """A period's counted orders, their subtotals and the refunds given, in reporting currency minor units."""

    orders: int = 0
    sales: int = 0
    refunds: int = 0

    @property
    def revenue(self) -> int:
        return self.sales - self.refunds

    def __iadd__(self, other: Flow) -> Flow:
        self.orders += other.orders
        self.sales += other.sales
        self.refunds += other.refunds
        return self


def convert(amount: int, currency: str, day: dt.date, *, rates: engine.Rates, reporting: str) -> int:
    """An amount in ``currency`` minor units as reporting currency minor units, at the rate of ``day``."""
    return engine.convert(amount, rates.factor(currency, reporting, day))


def flows(sales: Iterable[Any], refunds: Iterable[Any], *, rates: engine.Rates, reporting: str) -> dict[dt.date, Flow]:
    """Each day's flow from the aggregated rows (day, currency, [orders,] amount); ``MissingRate`` without a rate."""
    days: dict[dt.date, Flow] = defaultdict(Flow)
    for row in sales:
        days[row.day] += Flow(
            orders=int(row.orders),
            sales=convert(int(row.amount), row.currency, row.day, rates=rates, reporting=reporting),
        )
    for row in refunds:
        days[row.day] += Flow(refunds=convert(int(row.amount), row.currency, row.day, rates=rates, reporting=reporting))
    return dict(days)


def _points(day: dt.date, grain: str, flow: Flow, customers: tuple[int, int] | None) -> list[Point]:
    points = [
        Point("revenue", grain, day, flow.revenue),
        Point("orders", grain, day, flow.orders),
        Point("refunds", grain, day, flow.refunds),
    ]
    if flow.orders:
        points.append(Point("aov", grain, day, engine.round_div(flow.revenue, flow.orders)))
    if customers is not None and customers[0]:
        share = (Decimal(100 * customers[1]) / customers[0]).quantize(RATE_PLACES, ROUND_HALF_UP)
        points.append(Point("repeat_rate", grain, day, share))
    return points


async def _rates(session: AsyncSession, *, org_id: uuid.UUID, currencies: set[str], reporting: str) -> engine.Rates:
    """The org's rates of the currencies to convert and of the reporting currency (none when nothing is converted)."""
    if not currencies - {reporting}:
        return engine.Rates()
    rows = await session.execute(
        select(FxRate.currency, FxRate.day, FxRate.per_usd).where(
            FxRate.org_id == org_id, FxRate.currency.in_(currencies | {reporting})
        )
    )
    return engine.Rates((currency, day, rate) for currency, day, rate in rows.all())


async def _customers(session: AsyncSession, params: dict[str, Any], grain: str) -> dict[dt.date, tuple[int, int]]:
    rows: Sequence[Any] = (await session.execute(_CUSTOMERS, {**params, "grain": grain})).all()
    return {row.period: (int(row.customers), int(row.returning)) for row in rows}


async def rebuild(session: AsyncSession, org_id: uuid.UUID, policy: engine.Policy) -> str | None:
    """The commerce series from the stored orders and refunds: every day from the first one with an order or a
    refund to today, and every month. Without a rate for one of the currencies the series stay as they were, and
    the missing rate is the problem returned."""
    params: dict[str, Any] = {"org": org_id, "zone": policy.timezone}
    sales = (await session.execute(_SALES, params)).all()
    refunds = (await session.execute(_REFUNDS, params)).all()
    reporting = policy.reporting_currency
    rates = await _rates(
        session, org_id=org_id, currencies={row.currency for row in (*sales, *refunds)}, reporting=reporting
    )
    try:
        days = flows(sales, refunds, rates=rates, reporting=reporting)
    except engine.MissingRate as exc:
        return str(exc)
    if not days:
        await replace_series(session, org_id=org_id, source=SOURCE, points=())
        return None
    daily, monthly = await _customers(session, params, "day"), await _customers(session, params, "month")
    today = dt.datetime.now(zoneinfo.ZoneInfo(policy.timezone)).date()
    points: list[Point] = []
    months: dict[dt.date, Flow] = defaultdict(Flow)
    day, last = min(days), max(max(days), today)
    while day <= last:
        flow = days.get(day, Flow())
        points.extend(_points(day, "day", flow, daily.get(day)))
        months[engine.month_start(day)] += flow
        day += dt.timedelta(days=1)
    for month, flow in sorted(months.items()):
        points.extend(_points(month, "month", flow, monthly.get(month)))
    await replace_series(session, org_id=org_id, source=SOURCE, points=points)
    return None
