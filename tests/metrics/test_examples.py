"""The hand-worked examples of ``docs/metrics.md``, each checked against both the reference and the engine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence

import pytest

from northstar.metrics.engine import Computation, Month, Policy, compute, monthly_summary
from northstar.metrics.inputs import InvoiceLine

from .compare import month_differences, movement_rows
from .factory import engine_rates, line, utc
from .reference import RateValue, Reference, shift_month

D = dt.date
Row = tuple[str, dt.date, str, int]


class Both:
    """One input through the engine and through the reference."""

    def __init__(
        self,
        lines: Sequence[InvoiceLine],
        rates: Mapping[tuple[str, dt.date], RateValue] | None = None,
        policy: Policy | None = None,
        now: dt.datetime | None = None,
    ) -> None:
        self.policy = policy or Policy()
        self.rates = dict(rates or {})
        self.engine: Computation = compute(lines, rates=engine_rates(self.rates), policy=self.policy, now=now)
        self.reference = Reference(lines, self.rates, self.policy, now)

    def mrr_on(self, customer: str, day: dt.date) -> int:
        engine, reference = self.engine.mrr_on(customer, day), self.reference.mrr_on(customer, day)
        assert (engine, reference) == (reference, reference), f"{customer} on {day}: engine {engine}, ref {reference}"
        return reference

    def movements(self) -> list[Row]:
        engine = movement_rows(self.engine)
        reference = sorted(self.reference.movements)
        assert engine == reference
        return reference

    def month(self, month: dt.date) -> dict[str, object]:
        """The reference's month, once the engine's is the same (rates within their tolerance)."""
        engine = monthly_summary(self.engine, start=month, end=month)
        reference = self.reference.months(month, month, None)
        assert month_differences(engine, reference) == []
        return reference[0]

    def engine_month(self, month: dt.date) -> Month:
        [engine] = monthly_summary(self.engine, start=month, end=month)
        return engine


def renewals(
    customer: str,
    first: dt.datetime,
    count: int,
    unit_amount: int,
    *,
    months: int = 1,
    quantity: int = 1,
    amount: int | None = None,
    net_amount: int | None = None,
    currency: str = "USD",
    subscription: str = "sub_1",
    item: str = "si_1",
) -> list[InvoiceLine]:
    """``count`` consecutive periods of ``months`` months from ``first`` (same time of day, first days < 29)."""
    result = []
    for index in range(count):
        start = shift_month(first.date(), index * months).replace(day=first.day)
        end = shift_month(first.date(), (index + 1) * months).replace(day=first.day)
        start_at = first.replace(year=start.year, month=start.month, day=start.day)
        end_at = first.replace(year=end.year, month=end.month, day=end.day)
        result.append(
            line(
                customer,
                start_at,
                end_at,
                unit_amount,
                interval_count=months,
                quantity=quantity,
                amount=amount,
                net_amount=net_amount,
                currency=currency,
                subscription=subscription,
                item=item,
            )
        )
    return result


def test_1_seats_and_a_forever_coupon() -> None:
    lines = renewals("cus_1", utc(2026, 1, 10), 3, 5000, quantity=2, amount=10000, net_amount=8000)
    both = Both(lines)
    assert both.mrr_on("cus_1", D(2026, 1, 9)) == 0
    for day in (D(2026, 1, 10), D(2026, 1, 31), D(2026, 2, 10), D(2026, 4, 9)):
        assert both.mrr_on("cus_1", day) == 8000
    assert both.movements() == [("cus_1", D(2026, 1, 10), "new", 8000), ("cus_1", D(2026, 4, 10), "churn", -8000)]
    january = both.month(D(2026, 1, 1))
    assert (january["mrr"], january["arr"], january["customers"], january["arpa"]) == (8000, 96000, 1, 8000)
    assert (january["new"], january["new_customers"]) == (8000, 1)
    # "or amount_excluding_tax when discounts are not deducted": the coupon is then ignored
    assert Both(lines, policy=Policy(deduct_discounts=False)).mrr_on("cus_1", D(2026, 1, 10)) == 10000


def test_2_annual_and_quarterly_plans() -> None:
    lines = [
        line("cus_1", utc(2026, 3, 1), utc(2027, 3, 1), 100000, interval="year", subscription="sub_a", item="si_a"),
        line("cus_1", utc(2026, 3, 1), utc(2026, 6, 1), 30000, interval_count=3, subscription="sub_q", item="si_q"),
    ]
    both = Both(lines)
    assert both.mrr_on("cus_1", D(2026, 2, 28)) == 0
    assert both.mrr_on("cus_1", D(2026, 3, 1)) == 18333
    assert both.mrr_on("cus_1", D(2026, 5, 31)) == 18333
    assert both.mrr_on("cus_1", D(2026, 6, 1)) == 8333  # the quarter ended
    assert both.mrr_on("cus_1", D(2027, 2, 28)) == 8333
    assert both.mrr_on("cus_1", D(2027, 3, 1)) == 0  # the year ended
    assert both.movements() == [
        ("cus_1", D(2026, 3, 1), "new", 18333),
        ("cus_1", D(2026, 6, 1), "contraction", -10000),
        ("cus_1", D(2027, 3, 1), "churn", -8333),
    ]
    assert both.month(D(2026, 3, 1))["mrr"] == 18333


def test_3_upgrade_with_proration() -> None:
    lines = [
        line("cus_1", utc(2026, 4, 1), utc(2026, 5, 1), 4000),
        line("cus_1", utc(2026, 4, 16), utc(2026, 5, 1), 4000, amount=-2000, proration=True),
        line("cus_1", utc(2026, 4, 16), utc(2026, 5, 1), 10000, amount=5000, proration=True),
        line("cus_1", utc(2026, 5, 1), utc(2026, 6, 1), 10000),
    ]
    both = Both(lines)
    assert both.mrr_on("cus_1", D(2026, 4, 1)) == 4000
    assert both.mrr_on("cus_1", D(2026, 4, 15)) == 4000
    assert both.mrr_on("cus_1", D(2026, 4, 16)) == 10000
    assert both.mrr_on("cus_1", D(2026, 5, 1)) == 10000
    movements = both.movements()
    assert movements[:2] == [("cus_1", D(2026, 4, 1), "new", 4000), ("cus_1", D(2026, 4, 16), "expansion", 6000)]
    assert not [row for row in movements if row[1] == D(2026, 5, 1)]  # no movement when the regular line starts
    april = both.month(D(2026, 4, 1))
    assert (april["new"], april["expansion"], april["mrr"]) == (4000, 6000, 10000)
    assert (april["contraction"], april["churn"], april["fx"], april["net_new"]) == (0, 0, 0, 10000)


def test_4_failed_payment_then_cancellation_at_period_end() -> None:
    lines = [
        line("cus_1", utc(2026, 5, 1), utc(2026, 6, 1), 3000),
        line("cus_1", utc(2026, 6, 1), utc(2026, 7, 1), 3000, status="uncollectible"),
    ]
    both = Both(lines)
    assert both.mrr_on("cus_1", D(2026, 6, 30)) == 3000
    assert both.mrr_on("cus_1", D(2026, 7, 1)) == 0
    assert both.movements() == [("cus_1", D(2026, 5, 1), "new", 3000), ("cus_1", D(2026, 7, 1), "churn", -3000)]
    june = both.month(D(2026, 6, 1))
    assert (june["mrr"], june["churn"], june["churned_customers"]) == (3000, 0, 0)
    july = both.month(D(2026, 7, 1))
    assert (july["mrr"], july["churn"], july["churned_customers"], july["customer_churn_rate"]) == (0, -3000, 1, 100)
    assert july["customers"] == 0 and july["arpa"] is None
    assert both.engine_month(D(2026, 7, 1)).customer_churn_rate == pytest.approx(100, abs=0.01)


def test_5_a_trial_that_converts() -> None:
    lines = [
        line("cus_1", utc(2026, 2, 1), utc(2026, 2, 15), 2900, amount=0),
        *renewals("cus_1", utc(2026, 2, 15), 2, 2900),
    ]
    both = Both(lines)
    for day in (D(2026, 2, 1), D(2026, 2, 14)):
        assert both.mrr_on("cus_1", day) == 0
    assert both.mrr_on("cus_1", D(2026, 2, 15)) == 2900
    assert both.movements()[0] == ("cus_1", D(2026, 2, 15), "new", 2900)
    february = both.month(D(2026, 2, 1))
    assert (february["new"], february["new_customers"], february["customers"]) == (2900, 1, 1)
    # during the trial the customer is not a customer
    assert both.month(D(2026, 1, 1))["customers"] == 0
    trial_only = Both(lines[:1])
    assert trial_only.month(D(2026, 2, 1))["customers"] == 0
    assert trial_only.movements() == []


def test_6_churn_and_reactivation() -> None:
    lines = [
        line("cus_1", utc(2026, 1, 1), utc(2026, 2, 1), 1000, subscription="sub_1", item="si_1"),
        *renewals("cus_1", utc(2026, 3, 10), 2, 1000, subscription="sub_2", item="si_2"),
    ]
    both = Both(lines)
    assert both.movements()[:3] == [
        ("cus_1", D(2026, 1, 1), "new", 1000),
        ("cus_1", D(2026, 2, 1), "churn", -1000),
        ("cus_1", D(2026, 3, 10), "reactivation", 1000),
    ]
    february = both.month(D(2026, 2, 1))
    assert (february["customers"], february["mrr"], february["churned_customers"]) == (0, 0, 1)
    march = both.month(D(2026, 3, 1))
    assert (march["reactivated_customers"], march["reactivation"], march["new_customers"]) == (1, 1000, 0)
    assert march["customer_churn_rate"] is None  # no customers at the end of February


def test_7_fx() -> None:
    rates = {("EUR", D(2026, 1, 1)): "0.9000", ("EUR", D(2026, 2, 1)): "0.8000"}
    lines = renewals("cus_1", utc(2026, 1, 1), 2, 10000, currency="EUR")
    both = Both(lines, rates)
    assert both.mrr_on("cus_1", D(2026, 1, 31)) == 11111
    assert both.mrr_on("cus_1", D(2026, 2, 1)) == 12500
    movements = both.movements()
    assert [row for row in movements if row[1] == D(2026, 2, 1)] == [("cus_1", D(2026, 2, 1), "fx", 1389)]
    february = both.month(D(2026, 2, 1))
    assert (february["fx"], february["expansion"], february["contraction"], february["net_new"]) == (1389, 0, 0, 0)
    assert february["mrr"] - both.month(D(2026, 1, 1))["mrr"] == 1389  # type: ignore[operator]


def test_8_a_month_of_movements() -> None:
    march, april = utc(2026, 3, 1), utc(2026, 4, 1)
    lines = [
        line("cus_1", march, april, 1000),
        *renewals("cus_2", march, 1, 2000),
        *renewals("cus_2", april, 2, 1500),
        *renewals("cus_3", march, 1, 3000),
        *renewals("cus_3", april, 2, 3600),
        *renewals("cus_4", march, 3, 4000),
        *renewals("cus_5", utc(2026, 4, 15), 2, 500),
    ]
    both = Both(lines)
    assert both.month(D(2026, 3, 1))["mrr"] == 10000
    assert both.month(D(2026, 3, 1))["customers"] == 4
    result = both.month(D(2026, 4, 1))
    assert result["mrr"] == 9600
    assert (result["new"], result["expansion"], result["contraction"], result["churn"]) == (500, 600, -500, -1000)
    engine = both.engine_month(D(2026, 4, 1))
    for rates in (result, dataclasses.asdict(engine)):
        assert rates["customer_churn_rate"] == pytest.approx(25.00, abs=0.01)
        assert rates["gross_mrr_churn_rate"] == pytest.approx(15.00, abs=0.01)
        assert rates["net_mrr_churn_rate"] == pytest.approx(9.00, abs=0.01)
        assert rates["quick_ratio"] == pytest.approx(0.7333, abs=0.0001)
    assert (result["new_customers"], result["churned_customers"], result["customers"]) == (1, 1, 4)
    assert result["net_new"] == -400


def test_9_a_renewal_due_later_today() -> None:
    """ "Today": at 10:00 on 1 December a monthly period ends at 20:57; its renewal is not invoiced yet."""
    lines = renewals("cus_1", utc(2026, 10, 1, 20, 57), 2, 5000)
    before = Both(lines, now=utc(2026, 12, 1, 10))
    assert before.mrr_on("cus_1", D(2026, 12, 1)) == 5000
    assert [row[2] for row in before.movements()] == ["new", "churn"]
    assert before.movements()[-1][1] == D(2026, 12, 2)  # not churned yet: still paid today
    after = Both(lines, now=utc(2026, 12, 1, 21))  # the period has ended and no renewal came
    assert after.mrr_on("cus_1", D(2026, 12, 1)) == 0
    renewed = Both([*lines, *renewals("cus_1", utc(2026, 12, 1, 20, 57), 1, 5000)], now=utc(2026, 12, 1, 10))
    assert renewed.mrr_on("cus_1", D(2026, 12, 1)) == 5000  # the renewal covers today, once
    assert [row[2] for row in renewed.movements()] == ["new", "churn"]
    assert renewed.movements()[-1][1] == D(2027, 1, 1)


def test_10_currencies_without_cents() -> None:
    """¥1500 at 150 yen per dollar, 1.500 KWD at 0.3 dinars per dollar (also in "Currencies")."""
    rates = {("JPY", D(2026, 1, 1)): "150", ("KWD", D(2026, 1, 1)): "0.3"}
    lines = [
        *renewals("cus_yen", utc(2026, 1, 1), 1, 1500, currency="JPY"),
        *renewals("cus_dinar", utc(2026, 1, 1), 1, 1500, currency="KWD"),
    ]
    both = Both(lines, rates)
    assert both.mrr_on("cus_yen", D(2026, 1, 15)) == 1000
    assert both.mrr_on("cus_dinar", D(2026, 1, 15)) == 500
