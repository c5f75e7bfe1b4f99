"""Requests and responses of the dashboard and metrics API.

Money leaves as ``Money``: an integer of the currency's minor units with the currency and its exponent, as Stripe
keeps amounts (docs/kpix.md, "Money"). A metric's value is ``Money`` for a money metric (MRR, revenue, ...) and a
number otherwise (customers, rates). Money sent in (a goal's target, spend) is in minor units of the reporting
currency."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from northstar.core.http import CamelModel, Day, RequestModel, TimeZoneName

MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", examples=["mrr", "customer_churn_rate"])]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Money(CamelModel):
    """An amount: ``amount`` minor units of ``currency`` (ISO 4217), which has ``exponent`` decimals; 123456 USD
    with exponent 2 is $1,234.56, 1500 JPY with exponent 0 is ¥1,500."""

    amount: int = Field(description="integer minor units (cents; a yen has none, a dinar's fils three)")
    currency: str = Field(pattern=r"^[A-Z]{3}$", examples=["USD"])
    exponent: int = Field(ge=0, le=4, description="the currency's decimals: the amount is amount / 10^exponent units")


MetricValue = Money | float | None  # Money for a money metric, a number for any other


class GoalProgress(CamelModel):
    id: uuid.UUID
    metric: str
    target: MetricValue
    target_date: dt.date
    start_date: dt.date
    start_value: MetricValue
    current: MetricValue
    expected: MetricValue = Field(description="where a straight line from the start value to the target is today")
    progress_percent: float | None
    status: Literal["achieved", "on_track", "at_risk", "missed", "no_data"]


class CardOut(CamelModel):
    metric: str
    value: MetricValue = Field(description="this month")
    previous: MetricValue = Field(description="last month")
    change: MetricValue
    change_percent: float | None
    sparkline: list[MetricValue] = Field(description="the last 12 months, oldest first")
    goal: GoalProgress | None


class DashboardOut(CamelModel):
    currency: str
    as_of: dt.date
    problem: str | None = Field(description="why the metrics are not up to date (e.g. a missing exchange rate)")
    cards: list[CardOut]


class Point(CamelModel):
    day: dt.date
    value: Money | float


class SeriesOut(CamelModel):
    metric: str
    grain: str
    points: list[Point]


class WaterfallMonth(CamelModel):
    month: dt.date
    start: Money
    new: Money
    expansion: Money
    reactivation: Money
    contraction: Money
    churn: Money
    fx: Money
    end: Money


class CohortOut(CamelModel):
    cohort: dt.date
    k: int = Field(description="months after the cohort's first")
    customers: int
    mrr: Money
    nrr: float | None
    grr: float | None


class AnomalyOut(CamelModel):
    day: dt.date
    value: Money | float
    baseline: Money | float = Field(description="the median of the same weekday over the previous weeks")
    mad: Money | float = Field(description="the median absolute deviation from the baseline")
    score: float | None = Field(description="robust z-score; null when the history is flat")
    direction: Literal["up", "down"]


class GoalCreate(RequestModel):
    metric: MetricName
    target: Annotated[Decimal, Field(max_digits=20, decimal_places=4)] = Field(
        description="in the metric's unit: minor units of the reporting currency for a money metric"
    )
    target_date: Day
    start_date: Day | None = Field(None, description="default today")


class GoalUpdate(RequestModel):
    target: Annotated[Decimal, Field(max_digits=20, decimal_places=4)] | None = None
    target_date: Day | None = None


class ExplainedCustomer(CamelModel):
    id: uuid.UUID
    external_id: str
    name: str | None


class ExplainedLine(CamelModel):
    external_id: str
    invoice_external_id: str
    subscription_external_id: str | None
    kind: str
    proration: bool
    period_start: dt.datetime
    period_end: dt.datetime
    amount: Money = Field(description="in the line's own currency")
    net_amount: Money
    invoice_status: str


class ExplainedMovement(CamelModel):
    day: dt.date
    kind: str
    amount: Money = Field(description="the change of MRR, in the reporting currency")
    customer: ExplainedCustomer
    lines: list[ExplainedLine]


class PolicyOut(CamelModel):
    reporting_currency: str
    timezone: str
    deduct_discounts: bool
    investor_metrics: list[str]


class PolicyUpdate(RequestModel):
    reporting_currency: Currency | None = None
    timezone: TimeZoneName | None = None
    deduct_discounts: bool | None = None
    investor_metrics: list[MetricName] | None = Field(None, max_length=100, description="what investors may see")


class FxRateIn(RequestModel):
    currency: Currency
    day: Day
    per_usd: Annotated[Decimal, Field(gt=0, max_digits=24, decimal_places=10)] = Field(
        description="units of the currency per US dollar"
    )


class FxRateOut(CamelModel):
    currency: str
    day: dt.date
    per_usd: Decimal = Field(description="units of the currency per US dollar")


class FxRatesIn(RequestModel):
    rates: list[FxRateIn] = Field(min_length=1, max_length=10_000)


class SpendIn(RequestModel):
    month: Day = Field(description="any day of the month")
    channel: Annotated[str, Field(min_length=1, max_length=60)] = "all"
    amount: Annotated[int, Field(ge=0, le=10**15)] = Field(description="minor units of the reporting currency")


class SpendEntries(RequestModel):
    entries: list[SpendIn] = Field(min_length=1, max_length=1000)


class SpendOut(CamelModel):
    month: dt.date
    channel: str
    amount: Money


class MetricExport(RequestModel):
    metric: MetricName
    format: Literal["csv", "json", "ndjson", "parquet"] = "csv"
