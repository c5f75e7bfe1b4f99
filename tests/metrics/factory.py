"""Building normalised invoice lines and rates for the metrics tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping

from northstar.metrics.engine import Rates
from northstar.metrics.inputs import Interval, InvoiceLine, Kind

from .reference import RateValue

_ids = itertools.count(1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def line(
    customer: str,
    start: dt.datetime,
    end: dt.datetime,
    unit_amount: int,
    *,
    quantity: int = 1,
    amount: int | None = None,
    amount_excluding_tax: int | None = None,
    net_amount: int | None = None,
    interval: Interval = "month",
    interval_count: int = 1,
    proration: bool = False,
    status: str = "paid",
    currency: str = "USD",
    subscription: str | None = "sub_1",
    item: str | None = "si_1",
    kind: Kind = "recurring",
    line_id: str | None = None,
) -> InvoiceLine:
    """A line; ``amount`` defaults to the full period (unit_amount * quantity), the others to ``amount``."""
    if amount is None:
        amount = unit_amount * quantity
    if amount_excluding_tax is None:
        amount_excluding_tax = amount
    if net_amount is None:
        net_amount = amount_excluding_tax
    identifier = line_id or f"il_{next(_ids)}"
    return InvoiceLine(
        id=identifier,
        invoice=f"in_{identifier}",
        customer=customer,
        subscription=subscription,
        item=item,
        kind=kind,
        proration=proration,
        period_start=start,
        period_end=end,
        currency=currency,
        unit_amount=unit_amount,
        quantity=quantity,
        amount=amount,
        amount_excluding_tax=amount_excluding_tax,
        net_amount=net_amount,
        interval=interval,
        interval_count=interval_count,
        invoice_status=status,
    )


def engine_rates(rates: Mapping[tuple[str, dt.date], RateValue]) -> Rates:
    return Rates((currency, day, value) for (currency, day), value in rates.items())
