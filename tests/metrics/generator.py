"""A seeded generator of normalised invoice lines that look like a Stripe account's.

Customers take one to three subscriptions (overlapping, or after a gap: reactivations) on monthly, quarterly,
annual, weekly and daily plans with quantities, optional add-on and metered items, trials (lines of 0), coupons
(percent or amount off, forever or for the first periods, 100 % included), tax-inclusive prices, plan and quantity
changes mid-period (a proration credit and a proration charge on the same item), changes at renewal, cancellations at
period end or immediate with a proration credit, unpaid (``open``, ``uncollectible``), ``void`` (sometimes re-issued)
and ``draft`` invoices, and one-time invoice items. Each customer bills in one of three currencies (now and then a
renewal switches to another), with daily rates (some days missing) from before the first line to after the last.

Every line is at least two days long, so "the date of ``period_start`` to the day before the date of
``period_end``" and "a line shorter than a day covers no day" never disagree (``test_edge_case`` pins the reading).
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from northstar.metrics.engine import Policy
from northstar.metrics.inputs import Interval, InvoiceLine, Kind

from .reference import first_of_month, shift_month

CURRENCIES = ("USD", "EUR", "GBP")
PLANS: tuple[tuple[Interval, int], ...] = (
    ("month", 1),
    ("month", 1),
    ("month", 1),
    ("month", 3),
    ("year", 1),
    ("week", 1),
    ("week", 2),
    ("day", 30),
)
UNITS = (333, 900, 1500, 2900, 4999, 7900, 9999, 12000, 29900, 99900)
FIRST_DAY = dt.date(2025, 1, 1)
HORIZON = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
RATES_FROM, RATES_UNTIL = dt.date(2024, 11, 1), dt.date(2028, 12, 31)
SUMMARY_START, SUMMARY_END = dt.date(2024, 11, 1), dt.date(2028, 6, 1)


@dataclass
class Scenario:
    lines: list[InvoiceLine]
    rates: dict[tuple[str, dt.date], str]
    policy: Policy
    spend: dict[dt.date, int]
    start: dt.date = SUMMARY_START
    end: dt.date = SUMMARY_END

    @property
    def customers(self) -> list[str]:
        return sorted({line.customer for line in self.lines})


def div_round(numerator: int, denominator: int) -> int:
    """numerator / denominator, half away from zero (denominator > 0): how the "billing system" rounds."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


def add_periods(anchor: dt.datetime, interval: Interval, count: int, periods: int) -> dt.datetime:
    if interval in ("month", "year"):
        index = anchor.year * 12 + anchor.month - 1 + periods * count * (12 if interval == "year" else 1)
        year, month = divmod(index, 12)
        day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
        return anchor.replace(year=year, month=month + 1, day=day)
    return anchor + dt.timedelta(days=periods * count * (7 if interval == "week" else 1))


@dataclass
class Pricing:
    tax_inclusive: bool
    percent_off: int  # 0 … 100
    amount_off: int  # cents off a full period
    discounted_periods: int | None  # None: forever

    def split(self, amount: int, full: int, period: int) -> tuple[int, int]:
        """(amount_excluding_tax, net_amount) of a line of ``amount`` (``full`` for a whole period)."""
        excluding = div_round(amount * 100, 120) if self.tax_inclusive else amount
        if self.discounted_periods is not None and period >= self.discounted_periods:
            return excluding, excluding
        discount = div_round(excluding * self.percent_off, 100)
        if self.amount_off and full:
            discount += div_round(self.amount_off * amount, full)  # the amount off, prorated like the line
        if abs(discount) > abs(excluding):
            discount = excluding
        return excluding, excluding - discount


@dataclass
class Customer:
    rng: random.Random
    customer: str
    currency: str
    currencies: tuple[str, ...]
    lines: list[InvoiceLine] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=itertools.count)

    def add(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        subscription: str | None,
        item: str | None,
        kind: Kind,
        unit_amount: int,
        quantity: int,
        amount: int,
        excluding: int,
        net: int,
        interval: Interval,
        count: int,
        status: str,
        proration: bool = False,
    ) -> None:
        self.lines.append(
            InvoiceLine(
                id=f"il_{self.customer}_{next(self.ids)}",
                invoice=f"in_{self.customer}_{len(self.lines)}",
                customer=self.customer,
                subscription=subscription,
                item=item,
                kind=kind,
                proration=proration,
                period_start=start,
                period_end=end,
                currency=self.currency,
                unit_amount=unit_amount,
                quantity=quantity,
                amount=amount,
                amount_excluding_tax=excluding,
                net_amount=net,
                interval=interval,
                interval_count=count,
                invoice_status=status,
            )
        )

    def status(self) -> str:
        roll = self.rng.random()
        if roll < 0.06:
            return "open"
        if roll < 0.12:
            return "uncollectible"
        if roll < 0.18:
            return "void"
        return "paid"

    def price(self) -> tuple[int, int]:
        return self.rng.choice(UNITS), self.rng.randint(1, 5)

    def subscription(self, number: int, start: dt.datetime) -> dt.datetime:
        """Lines of one subscription from ``start``; returns the end of its last period."""
        rng = self.rng
        sub = f"sub_{self.customer}_{number}"
        interval, count = rng.choice(PLANS)
        pricing = Pricing(
            tax_inclusive=rng.random() < 0.3,
            percent_off=rng.choice((0, 0, 0, 10, 20, 25, 50, 100)),
            amount_off=rng.choice((0, 0, 0, 0, 100, 250)),
            discounted_periods=rng.choice((None, None, 1, 3)),
        )
        items: dict[str, tuple[int, int]] = {f"si_{sub}_main": self.price()}
        if rng.random() < 0.2:
            items[f"si_{sub}_addon"] = self.price()
        metered = f"si_{sub}_metered" if rng.random() < 0.25 else None

        def regular(
            item: str, unit: int, quantity: int, s: dt.datetime, e: dt.datetime, status: str, period: int
        ) -> None:
            full = unit * quantity
            excluding, net = pricing.split(full, full, period)
            self.add(
                s,
                e,
                subscription=sub,
                item=item,
                kind="recurring",
                unit_amount=unit,
                quantity=quantity,
                amount=full,
                excluding=excluding,
                net=net,
                interval=interval,
                count=count,
                status=status,
            )

        def prorated(
            item: str, unit: int, quantity: int, s: dt.datetime, t: dt.datetime, e: dt.datetime, sign: int, period: int
        ) -> None:
            full = unit * quantity
            amount = sign * div_round(full * int((e - t).total_seconds()), int((e - s).total_seconds()))
            excluding, net = pricing.split(amount, full, period)
            self.add(
                t,
                e,
                subscription=sub,
                item=item,
                kind="recurring",
                unit_amount=unit,
                quantity=quantity,
                amount=amount,
                excluding=excluding,
                net=net,
                interval=interval,
                count=count,
                status="paid",
                proration=True,
            )

        anchor = start
        if rng.random() < 0.2:  # a trial
            trial_end = start + dt.timedelta(days=rng.choice((7, 14, 30)), hours=rng.randint(0, 5))
            for item, (unit, quantity) in items.items():
                self.add(
                    start,
                    trial_end,
                    subscription=sub,
                    item=item,
                    kind="recurring",
                    unit_amount=unit,
                    quantity=quantity,
                    amount=0,
                    excluding=0,
                    net=0,
                    interval=interval,
                    count=count,
                    status="paid",
                )
            anchor = trial_end

        periods = rng.randint(1, 16)
        end = anchor
        for period in range(periods):
            s, e = add_periods(anchor, interval, count, period), add_periods(anchor, interval, count, period + 1)
            if s >= HORIZON:
                break
            end = e
            if period and len(self.currencies) > 1 and rng.random() < 0.03:
                # re-priced in another currency: that renewal has no FX part
                self.currency = rng.choice([other for other in self.currencies if other != self.currency])
            status = self.status()
            if period == periods - 1 and rng.random() < 0.2:
                status = "draft"  # the upcoming invoice, never finalised
            for item, (unit, quantity) in items.items():
                regular(item, unit, quantity, s, e, status, period)
                if status == "void" and rng.random() < 0.5:  # voided and issued again
                    regular(item, unit, quantity, s, e, "paid", period)
            if metered:
                usage = rng.randint(0, 4000)
                self.add(
                    s,
                    e,
                    subscription=sub,
                    item=metered,
                    kind="metered",
                    unit_amount=3,
                    quantity=usage,
                    amount=3 * usage,
                    excluding=3 * usage,
                    net=3 * usage,
                    interval=interval,
                    count=count,
                    status=status,
                )
            last = period == periods - 1
            long_enough = e - s >= dt.timedelta(days=6)
            if long_enough and rng.random() < (0.35 if last else 0.12):
                # a change mid-period (or, in the last period, an immediate cancellation with a credit)
                t = s + dt.timedelta(seconds=rng.randint(86400, int((e - s).total_seconds()) - 2 * 86400))
                changed = rng.choice(list(items))
                old = items[changed]
                if last:
                    for item, (unit, quantity) in items.items():
                        prorated(item, unit, quantity, s, t, e, -1, period)
                    break
                new = self.price()
                prorated(changed, *old, s, t, e, -1, period)
                prorated(changed, *new, s, t, e, +1, period)
                items[changed] = new
            elif rng.random() < 0.08:  # a change that takes effect at the renewal
                changed = rng.choice(list(items))
                items[changed] = self.price()
        return end

    def one_time(self) -> None:
        for _ in range(self.rng.randint(0, 3)):
            when = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=self.rng.randint(0, 1_000_000))
            amount = self.rng.choice((-500, 1000, 2500, 99900))
            self.add(
                when,
                when + dt.timedelta(days=self.rng.choice((0, 2, 30))),
                subscription=self.rng.choice((None, f"sub_{self.customer}_0")),
                item=None,
                kind="one_time",
                unit_amount=amount,
                quantity=1,
                amount=amount,
                excluding=amount,
                net=amount,
                interval="month",
                count=1,
                status=self.rng.choice(("paid", "paid", "open", "void")),
            )


def random_instant(rng: random.Random, earliest: dt.datetime, days: int) -> dt.datetime:
    return earliest + dt.timedelta(days=rng.randint(0, days), seconds=rng.randint(0, 86399))


def customer_lines(rng: random.Random, name: str, currencies: tuple[str, ...]) -> list[InvoiceLine]:
    customer = Customer(rng, name, rng.choice(currencies), currencies)
    start = random_instant(rng, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 640)
    for number in range(rng.choice((1, 1, 1, 2, 2, 3))):
        if start >= HORIZON:
            break
        end = customer.subscription(number, start)
        if rng.random() < 0.5:  # the next one overlaps this one
            start = start + (end - start) * rng.random() + dt.timedelta(days=1)
        else:  # or comes back later
            start = end + dt.timedelta(days=rng.randint(2, 200), seconds=rng.randint(0, 86399))
    customer.one_time()
    return customer.lines


def daily_rates(rng: random.Random, currencies: tuple[str, ...]) -> dict[tuple[str, dt.date], str]:
    rates: dict[tuple[str, dt.date], str] = {}
    levels = {"EUR": 0.92, "GBP": 0.79, "USD": 1.0}
    for currency in currencies:
        if currency == "USD":
            continue
        level = levels[currency]
        day = RATES_FROM
        digits = rng.choice((4, 6))
        while day <= RATES_UNTIL:
            level *= 1 + rng.uniform(-0.006, 0.006)
            if day == RATES_FROM or rng.random() > 0.15:  # some days have no rate
                rates[(currency, day)] = f"{level:.{digits}f}"
            day += dt.timedelta(days=1)
    return rates


def generate(seed: int, policy: Policy, *, customers: int = 40, currencies: tuple[str, ...] = CURRENCIES) -> Scenario:
    rng = random.Random(seed)
    lines: list[InvoiceLine] = []
    for number in range(customers):
        lines.extend(customer_lines(rng, f"cus_{number:03d}", currencies))
    rng.shuffle(lines)
    spend: dict[dt.date, int] = {}
    month = first_of_month(SUMMARY_START)
    while month <= SUMMARY_END:
        if rng.random() < 0.8:
            spend[month] = rng.randint(0, 500_000)
        month = shift_month(month, 1)
    return Scenario(lines=lines, rates=daily_rates(rng, CURRENCIES), policy=policy, spend=spend)
