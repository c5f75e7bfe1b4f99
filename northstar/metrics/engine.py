"""The SaaS metrics engine: MRR per customer per day from invoice lines, its movements, and the monthly metrics.

Every rule is in ``docs/metrics.md``; this module is its implementation and a reference calculation in the tests is
the other, written apart. All money is integer cents and every division rounds half up (away from zero), with
integer arithmetic only, so results are exact and the same on every machine.

The engine is pure: lines, rates and a policy in; movements and monthly figures out. ``service.py`` feeds it from
the database and stores what it returns.
"""

from __future__ import annotations

import bisect
import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Literal

from northstar.metrics.inputs import InvoiceLine, minor_units

MovementKind = Literal["new", "expansion", "reactivation", "contraction", "churn", "fx"]
MOVEMENT_KINDS: tuple[MovementKind, ...] = ("new", "expansion", "reactivation", "contraction", "churn", "fx")
_NOT_BILLED = frozenset({"draft", "void"})
# months(interval, count) = count * p / q
_MONTHS: dict[str, tuple[int, int]] = {"month": (1, 1), "year": (12, 1), "week": (12, 52), "day": (12, 365)}


def round_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero (denominator > 0)."""
    magnitude = (2 * abs(numerator) + denominator) // (2 * denominator)
    return magnitude if numerator >= 0 else -magnitude


@dataclass(frozen=True)
class Policy:
    reporting_currency: str = "USD"
    timezone: str = "UTC"
    deduct_discounts: bool = True


class MissingRate(Exception):
    """No exchange rate for a currency on or before a day: the metrics it touches cannot be computed."""

    def __init__(self, currency: str, day: dt.date) -> None:
        super().__init__(f"no exchange rate for {currency} on or before {day.isoformat()}")
        self.currency = currency
        self.day = day


class Rates:
    """Daily rates as units of a currency per US dollar; a day without a rate uses the latest earlier one."""

    def __init__(self, rows: Iterable[tuple[str, dt.date, Decimal | str | float | int]] = ()) -> None:
        series: dict[str, list[tuple[dt.date, tuple[int, int]]]] = defaultdict(list)
        for currency, day, rate in rows:
            series[currency.upper()].append((day, Decimal(str(rate)).as_integer_ratio()))
        self.days: dict[str, list[dt.date]] = {}
        self.values: dict[str, list[tuple[int, int]]] = {}
        for currency, points in series.items():
            points.sort()
            self.days[currency] = [day for day, _ in points]
            self.values[currency] = [value for _, value in points]

    def per_usd(self, currency: str, day: dt.date) -> tuple[int, int]:
        if currency == "USD":
            return 1, 1
        days = self.days.get(currency)
        position = bisect.bisect_right(days, day) - 1 if days else -1
        if position < 0:
            raise MissingRate(currency, day)
        return self.values[currency][position]

    def factor(self, currency: str, reporting: str, day: dt.date) -> tuple[int, int]:
        """(numerator, denominator) turning an amount in ``currency`` minor units into ``reporting`` minor units
        on ``day`` (yen have no decimals, dinars three: a rate is per unit, not per minor unit)."""
        if currency == reporting:
            return 1, 1
        rep_num, rep_den = self.per_usd(reporting, day)
        cur_num, cur_den = self.per_usd(currency, day)
        shift = minor_units(reporting) - minor_units(currency)
        return rep_num * cur_den * 10 ** max(shift, 0), rep_den * cur_num * 10 ** max(-shift, 0)


def native_mrr(line: InvoiceLine, policy: Policy) -> int:
    """The line's monthly value in its own currency (``docs/metrics.md``, "A line's MRR")."""
    if line.amount == 0:
        return 0
    base = line.net_amount if policy.deduct_discounts else line.amount_excluding_tax
    per, over = _MONTHS[line.interval]
    value = round_div(abs(line.unit_amount * line.quantity * base) * over, abs(line.amount) * per * line.interval_count)
    return value if line.amount > 0 else -value


def convert(amount: int, factor: tuple[int, int]) -> int:
    return round_div(amount * factor[0], factor[1])


@dataclass(frozen=True)
class Span:
    """A line that carries MRR, as the days it covers."""

    line: str
    start: dt.date
    end: dt.date
    native: int
    mrr: int
    currency: str
    item: tuple[str, str] | None


@dataclass(frozen=True)
class Movement:
    customer: str
    day: dt.date
    kind: MovementKind
    amount: int
    lines: tuple[str, ...] = ()


@dataclass
class Timeline:
    """One customer's MRR: the days it changes and its value from each of them."""

    days: list[dt.date] = field(default_factory=list)
    values: list[int] = field(default_factory=list)

    def on(self, day: dt.date) -> int:
        position = bisect.bisect_right(self.days, day) - 1
        return self.values[position] if position >= 0 else 0


@dataclass
class Computation:
    movements: list[Movement]
    timelines: dict[str, Timeline]

    def mrr_on(self, customer: str, day: dt.date) -> int:
        timeline = self.timelines.get(customer)
        return timeline.on(day) if timeline else 0


def spans_of(
    lines: Iterable[InvoiceLine], *, rates: Rates, policy: Policy, now: dt.datetime | None = None
) -> dict[str, list[Span]]:
    """The lines that carry MRR, by customer, with their days and converted values. With ``now``, a line whose
    period ends later today and that nothing of its subscription item follows yet still covers today
    (``docs/metrics.md``, "Today")."""
    zone = zoneinfo.ZoneInfo(policy.timezone)
    reporting = policy.reporting_currency
    billed = [line for line in lines if line.kind == "recurring" and line.invoice_status not in _NOT_BILLED]
    today = now.astimezone(zone).date() if now is not None else None
    latest_start: dict[tuple[str, str | None, str | None], dt.datetime] = {}
    if now is not None:
        for line in billed:
            key = (line.customer, line.subscription, line.item)
            latest_start[key] = max(latest_start.get(key, line.period_start), line.period_start)
    by_customer: dict[str, list[Span]] = defaultdict(list)
    for line in billed:
        start, end = line.period_start.astimezone(zone).date(), line.period_end.astimezone(zone).date()
        if end <= start:
            continue
        if (
            now is not None
            and end == today
            and line.period_end > now
            and latest_start[(line.customer, line.subscription, line.item)] < line.period_end
        ):
            end += dt.timedelta(days=1)
        native = native_mrr(line, policy)
        currency = line.currency.upper()
        mrr = convert(native, rates.factor(currency, reporting, start))
        item = (line.subscription, line.item) if line.subscription and line.item else None
        by_customer[line.customer].append(Span(line.id, start, end, native, mrr, currency, item))
    return by_customer


def compute(
    lines: Iterable[InvoiceLine], *, rates: Rates, policy: Policy, now: dt.datetime | None = None
) -> Computation:
    """Every customer's MRR timeline and movements (``docs/metrics.md``, "A customer's MRR on a day"), as known at
    ``now`` when given."""
    movements: list[Movement] = []
    timelines: dict[str, Timeline] = {}
    for customer, spans in spans_of(lines, rates=rates, policy=policy, now=now).items():
        timeline, found = customer_movements(customer, spans, rates=rates, policy=policy)
        timelines[customer] = timeline
        movements.extend(found)
    movements.sort(key=lambda movement: (movement.day, movement.customer, MOVEMENT_KINDS.index(movement.kind)))
    return Computation(movements, timelines)


def customer_movements(
    customer: str, spans: list[Span], *, rates: Rates, policy: Policy
) -> tuple[Timeline, list[Movement]]:
    starting: dict[dt.date, list[Span]] = defaultdict(list)
    ending: dict[dt.date, list[Span]] = defaultdict(list)
    for span in spans:
        starting[span.start].append(span)
        ending[span.end].append(span)
    timeline = Timeline()
    movements: list[Movement] = []
    raw, had_mrr = 0, False
    for day in sorted(starting.keys() | ending.keys()):
        began, ended = starting.get(day, []), ending.get(day, [])
        before = max(raw, 0)
        raw += sum(span.mrr for span in began) - sum(span.mrr for span in ended)
        after = max(raw, 0)
        refs = tuple(span.line for span in (*ended, *began))
        if before == 0 and after > 0:
            movements.append(Movement(customer, day, "reactivation" if had_mrr else "new", after, refs))
            had_mrr = True
        elif before > 0 and after == 0:
            movements.append(Movement(customer, day, "churn", -before, refs))
        elif before > 0:
            fx = _revaluation(began, ended, day, rates=rates, reporting=policy.reporting_currency)
            if fx:
                movements.append(Movement(customer, day, "fx", fx, refs))
            rest = after - before - fx
            if rest:
                movements.append(Movement(customer, day, "expansion" if rest > 0 else "contraction", rest, refs))
        if after != before:
            timeline.days.append(day)
            timeline.values.append(after)
    return timeline, movements


def _revaluation(began: list[Span], ended: list[Span], day: dt.date, *, rates: Rates, reporting: str) -> int:
    """The FX part of a day's change: each ending line whose item renews today, valued again at today's rate."""
    renewing = {(span.item, span.currency) for span in began if span.item is not None}
    fx = 0
    for span in ended:
        if span.item is not None and span.currency != reporting and (span.item, span.currency) in renewing:
            fx += convert(span.native, rates.factor(span.currency, reporting, day)) - span.mrr
    return fx


@dataclass(frozen=True)
class Month:
    """The monthly metrics of ``docs/metrics.md`` ("Monthly metrics"); rates are percentages to four decimals."""

    month: dt.date
    mrr: int
    arr: int
    customers: int
    arpa: int | None
    new: int
    expansion: int
    reactivation: int
    contraction: int
    churn: int
    fx: int
    net_new: int
    new_customers: int
    reactivated_customers: int
    churned_customers: int
    customer_churn_rate: float | None
    gross_mrr_churn_rate: float | None
    net_mrr_churn_rate: float | None
    quick_ratio: float | None
    ltv: int | None
    nrr: float | None
    grr: float | None
    cac: int | None


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(month: dt.date) -> dt.date:
    """The last day of the month."""
    return add_months(month, 1) - dt.timedelta(days=1)


def _percent(numerator: int, denominator: int) -> float | None:
    return round(numerator * 100 / denominator, 4) if denominator else None


MonthKind = tuple[dt.date, MovementKind]
MonthPair = tuple[dt.date, int]


@dataclass
class Totals:
    """The additive parts of the monthly metrics, up to the month ``until`` and as of the day ``as_of`` (movements
    after it are not counted yet, and balances are taken on it when a month ends later: the current month so far).

    A customer's ``Totals`` depend on their own timeline and movements only, and the organization's are the sum of
    its customers', so after a change to some customers the stored sum is brought up to date by subtracting their
    old parts and adding their new ones (``add``) instead of recomputing everyone. Every ratio in ``Month`` is a
    ratio of these sums.
    """

    until: dt.date
    as_of: dt.date | None = None
    amounts: dict[MonthKind, int] = field(default_factory=lambda: defaultdict(int))
    counts: dict[MonthKind, int] = field(default_factory=lambda: defaultdict(int))
    daily: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    retained_base: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    retained_kept: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    retained_capped: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    cohort_start: dict[dt.date, int] = field(default_factory=lambda: defaultdict(int))
    cohort_customers: dict[MonthPair, int] = field(default_factory=lambda: defaultdict(int))
    cohort_mrr: dict[MonthPair, int] = field(default_factory=lambda: defaultdict(int))
    cohort_capped: dict[MonthPair, int] = field(default_factory=lambda: defaultdict(int))

    PARTS: ClassVar[tuple[str, ...]] = (
        "amounts",
        "counts",
        "daily",
        "retained_base",
        "retained_kept",
        "retained_capped",
        "cohort_start",
        "cohort_customers",
        "cohort_mrr",
        "cohort_capped",
    )

    def add(self, other: Totals, sign: int = 1) -> None:
        """Add (``sign`` 1) or subtract (-1) another ``Totals``; parts that come to zero are dropped."""
        for name in self.PARTS:
            mine: dict[Any, int] = getattr(self, name)
            for key, value in getattr(other, name).items():
                total = mine.get(key, 0) + sign * value
                if total:
                    mine[key] = total
                else:
                    mine.pop(key, None)

    def to_json(self) -> dict[str, Any]:
        return {
            "until": self.until.isoformat(),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            **{
                name: [[*_key_out(key), value] for key, value in getattr(self, name).items() if value]
                for name in self.PARTS
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Totals:
        totals = cls(
            until=dt.date.fromisoformat(data["until"]),
            as_of=dt.date.fromisoformat(data["as_of"]) if data.get("as_of") else None,
        )
        for name in cls.PARTS:
            part: dict[Any, int] = getattr(totals, name)
            for *key, value in data.get(name, []):
                part[_key_in(key)] = int(value)
        return totals


def _key_out(key: dt.date | tuple[dt.date, str | int]) -> list[str | int]:
    if isinstance(key, dt.date):
        return [key.isoformat()]
    return [key[0].isoformat(), key[1]]


def _key_in(key: list[Any]) -> Any:
    day = dt.date.fromisoformat(key[0])
    return day if len(key) == 1 else (day, key[1])


def customer_totals(
    timeline: Timeline, movements: Iterable[Movement], *, until: dt.date, as_of: dt.date | None = None
) -> Totals:
    """One customer's part of every total, up to the month ``until`` and as of ``as_of``."""
    totals = Totals(until=month_start(until), as_of=as_of)
    cohort = None
    for movement in movements:
        if as_of is not None and movement.day > as_of:
            continue
        month = month_start(movement.day)
        totals.amounts[(month, movement.kind)] += movement.amount
        totals.counts[(month, movement.kind)] += 1
        totals.daily[movement.day] += movement.amount
        if movement.kind == "new":
            cohort = month
    if not timeline.days or (as_of is not None and timeline.days[0] > as_of):
        return totals
    first, last = month_start(timeline.days[0]), totals.until
    ends: dict[dt.date, int] = {}
    month = first
    while month <= last:
        ends[month] = timeline.on(month_end(month) if as_of is None else min(month_end(month), as_of))
        month = add_months(month, 1)
    for base, then in ends.items():
        at = add_months(base, 12)
        if then > 0 and at <= last:
            now = ends[at]
            totals.retained_base[at] += then
            totals.retained_kept[at] += now
            totals.retained_capped[at] += min(now, then)
    if cohort is not None and cohort <= last:
        start = ends[cohort]
        totals.cohort_start[cohort] += start
        k, month = 0, cohort
        while month <= last:
            value = ends[month]
            if value > 0:
                totals.cohort_customers[(cohort, k)] += 1
                totals.cohort_mrr[(cohort, k)] += value
                totals.cohort_capped[(cohort, k)] += min(value, start)
            k, month = k + 1, add_months(month, 1)
    return totals


def totals_of(computation: Computation, *, until: dt.date, as_of: dt.date | None = None) -> Totals:
    """The sum of every customer's totals in a computation (as of ``as_of``: see ``Totals``)."""
    by_customer: dict[str, list[Movement]] = defaultdict(list)
    for movement in computation.movements:
        by_customer[movement.customer].append(movement)
    totals = Totals(until=month_start(until), as_of=as_of)
    for customer in by_customer.keys() | computation.timelines.keys():
        totals.add(
            customer_totals(
                computation.timelines.get(customer, Timeline()), by_customer.get(customer, []), until=until, as_of=as_of
            )
        )
    return totals


def monthly_summary(
    computation: Computation,
    *,
    start: dt.date,
    end: dt.date,
    spend: Mapping[dt.date, int] | None = None,
    as_of: dt.date | None = None,
) -> list[Month]:
    """Months from ``start`` to ``end`` (first days of months, ``end`` included), as of ``as_of``."""
    return months_of(totals_of(computation, until=end, as_of=as_of), start=start, end=end, spend=spend)


def months_of(
    totals: Totals, *, start: dt.date, end: dt.date, spend: Mapping[dt.date, int] | None = None
) -> list[Month]:
    """The monthly metrics from ``start`` to ``end`` (at most ``totals.until``), from the totals alone."""
    spend = spend or {}
    amounts = defaultdict(int, totals.amounts)
    counts = defaultdict(int, totals.counts)
    first = min((month for month, _ in totals.amounts), default=start)
    mrr, customers = _running_totals(totals, since=min(first, add_months(start, -6)), until=end)
    months: list[Month] = []
    month = start
    while month <= end:

        def amount(kind: MovementKind, at: dt.date = month) -> int:
            return amounts[(at, kind)]

        def count(kind: MovementKind, at: dt.date = month) -> int:
            return counts[(at, kind)]

        previous = add_months(month, -1)
        mrr_before, customers_before = mrr.get(previous, 0), customers.get(previous, 0)
        lost = -(amount("churn") + amount("contraction"))
        gained = amount("new") + amount("expansion") + amount("reactivation")
        arpa = round_div(mrr[month], customers[month]) if customers[month] else None
        mean_churn = _mean_churn(counts, customers, month)
        base = totals.retained_base.get(month, 0)
        months.append(
            Month(
                month=month,
                mrr=mrr[month],
                arr=12 * mrr[month],
                customers=customers[month],
                arpa=arpa,
                new=amount("new"),
                expansion=amount("expansion"),
                reactivation=amount("reactivation"),
                contraction=amount("contraction"),
                churn=amount("churn"),
                fx=amount("fx"),
                net_new=gained - lost,
                new_customers=count("new"),
                reactivated_customers=count("reactivation"),
                churned_customers=count("churn"),
                customer_churn_rate=_percent(count("churn"), customers_before),
                gross_mrr_churn_rate=_percent(lost, mrr_before),
                net_mrr_churn_rate=_percent(lost - amount("expansion") - amount("reactivation"), mrr_before),
                quick_ratio=round(gained / lost, 4) if lost else None,
                ltv=_round_fraction(arpa / mean_churn) if arpa is not None and mean_churn else None,
                nrr=_percent(totals.retained_kept.get(month, 0), base),
                grr=_percent(totals.retained_capped.get(month, 0), base),
                cac=round_div(spend[month], count("new")) if month in spend and count("new") else None,
            )
        )
        month = add_months(month, 1)
    return months


def _mean_churn(counts: Mapping[MonthKind, int], customers: Mapping[dt.date, int], month: dt.date) -> Fraction:
    """The mean customer churn rate (as a fraction, unrounded) of the six months to ``month`` that have one."""
    rates = []
    for back in range(5, -1, -1):
        current = add_months(month, -back)
        before = customers.get(add_months(current, -1), 0)
        if before:
            rates.append(Fraction(counts.get((current, "churn"), 0), before))
    return sum(rates, Fraction(0)) / len(rates) if rates else Fraction(0)


def _round_fraction(value: Fraction) -> int:
    return round_div(value.numerator, value.denominator)


def _running_totals(totals: Totals, *, since: dt.date, until: dt.date) -> tuple[dict[dt.date, int], dict[dt.date, int]]:
    """MRR and customers at the end of every month from ``since``: the running sum of the movements."""
    by_month: dict[dt.date, int] = defaultdict(int)
    for (month, _), value in totals.amounts.items():
        by_month[month] += value
    joined: dict[dt.date, int] = defaultdict(int)
    for (month, kind), value in totals.counts.items():
        if kind in ("new", "reactivation"):
            joined[month] += value
        elif kind == "churn":
            joined[month] -= value
    mrr: dict[dt.date, int] = {}
    customers: dict[dt.date, int] = {}
    total = count = 0
    month = add_months(since, -1)
    mrr[month] = customers[month] = 0
    month = since
    while month <= until:
        total += by_month.get(month, 0)
        count += joined.get(month, 0)
        mrr[month], customers[month] = total, count
        month = add_months(month, 1)
    return mrr, customers


@dataclass(frozen=True)
class CohortRow:
    cohort: dt.date
    k: int
    customers: int
    mrr: int
    nrr: float | None
    grr: float | None


def cohort_table(computation: Computation, *, until: dt.date, as_of: dt.date | None = None) -> list[CohortRow]:
    """Customers grouped by the month of their ``new`` movement, followed month by month up to ``until``."""
    return cohorts_of(totals_of(computation, until=until, as_of=as_of))


def cohorts_of(totals: Totals) -> list[CohortRow]:
    """The cohort table from the totals: every month with new customers, from it to ``totals.until``."""
    rows: list[CohortRow] = []
    for cohort in sorted(month for month, kind in totals.counts if kind == "new"):
        start_mrr = totals.cohort_start.get(cohort, 0)
        k, month = 0, cohort
        while month <= totals.until:
            mrr = totals.cohort_mrr.get((cohort, k), 0)
            rows.append(
                CohortRow(
                    cohort=cohort,
                    k=k,
                    customers=totals.cohort_customers.get((cohort, k), 0),
                    mrr=mrr,
                    nrr=_percent(mrr, start_mrr),
                    grr=_percent(totals.cohort_capped.get((cohort, k), 0), start_mrr),
                )
            )
            k, month = k + 1, add_months(month, 1)
    return rows
