"""What sources hand the metrics module, whatever the provider: the records a sync page normalises into.

Billing (customers, subscriptions, invoice lines: docs/metrics.md, "Input"), commerce (orders and their refunds),
traffic (sessions, users and conversions per day and channel), product events, and sales pipeline deals. Amounts are
integer minor units of the record's currency (``minor_units``). ``service.store_batch`` keeps them, keyed by integration
and the source's id, so syncing the same object again updates it (and a product event seen twice is kept once).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

Kind = Literal["recurring", "one_time", "metered"]
Interval = Literal["day", "week", "month", "year"]

# ISO 4217 currencies whose minor unit is not a hundredth
_MINOR_UNITS = {
    "BHD": 3,
    "BIF": 0,
    "CLF": 4,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "UYW": 4,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}


def minor_units(currency: str) -> int:
    """How many decimals the currency's smallest unit has (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


@dataclass(frozen=True)
class BillingCustomer:
    external_id: str
    name: str | None = None
    email: str | None = None
    country: str | None = None
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class BillingSubscription:
    external_id: str
    customer: str
    status: str
    started_at: dt.datetime | None = None
    current_period_end: dt.datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    trial_end: dt.datetime | None = None


@dataclass(frozen=True)
class InvoiceLine:
    """A normalised invoice line (docs/metrics.md, "Input"): what a billing connector reads, what is stored, and what
    the engine computes from.

    ``id`` is the line's id at its source, ``invoice`` its invoice's. ``customer`` is the customer's key: its id at
    the source as a connector reads it, ours (``metrics.customers.id``) once stored; the engine only groups by it.
    """

    id: str
    invoice: str
    customer: str
    subscription: str | None
    item: str | None
    kind: Kind
    proration: bool
    period_start: dt.datetime
    period_end: dt.datetime
    currency: str
    unit_amount: int
    quantity: int
    amount: int
    amount_excluding_tax: int
    net_amount: int
    interval: Interval
    interval_count: int
    invoice_status: str
    issued_at: dt.datetime | None = None


@dataclass(frozen=True)
class CommerceOrder:
    """An order of a store; ``subtotal`` is its items after discounts, without tax and shipping."""

    external_id: str
    customer: str | None
    placed_at: dt.datetime
    currency: str
    subtotal: int
    shipping: int
    tax: int
    total: int
    financial_status: str
    cancelled_at: dt.datetime | None = None
    test: bool = False


@dataclass(frozen=True)
class CommerceRefund:
    """Money given back on an order, on the day it was given back."""

    external_id: str
    order: str
    refunded_at: dt.datetime
    currency: str
    amount: int


@dataclass(frozen=True)
class TrafficDay:
    """A web analytics day of one channel (GA4's default channel group)."""

    day: dt.date
    channel: str
    sessions: int
    users: int
    new_users: int
    conversions: Decimal


@dataclass(frozen=True)
class AnalyticsEvent:
    """One product analytics event (Mixpanel); ``insert_id`` makes a re-sent event the same event."""

    insert_id: str
    name: str
    distinct_id: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class PipelineDeal:
    """A sales deal (HubSpot) in its pipeline and stage; ``amount`` in cents, when the deal has one."""

    external_id: str
    name: str | None
    pipeline: str
    stage: str
    amount: int | None
    currency: str
    created_at: dt.datetime | None
    close_date: dt.datetime | None
    closed: bool
    won: bool
    updated_at: dt.datetime | None = None


@dataclass
class SourceBatch:
    """What one page of a sync normalised into."""

    customers: list[BillingCustomer] = field(default_factory=list)
    subscriptions: list[BillingSubscription] = field(default_factory=list)
    lines: list[InvoiceLine] = field(default_factory=list)
    orders: list[CommerceOrder] = field(default_factory=list)
    refunds: list[CommerceRefund] = field(default_factory=list)
    traffic: list[TrafficDay] = field(default_factory=list)
    events: list[AnalyticsEvent] = field(default_factory=list)
    deals: list[PipelineDeal] = field(default_factory=list)

    def domains(self) -> set[str]:
        """The metric domains this batch changes: ``billing``, ``commerce``, ``traffic``, ``product``, ``pipeline``."""
        found = set()
        if self.customers or self.subscriptions or self.lines:
            found.add("billing")
        if self.orders or self.refunds:
            found.add("commerce")
        if self.traffic:
            found.add("traffic")
        if self.events:
            found.add("product")
        if self.deals:
            found.add("pipeline")
        return found
