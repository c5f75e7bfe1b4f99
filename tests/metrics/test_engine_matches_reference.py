"""The engine against the reference calculation (``reference.py``).

On seeded random accounts (``generator.py``) in 8 policies (UTC / Los Angeles, discounts deducted or not, USD / EUR
reporting), on free-form colliding lines from hypothesis, and on small hand-made inputs that pin down how the
specification is read. Money and counts must agree exactly, to the cent; rates to 0.01 percentage points (the quick
ratio to 0.0001). Also: the monthly identity, and ``MissingRate`` for a missing rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from northstar.metrics.engine import Computation, MissingRate, Month, Policy, cohort_table, compute, monthly_summary
from northstar.metrics.inputs import Interval, InvoiceLine

from .compare import cohort_differences, month_differences, movement_rows
from .factory import engine_rates, line, utc
from .generator import SUMMARY_END, Scenario, generate
from .reference import MOVEMENT_KINDS, Reference, ReferenceMissingRate, days_between

POLICIES = [
    Policy(reporting_currency=currency, timezone=zone, deduct_discounts=deduct)
    for zone, deduct, currency in itertools.product(("UTC", "America/Los_Angeles"), (True, False), ("USD", "EUR"))
]
SEEDS = range(8)
CASES = [(seed, policy) for seed in SEEDS for policy in POLICIES]


def case_id(case: tuple[int, Policy]) -> str:
    seed, policy = case
    return f"seed{seed}-{policy.timezone.split('/')[-1]}-{policy.reporting_currency}-" + (
        "net" if policy.deduct_discounts else "gross"
    )


@dataclasses.dataclass
class Run:
    scenario: Scenario
    engine: Computation
    reference: Reference
    engine_months: list[Month]
    reference_months: list[dict[str, object]]


@cache
def run(seed: int, policy: Policy) -> Run:
    scenario = generate(seed, policy)
    engine = compute(scenario.lines, rates=engine_rates(scenario.rates), policy=policy)
    reference = Reference(scenario.lines, scenario.rates, policy)
    return Run(
        scenario,
        engine,
        reference,
        monthly_summary(engine, start=scenario.start, end=scenario.end, spend=scenario.spend),
        reference.months(scenario.start, scenario.end, scenario.spend),
    )


@pytest.fixture(params=CASES, ids=[case_id(case) for case in CASES])
def case(request: pytest.FixtureRequest) -> Run:
    seed, policy = request.param
    return run(seed, policy)


def test_mrr_per_customer_per_day(case: Run) -> None:
    days = days_between(case.scenario.start, SUMMARY_END)
    wrong = [
        (customer, day, case.engine.mrr_on(customer, day), case.reference.mrr_on(customer, day))
        for customer in case.scenario.customers
        for day in days
        if case.engine.mrr_on(customer, day) != case.reference.mrr_on(customer, day)
    ]
    assert wrong[:10] == []


def test_movements(case: Run) -> None:
    engine, reference = movement_rows(case.engine), sorted(case.reference.movements)
    assert [row for row in engine if row not in reference][:10] == []
    assert [row for row in reference if row not in engine][:10] == []
    assert engine == reference


def test_months(case: Run) -> None:
    assert month_differences(case.engine_months, case.reference_months)[:20] == []


def test_months_without_spend(case: Run) -> None:
    engine = monthly_summary(case.engine, start=dt.date(2026, 1, 1), end=dt.date(2026, 6, 1))
    reference = case.reference.months(dt.date(2026, 1, 1), dt.date(2026, 6, 1), None)
    assert month_differences(engine, reference) == []
    assert all(month.cac is None for month in engine)


def test_cohorts(case: Run) -> None:
    for until in (dt.date(2026, 2, 14), SUMMARY_END):
        engine = cohort_table(case.engine, until=until)
        assert cohort_differences(engine, case.reference.cohorts(until))[:20] == []


def test_identity(case: Run) -> None:
    """MRR(M) - MRR(M - 1) = the sum of the month's movements, fx included (the range starts before any line)."""
    for months in (case.engine_months, [Month(**row) for row in case.reference_months]):  # type: ignore[arg-type]
        assert months[0].mrr == 0
        for before, month in itertools.pairwise(months):
            total = month.new + month.expansion + month.reactivation + month.contraction + month.churn + month.fx
            assert month.mrr - before.mrr == total, month.month
            assert month.net_new == total - month.fx
            assert month.arr == 12 * month.mrr


def test_the_scenarios_exercise_every_rule(case: Run) -> None:
    """Guards the generator: every kind of movement occurs, fx only when foreign currencies are billed."""
    kinds = {row[2] for row in case.reference.movements}
    assert kinds == set(MOVEMENT_KINDS)
    statuses = {line.invoice_status for line in case.scenario.lines}
    assert statuses == {"paid", "open", "uncollectible", "void", "draft"}
    assert any(line.proration for line in case.scenario.lines)
    assert any(month.ltv is not None and month.nrr is not None for month in case.engine_months)


@pytest.mark.parametrize("seed", range(4))
def test_single_currency_has_no_fx(seed: int) -> None:
    policy = Policy(timezone="America/Los_Angeles")
    scenario = generate(100 + seed, policy, currencies=("USD",))
    engine = compute(scenario.lines, rates=engine_rates(scenario.rates), policy=policy)
    assert movement_rows(engine) == sorted(Reference(scenario.lines, scenario.rates, policy).movements)
    assert not [m for m in engine.movements if m.kind == "fx"]


def missing_rate_cases() -> list[tuple[list[InvoiceLine], dict[tuple[str, dt.date], str], Policy, str, dt.date]]:
    rates = {("EUR", dt.date(2026, 1, 1)): "0.9", ("GBP", dt.date(2026, 1, 1)): "0.8"}
    eur = line("cus_1", utc(2026, 1, 1, 3), utc(2026, 2, 1, 3), 1000, currency="EUR")
    gbp = line("cus_1", utc(2026, 1, 5), utc(2026, 2, 5), 1000, currency="GBP")
    return [
        # 03:00 UTC on 2026-01-01 is still 2025-12-31 in Los Angeles, before the first rate
        ([eur], rates, Policy(timezone="America/Los_Angeles"), "EUR", dt.date(2025, 12, 31)),
        # the reporting currency's own rate is missing
        ([gbp], {("GBP", dt.date(2026, 1, 1)): "0.8"}, Policy(reporting_currency="EUR"), "EUR", dt.date(2026, 1, 5)),
        (
            [line("cus_1", utc(2025, 6, 1), utc(2025, 7, 1), 500, currency="GBP"), eur],
            rates,
            Policy(),
            "GBP",
            dt.date(2025, 6, 1),
        ),
    ]


@pytest.mark.parametrize(("lines", "rates", "policy", "currency", "day"), missing_rate_cases())
def test_missing_rate(
    lines: list[InvoiceLine], rates: dict[tuple[str, dt.date], str], policy: Policy, currency: str, day: dt.date
) -> None:
    with pytest.raises(ReferenceMissingRate) as expected:
        Reference(lines, rates, policy)
    assert (expected.value.currency, expected.value.day) == (currency, day)
    with pytest.raises(MissingRate) as raised:
        compute(lines, rates=engine_rates(rates), policy=policy)
    assert (raised.value.currency, raised.value.day) == (currency, day)
    assert currency in str(raised.value) and day.isoformat() in str(raised.value)


def test_missing_rate_in_a_generated_account() -> None:
    policy = Policy()
    scenario = generate(7, policy)
    foreign = min(
        (
            line
            for line in scenario.lines
            if line.currency == "EUR"
            and line.kind == "recurring"
            and line.invoice_status not in ("draft", "void")
            and line.period_end - line.period_start >= dt.timedelta(days=2)
        ),
        key=lambda line: line.period_start,
    )
    first = foreign.period_start.date()
    rates = {key: value for key, value in scenario.rates.items() if not (key[0] == "EUR" and key[1] <= first)}
    with pytest.raises(MissingRate) as raised:
        compute(scenario.lines, rates=engine_rates(rates), policy=policy)
    assert raised.value.currency == "EUR"
    with pytest.raises(ReferenceMissingRate):
        Reference(scenario.lines, rates, policy)


# --- small hand-made inputs where the specification leaves room for reading; the engine reads them as the reference --

D = dt.date
EUR_RATES = {("EUR", D(2026, 1, 1)): "0.9", ("EUR", D(2026, 2, 1)): "0.8"}
Expected = list[tuple[dt.date, str, int]]


def edge_cases() -> list[tuple[str, list[InvoiceLine], dict[tuple[str, dt.date], str], Policy, Expected]]:
    january = ("cus_1", utc(2026, 1, 1), utc(2026, 2, 1), 10000)
    february = ("cus_1", utc(2026, 2, 1), utc(2026, 3, 1), 10000)
    quarter = line(
        "cus_1",
        utc(2026, 1, 1),
        utc(2026, 4, 1),
        30000,
        interval_count=3,
        currency="EUR",
        subscription="sub_2",
        item="si_2",
    )
    both_then_contraction: Expected = [
        (D(2026, 1, 1), "new", 22222),
        (D(2026, 2, 1), "contraction", -11111),
        (D(2026, 4, 1), "churn", -11111),
    ]
    repriced: Expected = [
        (D(2026, 1, 1), "new", 11111),
        (D(2026, 2, 1), "expansion", 1389),
        (D(2026, 3, 1), "churn", -12500),
    ]
    gbp_rates = {**EUR_RATES, ("GBP", D(2025, 12, 1)): "0.8"}
    return [
        # "a line in the same currency starting that day" is read as a line that carries MRR
        (
            "renewal-on-a-draft-invoice",
            [line(*january, currency="EUR"), line(*february, currency="EUR", status="draft"), quarter],
            EUR_RATES,
            Policy(),
            both_then_contraction,
        ),
        (
            "renewal-on-a-void-invoice",
            [line(*january, currency="EUR"), line(*february, currency="EUR", status="void"), quarter],
            EUR_RATES,
            Policy(),
            both_then_contraction,
        ),
        (
            "metered-line-on-the-item",
            [line(*january, currency="EUR"), line(*february, currency="EUR", kind="metered"), quarter],
            EUR_RATES,
            Policy(),
            both_then_contraction,
        ),
        # "its subscription item": the same item of the same subscription
        (
            "same-item-id-other-subscription",
            [
                line(*january, currency="EUR", subscription="sub_a"),
                line(*february, currency="EUR", subscription="sub_b"),
            ],
            EUR_RATES,
            Policy(),
            repriced,
        ),
        # re-priced in pounds worth the same: no movement (an FX part would be +1389, then a contraction of -1389)
        (
            "renewal-in-another-currency",
            [line(*january, currency="EUR"), line("cus_1", utc(2026, 2, 1), utc(2026, 3, 1), 8889, currency="GBP")],
            gbp_rates,
            Policy(),
            [(D(2026, 1, 1), "new", 11111), (D(2026, 3, 1), "churn", -11111)],
        ),
        (
            "lines-without-an-item",
            [
                line(*january, currency="EUR", subscription=None, item=None),
                line(*february, currency="EUR", subscription=None, item=None),
            ],
            EUR_RATES,
            Policy(),
            repriced,
        ),
        # days are dates: a line of eight hours across midnight covers its first date
        (
            "short-line-across-midnight",
            [line("cus_1", utc(2026, 1, 1, 20), utc(2026, 1, 2, 4), 1000)],
            {},
            Policy(),
            [(D(2026, 1, 1), "new", 1000), (D(2026, 1, 2), "churn", -1000)],
        ),
        # a line within one date covers no day, and so needs no rate
        (
            "line-within-a-day",
            [line("cus_1", utc(2026, 1, 1, 1), utc(2026, 1, 1, 20), 1000, currency="EUR")],
            {},
            Policy(),
            [],
        ),
        # naive datetimes are UTC
        (
            "naive-datetimes",
            [line("cus_1", dt.datetime(2026, 1, 1, 3), dt.datetime(2026, 2, 1, 3), 1000)],
            {},
            Policy(timezone="America/Los_Angeles"),
            [(D(2025, 12, 31), "new", 1000), (D(2026, 1, 31), "churn", -1000)],
        ),
        # the rate of the line's first day in the reporting time zone
        (
            "rate-of-the-local-date",
            [line("cus_1", utc(2026, 1, 1, 3), utc(2026, 2, 1, 3), 1000, currency="EUR")],
            {("EUR", D(2025, 12, 31)): "0.5", ("EUR", D(2026, 1, 1)): "1"},
            Policy(timezone="America/Los_Angeles"),
            [(D(2025, 12, 31), "new", 2000), (D(2026, 1, 31), "churn", -2000)],
        ),
        # the US dollar is 1 per US dollar: reporting in euros needs no dollar rate
        (
            "dollars-reported-in-euros",
            [line(*january)],
            EUR_RATES,
            Policy(reporting_currency="EUR"),
            [(D(2026, 1, 1), "new", 9000), (D(2026, 2, 1), "churn", -9000)],
        ),
        # never below zero: a credit larger than what is left churns the customer
        (
            "credit-below-zero",
            [
                line("cus_1", utc(2026, 1, 1), utc(2026, 2, 1), 1000),
                line("cus_1", utc(2026, 1, 10), utc(2026, 3, 1), 3000, amount=-1500, proration=True),
            ],
            {},
            Policy(),
            [(D(2026, 1, 1), "new", 1000), (D(2026, 1, 10), "churn", -1000)],
        ),
        # a 100 % coupon: no MRR when discounts are deducted, the plan's price when they are not
        ("full-coupon-deducted", [line(*january, net_amount=0)], {}, Policy(), []),
        (
            "full-coupon-not-deducted",
            [line(*january, net_amount=0)],
            {},
            Policy(deduct_discounts=False),
            [(D(2026, 1, 1), "new", 10000), (D(2026, 2, 1), "churn", -10000)],
        ),
        # tax-inclusive prices are taken without their tax; round half up on the day plan (12 / 365 months)
        (
            "tax-inclusive-daily",
            [
                line(
                    "cus_1",
                    utc(2026, 1, 1),
                    utc(2026, 1, 31),
                    12000,
                    amount=12000,
                    amount_excluding_tax=10000,
                    interval="day",
                    interval_count=30,
                )
            ],
            {},
            Policy(),
            [(D(2026, 1, 1), "new", 10139), (D(2026, 1, 31), "churn", -10139)],
        ),
    ]


@pytest.mark.parametrize(
    ("lines", "rates", "policy", "expected"),
    [case[1:] for case in edge_cases()],
    ids=[case[0] for case in edge_cases()],
)
def test_edge_case(
    lines: list[InvoiceLine], rates: dict[tuple[str, dt.date], str], policy: Policy, expected: Expected
) -> None:
    reference = Reference(lines, rates, policy)
    assert [(day, kind, amount) for _, day, kind, amount in reference.movements] == expected
    engine = compute(lines, rates=engine_rates(rates), policy=policy)
    assert [(day, kind, amount) for _, day, kind, amount in movement_rows(engine)] == expected


# --- free-form lines from hypothesis: few, small, colliding (same items, same days, odd amounts) ----------------------


FREE_PLANS: tuple[tuple[Interval, int], ...] = (("month", 1), ("month", 3), ("year", 1), ("week", 1), ("day", 7))


@st.composite
def free_lines(draw: st.DrawFn) -> list[InvoiceLine]:
    result = []
    for number in range(draw(st.integers(1, 8))):
        start = utc(2026, 1, 1) + dt.timedelta(hours=draw(st.integers(0, 24 * 70)))
        end = start + dt.timedelta(hours=draw(st.integers(1, 24 * 60)))
        amount = draw(st.sampled_from((0, 1, 5, 999, 1000, 4999, -1, -500, -2500)))
        excluding = amount - draw(st.integers(0, abs(amount))) * (1 if amount >= 0 else -1)
        net = excluding - draw(st.integers(0, abs(excluding))) * (1 if excluding >= 0 else -1)
        interval, count = draw(st.sampled_from(FREE_PLANS))
        result.append(
            InvoiceLine(
                id=f"il_{number}",
                invoice=f"in_{number}",
                customer=draw(st.sampled_from(("cus_1", "cus_2"))),
                subscription=draw(st.sampled_from(("sub_1", "sub_2"))),
                item=draw(st.sampled_from(("si_1", "si_2", None))),
                kind=draw(st.sampled_from(("recurring", "recurring", "recurring", "one_time", "metered"))),
                proration=amount < 0,
                period_start=start,
                period_end=end,
                currency=draw(st.sampled_from(("USD", "EUR", "GBP"))),
                unit_amount=draw(st.integers(1, 20000)),
                quantity=draw(st.integers(1, 4)),
                amount=amount,
                amount_excluding_tax=excluding,
                net_amount=net,
                interval=interval,
                interval_count=count,
                invoice_status=draw(st.sampled_from(("paid", "paid", "open", "uncollectible", "void", "draft"))),
            )
        )
    return result


FREE_RATES = {
    (currency, dt.date(2025, 12, 1) + dt.timedelta(days=3 * step)): f"{base + 0.0137 * ((step * 7) % 11 - 5):.4f}"
    for currency, base in (("EUR", 0.9), ("GBP", 0.8))
    for step in range(60)
}


@settings(max_examples=300, deadline=None)
@given(lines=free_lines(), policy=st.sampled_from(POLICIES))
def test_free_form_lines(lines: list[InvoiceLine], policy: Policy) -> None:
    engine = compute(lines, rates=engine_rates(FREE_RATES), policy=policy)
    reference = Reference(lines, FREE_RATES, policy)
    assert movement_rows(engine) == sorted(reference.movements)
    start, end = dt.date(2025, 12, 1), dt.date(2026, 5, 1)
    assert (
        month_differences(
            monthly_summary(engine, start=start, end=end, spend={end: 1000}), reference.months(start, end, {end: 1000})
        )
        == []
    )
    assert cohort_differences(cohort_table(engine, until=end), reference.cohorts(end)) == []
