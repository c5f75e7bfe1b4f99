"""An independent reference calculation of ``docs/metrics.md``, written from the specification alone.

It shares nothing with ``northstar/metrics/engine.py`` but the input types (``InvoiceLine``, ``Policy``): rates lookup,
rounding, a line's MRR, the customer's MRR day by day, the movements, the monthly metrics and the cohorts are all
computed here again, as plainly as possible rather than fast. Arithmetic is exact (``fractions.Fraction``) and every
"round" of the specification is an explicit round half up (away from zero for negative values).

Readings of the specification where it leaves room (the tests rely on them, the report lists them):

* the days a line covers are the calendar dates, in the reporting time zone, from the date of ``period_start`` up to
  the day before the date of ``period_end``; the date its rate is looked up on is that first date;
* only lines that carry MRR (``recurring``, invoice neither ``draft`` nor ``void``) and cover at least one day take
  part in anything, including the FX rule's "line ending on the day" and "a line ... starting that day", which must
  also be of the same subscription and subscription item;
* a rate is "units of a currency per US dollar", so the US dollar's own rate is always 1;
* ARPA in the LTV is the month's (rounded) ARPA; CAC is null for a month without spend entered;
* a cohort table runs over the months up to the month of ``until`` (that month included).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

from northstar.metrics.engine import Policy
from northstar.metrics.inputs import InvoiceLine

ONE_DAY = dt.timedelta(days=1)
MOVEMENT_KINDS = ("new", "expansion", "reactivation", "contraction", "churn", "fx")
RateValue = str | Decimal | int
RateTable = Mapping[tuple[str, dt.date], RateValue]
MovementRow = tuple[str, dt.date, str, int]
# decimals of the minor unit where ISO 4217 says other than two (the ones a test uses)
DECIMALS = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}


class ReferenceMissingRate(Exception):
    """The reference's own "no rate for this currency on or before this day"."""

    def __init__(self, currency: str, day: dt.date) -> None:
        super().__init__(f"no rate for {currency} on or before {day.isoformat()}")
        self.currency = currency
        self.day = day


# --- arithmetic ----------------------------------------------------------------------------------------------------


def round_half_up(value: Fraction) -> int:
    """Round to an integer, halves away from zero."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def four_decimals(value: Fraction) -> float:
    return float(Fraction(round_half_up(value * 10000), 10000))


def percent(numerator: int, denominator: int) -> float | None:
    if denominator == 0:
        return None
    return four_decimals(Fraction(numerator * 100, denominator))


# --- calendar ------------------------------------------------------------------------------------------------------


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def shift_month(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + (month.month - 1) + count
    return dt.date(index // 12, index % 12 + 1, 1)


def last_day(month: dt.date) -> dt.date:
    return shift_month(month, 1) - ONE_DAY


def local_date(instant: dt.datetime, zone: ZoneInfo) -> dt.date:
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(zone).date()


def days_between(first: dt.date, stop: dt.date) -> list[dt.date]:
    """first, first + 1, ..., stop - 1."""
    return [first + dt.timedelta(days=offset) for offset in range((stop - first).days)]


# --- a line's MRR --------------------------------------------------------------------------------------------------


def months_of(interval: str, count: int) -> Fraction:
    if interval == "month":
        return Fraction(count)
    if interval == "year":
        return Fraction(12 * count)
    if interval == "week":
        return Fraction(12 * count, 52)
    if interval == "day":
        return Fraction(12 * count, 365)
    raise ValueError(f"unknown interval {interval!r}")


def carries_mrr(line: InvoiceLine) -> bool:
    return line.kind == "recurring" and line.invoice_status not in ("draft", "void")


def native_mrr(line: InvoiceLine, policy: Policy) -> int:
    if line.amount == 0:
        return 0
    base = line.net_amount if policy.deduct_discounts else line.amount_excluding_tax
    per_period = abs(Fraction(line.unit_amount * line.quantity * base, line.amount))
    sign = 1 if line.amount > 0 else -1
    return sign * round_half_up(per_period / months_of(line.interval, line.interval_count))


class RateBook:
    """Daily rates per US dollar; a day without a rate takes the latest earlier one."""

    def __init__(self, rates: RateTable) -> None:
        by_currency: dict[str, dict[dt.date, Fraction]] = defaultdict(dict)
        for (currency, day), value in rates.items():
            by_currency[currency][day] = Fraction(Decimal(str(value)))
        self._days = {currency: sorted(days) for currency, days in by_currency.items()}
        self._values = dict(by_currency)

    def per_usd(self, currency: str, day: dt.date) -> Fraction:
        if currency == "USD":
            return Fraction(1)
        days = self._days.get(currency, [])
        position = bisect.bisect_right(days, day)
        if position == 0:
            raise ReferenceMissingRate(currency, day)
        return self._values[currency][days[position - 1]]

    def value(self, native: int, currency: str, day: dt.date, reporting: str) -> int:
        """``native`` minor units of ``currency`` in reporting currency minor units at the rates of ``day``."""
        if currency == reporting:
            return native
        in_units = Fraction(native, 10 ** DECIMALS.get(currency, 2))
        return round_half_up(
            in_units * self.per_usd(reporting, day) / self.per_usd(currency, day) * 10 ** DECIMALS.get(reporting, 2)
        )


@dataclass(frozen=True)
class PricedLine:
    line: InvoiceLine
    first: dt.date  # first day covered
    stop: dt.date  # first day no longer covered
    native: int
    mrr: int

    @property
    def item_key(self) -> tuple[str, str | None, str | None]:
        return (self.line.customer, self.line.subscription, self.line.item)


# --- the whole calculation -----------------------------------------------------------------------------------------


class Reference:
    def __init__(
        self, lines: Iterable[InvoiceLine], rates: RateTable, policy: Policy, now: dt.datetime | None = None
    ) -> None:
        self.policy = policy
        self.book = RateBook(rates)
        zone = ZoneInfo(policy.timezone)
        carrying = [line for line in lines if carries_mrr(line)]
        starts: dict[tuple[str, str | None, str | None], list[dt.datetime]] = defaultdict(list)
        for line in carrying:
            starts[(line.customer, line.subscription, line.item)].append(line.period_start)
        self.priced: dict[str, list[PricedLine]] = defaultdict(list)
        for line in carrying:
            first, stop = local_date(line.period_start, zone), local_date(line.period_end, zone)
            if first >= stop:
                continue  # covers no day
            # "Today": paid until later today, and not followed by another line of its item yet
            if (
                now is not None
                and line.period_end > now
                and stop == local_date(now, zone)
                and not any(start >= line.period_end for start in starts[(line.customer, line.subscription, line.item)])
            ):
                stop += ONE_DAY
            native = native_mrr(line, policy)
            mrr = self.book.value(native, line.currency, first, policy.reporting_currency)
            self.priced[line.customer].append(PricedLine(line, first, stop, native, mrr))

        # every customer's summed line MRR, day by day
        self.daily: dict[str, dict[dt.date, int]] = {}
        for customer, priced in self.priced.items():
            sums: dict[dt.date, int] = defaultdict(int)
            for entry in priced:
                for day in days_between(entry.first, entry.stop):
                    sums[day] += entry.mrr
            self.daily[customer] = dict(sums)

        self.movements: list[MovementRow] = []
        for customer in sorted(self.priced):
            self.movements.extend(self._customer_movements(customer))

    def mrr_on(self, customer: str, day: dt.date) -> int:
        return max(0, self.daily.get(customer, {}).get(day, 0))

    def _fx(self, customer: str, day: dt.date) -> int:
        priced = self.priced[customer]
        total = 0
        for old in priced:
            if old.stop != day or old.line.item is None:
                continue
            renewed = any(
                new.first == day and new.item_key == old.item_key and new.line.currency == old.line.currency
                for new in priced
            )
            if renewed:
                again = self.book.value(old.native, old.line.currency, day, self.policy.reporting_currency)
                total += again - old.mrr
        return total

    def _customer_movements(self, customer: str) -> list[MovementRow]:
        priced = self.priced[customer]
        first = min(entry.first for entry in priced)
        stop = max(entry.stop for entry in priced)
        boundaries = {entry.first for entry in priced} | {entry.stop for entry in priced}
        rows: list[MovementRow] = []
        had_mrr = False
        for day in days_between(first, stop + ONE_DAY):
            before, after = self.mrr_on(customer, day - ONE_DAY), self.mrr_on(customer, day)
            had_mrr = had_mrr or before > 0
            if before == 0 and after > 0:
                rows.append((customer, day, "reactivation" if had_mrr else "new", after))
            elif before > 0 and after == 0:
                rows.append((customer, day, "churn", -before))
            elif before > 0 and after > 0:
                fx = self._fx(customer, day) if day in boundaries else 0
                rest = after - before - fx
                if fx != 0:
                    rows.append((customer, day, "fx", fx))
                if rest > 0:
                    rows.append((customer, day, "expansion", rest))
                elif rest < 0:
                    rows.append((customer, day, "contraction", rest))
        return rows

    # --- monthly metrics ---

    def mrr_at_end(self, month: dt.date) -> int:
        end = last_day(month)
        return sum(self.mrr_on(customer, end) for customer in self.priced)

    def customers_at_end(self, month: dt.date) -> int:
        end = last_day(month)
        return sum(1 for customer in self.priced if self.mrr_on(customer, end) > 0)

    def month_movements(self, month: dt.date) -> list[MovementRow]:
        return [row for row in self.movements if first_of_month(row[1]) == month]

    def churned_customers(self, month: dt.date) -> int:
        return sum(1 for row in self.month_movements(month) if row[2] == "churn")

    def month(self, month: dt.date, spend: Mapping[dt.date, int] | None) -> dict[str, object]:
        mrr = self.mrr_at_end(month)
        customers = self.customers_at_end(month)
        previous = shift_month(month, -1)
        mrr_before, customers_before = self.mrr_at_end(previous), self.customers_at_end(previous)
        rows = self.month_movements(month)
        sums = {kind: sum(row[3] for row in rows if row[2] == kind) for kind in MOVEMENT_KINDS}
        counts = {kind: sum(1 for row in rows if row[2] == kind) for kind in MOVEMENT_KINDS}
        new, expansion, reactivation = sums["new"], sums["expansion"], sums["reactivation"]
        contraction, churn, fx = sums["contraction"], sums["churn"], sums["fx"]
        arpa = round_half_up(Fraction(mrr, customers)) if customers else None
        lost = -churn - contraction
        gained = new + expansion + reactivation
        quick_ratio = four_decimals(Fraction(gained, lost)) if lost != 0 else None

        # LTV: ARPA over the mean customer churn of M - 5 ... M
        churns: list[Fraction] = []
        for back in range(5, -1, -1):
            other = shift_month(month, -back)
            base = self.customers_at_end(shift_month(other, -1))
            if base > 0:
                churns.append(Fraction(self.churned_customers(other), base))
        ltv: int | None = None
        if arpa is not None and churns:
            mean = sum(churns, Fraction(0)) / len(churns)
            if mean != 0:
                ltv = round_half_up(Fraction(arpa) / mean)

        # NRR, GRR over the customers with MRR at the end of M - 12
        year_ago = last_day(shift_month(month, -12))
        end = last_day(month)
        then = {c: self.mrr_on(c, year_ago) for c in self.priced if self.mrr_on(c, year_ago) > 0}
        base_mrr = sum(then.values())
        nrr = percent(sum(self.mrr_on(c, end) for c in then), base_mrr)
        grr = percent(sum(min(self.mrr_on(c, end), value) for c, value in then.items()), base_mrr)

        entered = spend.get(month) if spend is not None else None
        cac = round_half_up(Fraction(entered, counts["new"])) if entered is not None and counts["new"] else None

        return {
            "month": month,
            "mrr": mrr,
            "arr": 12 * mrr,
            "customers": customers,
            "arpa": arpa,
            "new": new,
            "expansion": expansion,
            "reactivation": reactivation,
            "contraction": contraction,
            "churn": churn,
            "fx": fx,
            "net_new": new + expansion + reactivation + contraction + churn,
            "new_customers": counts["new"],
            "reactivated_customers": counts["reactivation"],
            "churned_customers": counts["churn"],
            "customer_churn_rate": percent(counts["churn"], customers_before),
            "gross_mrr_churn_rate": percent(lost, mrr_before),
            "net_mrr_churn_rate": percent(lost - expansion - reactivation, mrr_before),
            "quick_ratio": quick_ratio,
            "ltv": ltv,
            "nrr": nrr,
            "grr": grr,
            "cac": cac,
        }

    def months(self, start: dt.date, end: dt.date, spend: Mapping[dt.date, int] | None) -> list[dict[str, object]]:
        result = []
        month = first_of_month(start)
        while month <= end:
            result.append(self.month(month, spend))
            month = shift_month(month, 1)
        return result

    # --- cohorts ---

    def cohorts(self, until: dt.date) -> list[dict[str, object]]:
        cohort_of = {row[0]: first_of_month(row[1]) for row in self.movements if row[2] == "new"}
        last = first_of_month(until)
        table: list[dict[str, object]] = []
        for cohort in sorted(set(cohort_of.values())):
            members = [c for c, month in cohort_of.items() if month == cohort]
            at_start = {c: self.mrr_on(c, last_day(cohort)) for c in members}
            base = sum(at_start.values())
            k = 0
            while shift_month(cohort, k) <= last:
                end = last_day(shift_month(cohort, k))
                now = {c: self.mrr_on(c, end) for c in members}
                mrr = sum(now.values())
                table.append(
                    {
                        "cohort": cohort,
                        "k": k,
                        "customers": sum(1 for value in now.values() if value > 0),
                        "mrr": mrr,
                        "nrr": percent(mrr, base),
                        "grr": percent(sum(min(now[c], at_start[c]) for c in members), base),
                    }
                )
                k += 1
        return table


def reference_movements(lines: Iterable[InvoiceLine], rates: RateTable, policy: Policy) -> list[MovementRow]:
    """Every movement as (customer, day, kind, amount), by customer then day."""
    return Reference(lines, rates, policy).movements


def reference_months(
    lines: Iterable[InvoiceLine],
    rates: RateTable,
    policy: Policy,
    start: dt.date,
    end: dt.date,
    spend: Mapping[dt.date, int] | None = None,
) -> list[dict[str, object]]:
    """The monthly metrics from the month of ``start`` to ``end`` included, keyed like the engine's ``Month``."""
    return Reference(lines, rates, policy).months(start, end, spend)


def reference_cohorts(
    lines: Iterable[InvoiceLine], rates: RateTable, policy: Policy, until: dt.date
) -> list[dict[str, object]]:
    """The cohort table, keyed like the engine's ``CohortRow``."""
    return Reference(lines, rates, policy).cohorts(until)
