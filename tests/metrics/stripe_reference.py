"""Stripe objects as the reference calculation's input, mapped again from Stripe's documentation and docs/metrics.md
("Input"), apart from the connector's ``normalise``.

An invoice line of Stripe's invoice object (API version 2024-06-20) is a reference ``InvoiceLine``: the invoice's
customer and status; the line's subscription and subscription item; ``recurring`` when its price has a licensed
recurring part, ``metered`` when that part is metered, ``one_time`` without one; its ``proration``, ``period``,
``currency``, ``quantity``, ``amount`` and ``amount_excluding_tax``; the price's ``unit_amount`` and recurring interval.
The amount after discounts and before tax is the taxable amount of the line's tax amounts when it has some, and
otherwise the amount excluding tax less the line's discount amounts.

``AsOf`` is the reference seen on a given day, as the dashboard shows the current month: nothing that happens after
that day is counted, and a month that ends later is taken as of that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, cast

from northstar.metrics.engine import Policy
from northstar.metrics.inputs import Interval, InvoiceLine, Kind

from .reference import RateTable, Reference


def _moment(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def line_of(invoice: Mapping[str, Any], item: Mapping[str, Any]) -> InvoiceLine:
    price = item["price"]
    recurring = price.get("recurring")
    kind: Kind
    interval: Interval
    if recurring is None:
        kind, interval, count = "one_time", "month", 1
    else:
        kind = "metered" if recurring["usage_type"] == "metered" else "recurring"
        interval, count = cast(Interval, recurring["interval"]), recurring["interval_count"]
    taxes = item["tax_amounts"]
    if taxes:
        after_discounts = taxes[0]["taxable_amount"]
    else:
        after_discounts = item["amount_excluding_tax"] - sum(part["amount"] for part in item["discount_amounts"])
    return InvoiceLine(
        id=item["id"],
        invoice=invoice["id"],
        customer=invoice["customer"],
        subscription=item["subscription"],
        item=item["subscription_item"],
        kind=kind,
        proration=item["proration"],
        period_start=_moment(item["period"]["start"]),
        period_end=_moment(item["period"]["end"]),
        currency=item["currency"].upper(),
        unit_amount=price["unit_amount"],
        quantity=item["quantity"],
        amount=item["amount"],
        amount_excluding_tax=item["amount_excluding_tax"],
        net_amount=after_discounts,
        interval=interval,
        interval_count=count,
        invoice_status=invoice["status"],
    )


def reference_lines(invoices: Iterable[Mapping[str, Any]]) -> list[InvoiceLine]:
    """Every line of these invoices (each with all its lines, as the account holds them)."""
    return [line_of(invoice, item) for invoice in invoices for item in invoice["lines"]["data"]]


def rate_table(rates: Iterable[tuple[str, dt.date, str]]) -> RateTable:
    return {(currency, day): value for currency, day, value in rates}


class AsOf(Reference):
    """The reference as of ``today``: each customer's MRR stays what it is on that day, so no movement comes after
    it and "the last day of M" is that day while M is not over."""

    def __init__(
        self,
        lines: Iterable[InvoiceLine],
        rates: RateTable,
        policy: Policy,
        today: dt.date,
        now: dt.datetime | None = None,
    ) -> None:
        self.today = today
        super().__init__(lines, rates, policy, now)

    def mrr_on(self, customer: str, day: dt.date) -> int:
        return super().mrr_on(customer, min(day, self.today))

    def _fx(self, customer: str, day: dt.date) -> int:
        return 0 if day > self.today else super()._fx(customer, day)
