"""The dashboard API over HTTP against the real database: cards, series, the waterfall, cohorts, goals, anomalies,
explanations, roles, exports and a missing exchange rate.

Every expected number is worked out by hand, in this file, from a small billing history dated relative to today (so
"this month" and "last month" exist whatever the day) or from KPI points written straight into the store. The
organization counts in USD and UTC, so its "today" is today in UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from northstar.core.db import Database
from northstar.metrics import service
from northstar.metrics.inputs import InvoiceLine, SourceBatch
from northstar.metrics.series import Point, replace_series
from northstar.settings import Settings
from tests.clients import download
from tests.datasets.conftest import wait_for_job
from tests.factories import Account, add_member, signup
from tests.workers import Workers, stop_worker

from .factory import line
from .money import amounts

D = dt.date


def _shift(month: dt.date, count: int) -> dt.date:
    """The first of the month ``count`` months after ``month``'s."""
    index = month.year * 12 + month.month - 1 + count
    return D(index // 12, index % 12 + 1, 1)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


# The billing history, months counted from this one (0 = this month, -1 = last month): per customer, runs of
# monthly periods (first month, last month, monthly price in cents, subscription). Each period is one invoice line
# from the 1st of its month to the 1st of the next, paid.
#
#   A  10000 from month -13 on: the only customer a year ago (trailing NRR and GRR)
#   B   5000 from -2, upgraded to 8000 from -1 (expansion 3000 on the 1st of -1)
#   C   3000 in -2 and -1, not renewed: churn -3000 on the 1st of this month
#   D   2000 from this month (new)
#   E   4000 in -1, down to 1000 this month (contraction -3000)
#   F   1500 in -3 only (churn -1500 on the 1st of -2), back at 1500 from -1 (reactivation)
HISTORY: dict[str, list[tuple[int, int, int, str]]] = {
    "cus_a": [(-13, 0, 10000, "sub_a")],
    "cus_b": [(-2, -2, 5000, "sub_b"), (-1, 0, 8000, "sub_b")],
    "cus_c": [(-2, -1, 3000, "sub_c")],
    "cus_d": [(0, 0, 2000, "sub_d")],
    "cus_e": [(-1, -1, 4000, "sub_e"), (0, 0, 1000, "sub_e")],
    "cus_f": [(-3, -3, 1500, "sub_f1"), (-1, 0, 1500, "sub_f2")],
}
# MRR and customers at the end of each month (this month: today), from the table above
MRR = {**{month: 10000 for month in range(-13, -3)}, -3: 11500, -2: 18000, -1: 26500, 0: 22500}
CUSTOMERS = {**{month: 1 for month in range(-13, -3)}, -3: 2, -2: 3, -1: 5, 0: 5}
BILLING_CARDS = [
    "mrr",
    "arr",
    "customers",
    "arpa",
    "net_new",
    "customer_churn_rate",
    "net_mrr_churn_rate",
    "nrr",
    "quick_ratio",
    "ltv",
]


def _line_id(customer: str, month: int) -> str:
    return f"il_{customer}_{month}"


@dataclass
class Billing:
    """An organization with the history above stored and computed, and the day it is as of."""

    account: Account
    today: dt.date

    def month(self, count: int) -> dt.date:
        return _shift(self.today.replace(day=1), count)

    def lines(self) -> list[InvoiceLine]:
        return [
            line(
                customer,
                _midnight(self.month(month)),
                _midnight(self.month(month + 1)),
                price,
                subscription=subscription,
                item=f"si_{subscription}",
                line_id=_line_id(customer, month),
            )
            for customer, runs in HISTORY.items()
            for first, last, price, subscription in runs
            for month in range(first, last + 1)
        ]

    def mrr_on(self, day: dt.date) -> int:
        """The sum of the prices of the periods covering ``day``."""
        return sum(
            price
            for runs in HISTORY.values()
            for first, last, price, _ in runs
            if self.month(first) <= day < self.month(last + 1)
        )


async def _integration(client: httpx.AsyncClient, account: Account) -> uuid.UUID:
    response = await client.post(
        "/api/v1/integrations",
        headers=account.headers,
        json={"provider": "stripe", "name": "billing", "credentials": {"apiKey": "sk_test_x"}, "test": False},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def _store_and_recompute(
    database: Database, account: Account, integration_id: uuid.UUID, lines: list[InvoiceLine]
) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await service.store_batch(
            session, org_id=account.org_id, integration_id=integration_id, batch=SourceBatch(lines=lines)
        )
    await _recompute(database, account)


async def _recompute(database: Database, account: Account) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await service.recompute(session, org_id=account.org_id)


async def _write_points(database: Database, account: Account, source: str, points: list[Point]) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await replace_series(session, org_id=account.org_id, source=source, points=points)


def _utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@pytest.fixture
async def billing(client: httpx.AsyncClient, founder: Account, database: Database) -> Billing:
    found = Billing(founder, _utc_today())
    await _store_and_recompute(database, founder, await _integration(client, founder), found.lines())
    return found


async def _get(client: httpx.AsyncClient, account: Account, path: str, **params: str) -> Any:
    response = await client.get(path, headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return amounts(response.json()["data"])


def _fields(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in response.json()["error"]["details"]]


def _close(got: float | None, want: float | None) -> bool:
    return got == want if got is None or want is None else got == pytest.approx(want, abs=1e-9)


# ------------------------------------------------------------------------------------------------------------ cards

# card: (this month, last month, change, changePercent, the 12 months to this one, oldest first)
EXPECTED_CARDS: dict[str, tuple[Any, Any, Any, Any, list[Any]]] = {
    # -4000 * 100 / 26500 = -15.094
    "mrr": (22500, 26500, -4000, -15.09, [10000] * 8 + [11500, 18000, 26500, 22500]),
    "arr": (270000, 318000, -48000, -15.09, [120000] * 8 + [138000, 216000, 318000, 270000]),
    "customers": (5, 5, 0, 0, [1] * 8 + [2, 3, 5, 5]),
    # round(MRR / customers): 11500 / 2, 18000 / 3, 26500 / 5, 22500 / 5; -800 * 100 / 5300 = -15.094
    "arpa": (4500, 5300, -800, -15.09, [10000] * 8 + [5750, 6000, 5300, 4500]),
    # new + expansion + reactivation + contraction + churn: -3: 1500; -2: 8000 - 1500; -1: 4000 + 3000 + 1500;
    # this month: 2000 - 3000 - 3000; -12500 * 100 / 8500 = -147.059
    "net_new": (-4000, 8500, -12500, -147.06, [0] * 8 + [1500, 6500, 8500, -4000]),
    # churned customers / customers a month before: -2: F 1 / 2; this month: C 1 / 5; no change percent from 0
    "customer_churn_rate": (20, 0, 20, None, [0] * 9 + [50, 0, 20]),
    # (-churn - contraction - expansion - reactivation) / MRR a month before * 100: -2: 1500 / 11500 = 13.0435;
    # -1: -4500 / 18000 = -25; this month: 6000 / 26500 = 22.6415; the change 47.6415 against |-25|: 190.566
    "net_mrr_churn_rate": (22.6415, -25, 47.6415, 190.57, [0] * 9 + [13.0435, -25, 22.6415]),
    # over the customers with MRR twelve months before (A alone, from month -13): nothing earlier
    "nrr": (100, 100, 0, 0, [None] * 10 + [100, 100]),
    # (new + expansion + reactivation) / (-churn - contraction), none without a loss: -2: 8000 / 1500;
    # this month 2000 / 6000
    "quick_ratio": (0.3333, None, None, None, [None] * 9 + [5.3333, None, 0.3333]),
    # round(ARPA / the mean customer churn of the six months to M that have a month before with customers):
    # -2: churn 0, 0, 0, 0, 0, 1/2 → 1/12, 6000 * 12; -1: the same mean, 5300 * 12;
    # this month: 0, 0, 0, 1/2, 0, 1/5 → 7/60, round(4500 * 60 / 7) = round(38571.43); before -2 the mean is 0
    # -25029 * 100 / 63600 = -39.354
    "ltv": (38571, 63600, -25029, -39.35, [None] * 9 + [72000, 63600, 38571]),
}


def _check_card(card: dict[str, Any], expected: tuple[Any, Any, Any, Any, list[Any]]) -> None:
    value, previous, change, change_percent, sparkline = expected
    metric = card["metric"]
    assert _close(card["value"], value), (metric, "value", card["value"])
    assert _close(card["previous"], previous), (metric, "previous", card["previous"])
    assert _close(card["change"], change), (metric, "change", card["change"])
    assert _close(card["changePercent"], change_percent), (metric, "changePercent", card["changePercent"])
    assert len(card["sparkline"]) == 12
    assert all(_close(got, want) for got, want in zip(card["sparkline"], sparkline, strict=True)), (
        metric,
        card["sparkline"],
    )


async def test_cards_are_this_month_against_last_month_with_a_year_of_sparkline(
    client: httpx.AsyncClient, billing: Billing
) -> None:
    dashboard = await _get(client, billing.account, "/api/v1/dashboard")

    assert dashboard["currency"] == "USD"
    assert dashboard["asOf"] == billing.today.isoformat()
    assert dashboard["problem"] is None
    assert [card["metric"] for card in dashboard["cards"]] == BILLING_CARDS
    for card in dashboard["cards"]:
        _check_card(card, EXPECTED_CARDS[card["metric"]])
        assert card["goal"] is None


async def test_a_goal_is_shown_on_its_card(client: httpx.AsyncClient, billing: Billing) -> None:
    created = await client.post(
        "/api/v1/dashboard/goals",
        headers=billing.account.headers,
        json={"metric": "customers", "target": 10, "targetDate": (billing.today + dt.timedelta(days=90)).isoformat()},
    )
    assert created.status_code == 201, created.text
    goal = amounts(created.json()["data"])

    cards = {card["metric"]: card for card in (await _get(client, billing.account, "/api/v1/dashboard"))["cards"]}
    assert cards["customers"]["goal"] == goal
    assert goal["current"] == 5 and goal["target"] == 10
    assert [metric for metric, card in cards.items() if card["goal"]] == ["customers"]


async def test_cards_of_other_sources_appear_once_they_have_monthly_values(
    client: httpx.AsyncClient, billing: Billing, database: Database
) -> None:
    account, today = billing.account, billing.today
    # daily points alone (a daily rate, daily sessions) make no card
    await _write_points(
        database, account, "traffic", [Point("sessions", "day", today, 40), Point("conversion_rate", "day", today, 2.5)]
    )
    cards = (await _get(client, account, "/api/v1/dashboard"))["cards"]
    assert [card["metric"] for card in cards] == BILLING_CARDS

    await _write_points(
        database,
        account,
        "traffic",
        [
            Point("sessions", "day", today, 40),
            Point("conversion_rate", "day", today, 2.5),
            Point("sessions", "month", billing.month(-1), 1200),
            Point("sessions", "month", billing.month(0), 900),
        ],
    )
    await _write_points(
        database,
        account,
        "commerce",
        [Point("revenue", "month", billing.month(-2), 40000), Point("revenue", "month", billing.month(0), 50000)],
    )
    cards = (await _get(client, account, "/api/v1/dashboard"))["cards"]
    assert [card["metric"] for card in cards] == [*BILLING_CARDS, "revenue", "sessions"]
    by_metric = {card["metric"]: card for card in cards}
    # no revenue last month: no change
    _check_card(by_metric["revenue"], (50000, None, None, None, [None] * 9 + [40000, None, 50000]))
    # -300 * 100 / 1200 = -25
    _check_card(by_metric["sessions"], (900, 1200, -300, -25, [None] * 10 + [1200, 900]))
    _check_card(by_metric["mrr"], EXPECTED_CARDS["mrr"])


# ----------------------------------------------------------------------------------------------------------- series


async def _series(client: httpx.AsyncClient, account: Account, metric: str, **params: str) -> list[tuple[str, Any]]:
    data = await _get(client, account, "/api/v1/dashboard/series", metric=metric, **params)
    return [(point["day"], point["value"]) for point in data["points"]]


async def test_daily_mrr_by_day_week_and_month(client: httpx.AsyncClient, billing: Billing) -> None:
    account, today = billing.account, billing.today
    upgrade = billing.month(-1)  # B's expansion, E's start, F's return: MRR 18000 → 26500
    start, end = upgrade - dt.timedelta(days=3), upgrade + dt.timedelta(days=2)
    by_day = await _series(client, account, "mrr", grain="day", start=start.isoformat(), end=end.isoformat())
    assert by_day == [
        ((start + dt.timedelta(days=offset)).isoformat(), 18000 if offset < 3 else 26500) for offset in range(6)
    ]
    assert [value for _, value in by_day] == [billing.mrr_on(D.fromisoformat(day)) for day, _ in by_day]

    # a week is its last day's value (Sunday, or the range's end), labelled by its Monday
    start, end = upgrade - dt.timedelta(days=10), upgrade + dt.timedelta(days=10)
    weeks = []
    week = _week_start(start)
    while week <= end:
        weeks.append((week.isoformat(), billing.mrr_on(min(week + dt.timedelta(days=6), end))))
        week += dt.timedelta(weeks=1)
    assert await _series(client, account, "mrr", grain="week", start=start.isoformat(), end=end.isoformat()) == weeks
    assert len(weeks) in (3, 4) and {value for _, value in weeks} <= {18000, 26500}

    # a month is its last day's value: this month's is today's
    by_month = await _series(
        client, account, "mrr", grain="month", start=billing.month(-3).isoformat(), end=today.isoformat()
    )
    assert by_month == [(billing.month(month).isoformat(), MRR[month]) for month in (-3, -2, -1, 0)]
    assert by_month[-1][1] == billing.mrr_on(today)
    assert [value for _, value in by_month[:-1]] == [
        billing.mrr_on(billing.month(month + 1) - dt.timedelta(days=1)) for month in (-3, -2, -1)
    ]

    # without a grain a daily metric comes by day, the range defaulting to the year to today
    data = await _get(client, account, "/api/v1/dashboard/series", metric="mrr")
    assert data["grain"] == "day"
    assert data["points"][-1] == {"day": today.isoformat(), "value": 22500}
    assert data["points"][0]["day"] == (today - dt.timedelta(days=365)).isoformat()


async def test_monthly_metrics_come_by_month(client: httpx.AsyncClient, billing: Billing) -> None:
    account = billing.account
    start, end = billing.month(-3).isoformat(), billing.today.isoformat()
    assert await _series(client, account, "customers", grain="month", start=start, end=end) == [
        (billing.month(month).isoformat(), CUSTOMERS[month]) for month in (-3, -2, -1, 0)
    ]
    data = await _get(client, account, "/api/v1/dashboard/series", metric="customers", start=start, end=end)
    assert data["grain"] == "month" and [point["value"] for point in data["points"]] == [2, 3, 5, 5]
    # a start in the middle of a month takes that month
    mid = (billing.month(-2) + dt.timedelta(days=14)).isoformat()
    assert await _series(client, account, "arr", grain="month", start=mid, end=end) == [
        (billing.month(month).isoformat(), 12 * MRR[month]) for month in (-2, -1, 0)
    ]
    for grain in ("day", "week"):
        response = await client.get(
            "/api/v1/dashboard/series", headers=account.headers, params={"metric": "customers", "grain": grain}
        )
        assert response.status_code == 422, response.text
        assert _fields(response) == ["query.grain"]


def _sessions(first: dt.date) -> dict[dt.date, int]:
    """Ten weeks of sessions with a weekly pattern and a week-to-week wobble; a spike of +300 in the second week
    (on day 10) and an outlier of +200 on day 65."""
    pattern = [100, 120, 130, 125, 110, 60, 50]
    wobble = [0, 3, -2, 4, -3, 1, -1, 2, -4, 3]
    spikes = {10: 300, 65: 200}
    return {
        first + dt.timedelta(days=offset): pattern[offset % 7] + wobble[offset // 7] + spikes.get(offset, 0)
        for offset in range(70)
    }


def _traffic_points(sessions: dict[dt.date, int], monthly: dict[dt.date, int]) -> list[Point]:
    first = min(sessions)
    new_users = {first + dt.timedelta(days=offset): 20 for offset in range(70)}
    new_users[first + dt.timedelta(days=5)] = 99  # a departure without history
    new_users[first + dt.timedelta(days=66)] = 26  # a departure from eight flat weeks
    return [
        *(Point("sessions", "day", day, value) for day, value in sessions.items()),
        *(Point("sessions", "month", month, value) for month, value in monthly.items()),
        Point("sessions", "day", first, 7, dims="channel=Organic Search"),
        *(Point("new_users", "day", day, value) for day, value in new_users.items()),
        *(Point("conversion_rate", "day", day, 2.5) for day in sessions),
    ]


@dataclass
class Traffic:
    account: Account
    first: dt.date
    sessions: dict[dt.date, int]
    monthly: dict[dt.date, int]


@pytest.fixture
async def traffic(founder: Account, database: Database) -> Traffic:
    """Sessions (by day and by month), new users and a conversion rate (by day) for the 70 days to today."""
    today = _utc_today()
    first = today - dt.timedelta(days=69)
    sessions = _sessions(first)
    monthly: dict[dt.date, int] = defaultdict(int)
    for day, value in sessions.items():
        monthly[day.replace(day=1)] += value
    # the first month's total also counts its days before the daily points start: the stored monthly point is
    # what a month is, not a sum of the days kept
    monthly[first.replace(day=1)] += 1000
    await _write_points(database, founder, "traffic", _traffic_points(sessions, monthly))
    return Traffic(founder, first, sessions, dict(monthly))


async def test_a_daily_flow_by_week_is_the_sum_of_its_days_and_by_month_the_stored_month(
    client: httpx.AsyncClient, traffic: Traffic
) -> None:
    account, first, today = traffic.account, traffic.first, max(traffic.sessions)
    weeks: dict[dt.date, int] = defaultdict(int)
    for day, value in traffic.sessions.items():
        weeks[_week_start(day)] += value
    assert await _series(client, account, "sessions", grain="week", start=first.isoformat(), end=today.isoformat()) == [
        (week.isoformat(), total) for week, total in sorted(weeks.items())
    ]

    # a range starting mid-week takes the whole week; its end cuts the last one
    start, end = first + dt.timedelta(days=30), first + dt.timedelta(days=45)
    cut: dict[dt.date, int] = defaultdict(int)
    for day, value in traffic.sessions.items():
        if _week_start(start) <= day <= end:
            cut[_week_start(day)] += value
    assert await _series(client, account, "sessions", grain="week", start=start.isoformat(), end=end.isoformat()) == [
        (week.isoformat(), total) for week, total in sorted(cut.items())
    ]

    assert await _series(
        client, account, "sessions", grain="month", start=first.isoformat(), end=today.isoformat()
    ) == [(month.isoformat(), total) for month, total in sorted(traffic.monthly.items())]
    by_day = await _series(
        client,
        account,
        "sessions",
        start=(first + dt.timedelta(days=64)).isoformat(),
        end=(first + dt.timedelta(days=66)).isoformat(),
    )
    assert by_day == [
        ((first + dt.timedelta(days=64)).isoformat(), 120 + 3),
        ((first + dt.timedelta(days=65)).isoformat(), 130 + 3 + 200),
        ((first + dt.timedelta(days=66)).isoformat(), 125 + 3),
    ]


async def test_a_daily_rate_has_no_weeks(client: httpx.AsyncClient, traffic: Traffic) -> None:
    # a rate does not add up over days; with no monthly points of its own it has no months either
    for grain in ("week", "month"):
        response = await client.get(
            "/api/v1/dashboard/series",
            headers=traffic.account.headers,
            params={"metric": "conversion_rate", "grain": grain},
        )
        assert response.status_code == 422, response.text
        assert _fields(response) == ["query.grain"]
        assert response.json()["error"]["message"] == "conversion_rate does not add up over days: ask for it by day"
    day = traffic.first.isoformat()
    assert await _series(client, traffic.account, "conversion_rate", grain="day", start=day, end=day) == [(day, 2.5)]


async def test_series_errors(client: httpx.AsyncClient, billing: Billing) -> None:
    headers = billing.account.headers

    async def series(**params: str) -> httpx.Response:
        return await client.get("/api/v1/dashboard/series", headers=headers, params={"metric": "mrr", **params})

    unknown = await series(metric="sessions")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_metric"
    for params, fields in [
        ({"start": "2026-02-30"}, ["query.start"]),
        ({"end": "yesterday"}, ["query.end"]),
        ({"start": "2026-01-01", "end": "2026-13-01"}, ["query.end"]),
        ({"start": "2026-03-02", "end": "2026-03-01"}, ["query.start"]),
        ({"start": "2026-01-01T00:00"}, ["query.start"]),
        ({"grain": "year"}, ["query.grain"]),
        ({"metric": "MRR; drop"}, ["query.metric"]),
    ]:
        response = await series(**params)
        assert response.status_code == 422, (params, response.text)
        assert _fields(response) == fields, params


# -------------------------------------------------------------------------------------------- waterfall and cohorts


async def test_waterfall_start_plus_movements_is_the_end(client: httpx.AsyncClient, billing: Billing) -> None:
    account = billing.account
    months = await _get(
        client,
        account,
        "/api/v1/dashboard/waterfall",
        start=billing.month(-3).isoformat(),
        end=billing.today.isoformat(),
    )
    zero = {"new": 0, "expansion": 0, "reactivation": 0, "contraction": 0, "churn": 0, "fx": 0}
    assert months == [
        {"month": billing.month(-3).isoformat(), **zero, "start": 10000, "new": 1500, "end": 11500},  # F
        {
            "month": billing.month(-2).isoformat(),
            **zero,
            "start": 11500,
            "new": 5000 + 3000,
            "churn": -1500,
            "end": 18000,
        },  # B and C new, F gone
        {
            "month": billing.month(-1).isoformat(),
            **zero,
            "start": 18000,
            "new": 4000,
            "expansion": 3000,
            "reactivation": 1500,
            "end": 26500,
        },  # E new, B up, F back
        {
            "month": billing.month(0).isoformat(),
            **zero,
            "start": 26500,
            "new": 2000,
            "contraction": -3000,
            "churn": -3000,
            "end": 22500,
        },  # D new, E down, C gone
    ]

    # every month from the first, and none past this one even when the range goes on
    months = await _get(
        client,
        account,
        "/api/v1/dashboard/waterfall",
        start=billing.month(-14).isoformat(),
        end=(billing.today + dt.timedelta(days=400)).isoformat(),
    )
    assert [month["month"] for month in months] == [billing.month(month).isoformat() for month in range(-14, 1)]
    for month in months:
        assert month["start"] + sum(month[kind] for kind in zero) == month["end"], month
    for before, after in itertools.pairwise(months):
        assert after["start"] == before["end"]
    assert [month["end"] for month in months] == [0, *(MRR[month] for month in range(-13, 1))]


async def test_cohorts(client: httpx.AsyncClient, billing: Billing) -> None:
    rows = await _get(client, billing.account, "/api/v1/dashboard/cohorts")
    # cohort (month of the customers' `new`), k, customers with MRR at the end of cohort + k, their MRR,
    # NRR = that MRR / the cohort's first MRR, GRR = sum of min(MRR then, first MRR) per customer / first MRR
    expected = [
        *((-13, k, 1, 10000, 100, 100) for k in range(14)),  # A
        (-3, 0, 1, 1500, 100, 100),
        (-3, 1, 0, 0, 0, 0),
        (-3, 2, 1, 1500, 100, 100),  # F: gone, then back
        (-3, 3, 1, 1500, 100, 100),
        (-2, 0, 2, 8000, 100, 100),  # B 5000 + C 3000
        (-2, 1, 2, 11000, 137.5, 100),  # B 8000 + C 3000; GRR min(8000, 5000) + 3000
        (-2, 2, 1, 8000, 100, 62.5),  # B alone; GRR 5000 / 8000
        (-1, 0, 1, 4000, 100, 100),
        (-1, 1, 1, 1000, 25, 25),  # E
        (0, 0, 1, 2000, 100, 100),  # D
    ]
    assert rows == [
        {
            "cohort": billing.month(cohort).isoformat(),
            "k": k,
            "customers": customers,
            "mrr": mrr,
            "nrr": nrr,
            "grr": grr,
        }
        for cohort, k, customers, mrr, nrr, grr in expected
    ]


# ------------------------------------------------------------------------------------------------------------ goals


async def _create_goal(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/dashboard/goals", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    goal: dict[str, Any] = amounts(response.json()["data"])
    return goal


async def test_goal_status_and_progress(client: httpx.AsyncClient, billing: Billing) -> None:
    account, today = billing.account, billing.today
    start = billing.month(-2)  # MRR on its 1st: A 10000 + B 5000 + C 3000 (F's period ended that day)
    start_value, current = 18000, 22500
    assert billing.mrr_on(start) == start_value and billing.mrr_on(today) == current
    elapsed = (today - start).days

    def line_today(target: int, target_date: dt.date) -> int:
        """Where the straight line from the start value to the target is today, in whole cents (half up)."""
        span = (target_date - start).days
        exact = Decimal(start_value) + Decimal(target - start_value) * min(elapsed, span) / span
        return int(exact.quantize(Decimal("0.0001"), ROUND_HALF_UP).quantize(Decimal(1), ROUND_HALF_UP))

    cases = [  # target, target date, status, progress
        (20000, today + dt.timedelta(days=30), "achieved", 225.0),  # 4500 / 2000
        (40000, today + dt.timedelta(days=3650), "on_track", 20.45),  # 4500 / 22000 = 20.4545
        (40000, today + dt.timedelta(days=10), "at_risk", 20.45),
        (40000, today - dt.timedelta(days=1), "missed", 20.45),
    ]
    for target, target_date, status, progress in cases:
        goal = await _create_goal(
            client,
            account,
            metric="mrr",
            target=target,
            targetDate=target_date.isoformat(),
            startDate=start.isoformat(),
        )
        assert goal["status"] == status, (goal, status)
        assert goal["progressPercent"] == progress
        assert goal["startValue"] == start_value and goal["current"] == current
        assert goal["expected"] == line_today(target, target_date)
        assert (goal["startDate"], goal["targetDate"], goal["target"]) == (
            start.isoformat(),
            target_date.isoformat(),
            target,
        )
    on_track = line_today(40000, today + dt.timedelta(days=3650))
    at_risk = line_today(40000, today + dt.timedelta(days=10))
    assert on_track <= current < at_risk  # the line is behind today's MRR, or ahead of it
    assert line_today(40000, today - dt.timedelta(days=1)) == 40000

    nothing = await _create_goal(
        client, account, metric="won_amount", target=100, targetDate=(today + dt.timedelta(days=31)).isoformat()
    )
    assert (
        nothing["status"],
        nothing["startValue"],
        nothing["current"],
        nothing["expected"],
        nothing["progressPercent"],
    ) == ("no_data", None, None, None, None)

    listed = await _get(client, account, "/api/v1/dashboard/goals")
    assert [(goal["status"], goal["targetDate"]) for goal in listed] == sorted(
        [(status, target_date.isoformat()) for _, target_date, status, _ in cases]
        + [("no_data", (today + dt.timedelta(days=31)).isoformat())],
        key=lambda pair: pair[1],
    )


async def test_a_falling_goal(client: httpx.AsyncClient, billing: Billing) -> None:
    # net MRR churn rate: -25 last month, 22.6415 this month; to be brought down to 10 by the end of next month
    goal = await _create_goal(
        client,
        billing.account,
        metric="net_mrr_churn_rate",
        target=10,
        targetDate=billing.month(2).isoformat(),
        startDate=billing.month(0).isoformat(),
    )
    # from 22.6415 (this month's point, dated the 1st) to 10, no way yet: (22.6415 - 22.6415) / -12.6415 = 0 %
    assert (goal["startValue"], goal["current"], goal["progressPercent"]) == (22.6415, 22.6415, 0)
    elapsed, span = (billing.today - billing.month(0)).days, (billing.month(2) - billing.month(0)).days
    expected = round(22.6415 + (10 - 22.6415) * elapsed / span, 4)
    assert goal["expected"] == pytest.approx(expected, abs=1e-4)
    assert goal["status"] == ("on_track" if elapsed == 0 else "at_risk")


async def test_a_goal_on_a_daily_metric_reads_its_days(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    today = _utc_today()
    last_month = _shift(today.replace(day=1), -1)
    before = _shift(last_month, -1)
    # revenue by day (the 20th two months ago, the 10th of last month) and by month (the month's total, dated the
    # 1st), as a store writes it
    await _write_points(
        database,
        founder,
        "commerce",
        [
            Point("revenue", "day", before + dt.timedelta(days=19), 100),
            Point("revenue", "month", before, 100),
            Point("revenue", "day", last_month + dt.timedelta(days=9), 300),
            Point("revenue", "month", last_month, 300),
        ],
    )
    start, target_date = last_month + dt.timedelta(days=4), today + dt.timedelta(days=30)
    goal = await _create_goal(
        client, founder, metric="revenue", target=500, startDate=start.isoformat(), targetDate=target_date.isoformat()
    )
    # on the 5th of last month the latest day is the 20th before it (100), not last month's total, which holds a
    # later day; today's value is the 10th of last month's (300)
    assert (goal["startValue"], goal["current"], goal["progressPercent"]) == (100, 300, 50)  # 200 / 400
    expected = Decimal(100) + Decimal(400) * (today - start).days / (target_date - start).days
    assert goal["expected"] == int(expected.quantize(Decimal(1), ROUND_HALF_UP))  # revenue is money: whole cents
    assert goal["status"] == ("on_track" if expected <= 300 else "at_risk")


async def test_goal_lifecycle(client: httpx.AsyncClient, billing: Billing, other_founder: Account) -> None:
    account, today = billing.account, billing.today
    headers = account.headers
    target_date = (today + dt.timedelta(days=60)).isoformat()
    default_start = await _create_goal(client, account, metric="mrr", target=30000, targetDate=target_date)
    # the start defaults to today: no progress yet, and the line starts at today's value
    assert default_start["startDate"] == today.isoformat()
    assert (
        default_start["startValue"],
        default_start["current"],
        default_start["expected"],
        default_start["progressPercent"],
        default_start["status"],
    ) == (22500, 22500, 22500, 0, "on_track")

    for body in (
        {"metric": "mrr", "target": 1, "targetDate": today.isoformat()},
        {"metric": "mrr", "target": 1, "targetDate": "2026-01-01", "startDate": "2026-01-01"},
        {"metric": "mrr", "target": 1, "targetDate": "2025-12-31", "startDate": "2026-01-01"},
    ):
        response = await client.post("/api/v1/dashboard/goals", headers=headers, json=body)
        assert response.status_code == 422, response.text
        assert _fields(response) == ["body.targetDate"]
    response = await client.post("/api/v1/dashboard/goals", headers=headers, json={"metric": "mrr"})
    assert response.status_code == 422 and set(_fields(response)) == {"body.target", "body.targetDate"}

    # from 18000 on the 1st of two months ago to 40000 in ten days: at risk
    goal = await _create_goal(
        client,
        account,
        metric="mrr",
        target=40000,
        startDate=billing.month(-2).isoformat(),
        targetDate=(today + dt.timedelta(days=10)).isoformat(),
    )
    assert goal["status"] == "at_risk"
    path = f"/api/v1/dashboard/goals/{goal['id']}"
    assert await _get(client, account, path) == goal
    assert await _get(client, account, "/api/v1/dashboard/goals") == [goal, default_start]

    patched = await client.patch(path, headers=headers, json={"target": 20000})
    assert patched.status_code == 200, patched.text
    # (22500 - 18000) / (20000 - 18000)
    changed = amounts(patched.json()["data"])
    assert (changed["target"], changed["status"], changed["progressPercent"]) == (20000, "achieved", 225)
    moved = (today + dt.timedelta(days=90)).isoformat()
    patched = await client.patch(path, headers=headers, json={"targetDate": moved})
    assert patched.status_code == 200, patched.text
    changed = amounts(patched.json()["data"])
    assert (changed["targetDate"], changed["target"]) == (moved, 20000)
    too_early = await client.patch(path, headers=headers, json={"targetDate": billing.month(-2).isoformat()})
    assert too_early.status_code == 422 and _fields(too_early) == ["body.targetDate"]
    assert await _get(client, account, path) == changed

    attempts: list[tuple[str, dict[str, Any] | None]] = [("GET", None), ("PATCH", {"target": 1}), ("DELETE", None)]
    for method, payload in attempts:
        theirs = await client.request(method, path, headers=other_founder.headers, json=payload)
        assert theirs.status_code == 404, (method, theirs.text)
    assert await _get(client, other_founder, "/api/v1/dashboard/goals") == []

    deleted = await client.delete(path, headers=headers)
    assert deleted.status_code == 204 and deleted.content == b""
    assert (await client.get(path, headers=headers)).status_code == 404
    assert (await client.delete(path, headers=headers)).status_code == 404
    assert await _get(client, account, "/api/v1/dashboard/goals") == [default_start]
    assert (await client.get(f"/api/v1/dashboard/goals/{uuid.uuid4()}", headers=headers)).status_code == 404


# -------------------------------------------------------------------------------------------------------- anomalies


async def _anomalies(
    client: httpx.AsyncClient, account: Account, metric: str, start: dt.date, end: dt.date
) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = await _get(
        client, account, "/api/v1/dashboard/anomalies", metric=metric, start=start.isoformat(), end=end.isoformat()
    )
    return data


async def test_a_spike_against_its_weekday_is_flagged(client: httpx.AsyncClient, traffic: Traffic) -> None:
    account, first = traffic.account, traffic.first
    today = max(traffic.sessions)
    # day 65 (the third day of the pattern, 130) against days 58, 51, …, 9: 130 + the wobble of weeks 8 … 1
    history = [130 + wobble for wobble in (-4, 2, -1, 1, -3, 4, -2, 3)]
    assert history == [traffic.sessions[first + dt.timedelta(days=65 - 7 * week)] for week in range(1, 9)]
    # sorted 126 127 128 129 131 132 133 134: median 130; |deviations| 1 1 2 2 3 3 4 4: MAD 2.5
    # 0.6745 * (333 - 130) / 2.5 = 54.7694. Day 10 (+300) has one week before it, so it is not judged.
    assert await _anomalies(client, account, "sessions", first, today) == [
        {
            "day": (first + dt.timedelta(days=65)).isoformat(),
            "value": 333,
            "baseline": 130,
            "mad": 2.5,
            "score": 54.77,
            "direction": "up",
        }
    ]
    # a range after the spike: the eight weeks before its start are still its history
    assert await _anomalies(client, account, "sessions", first + dt.timedelta(days=66), today) == []


async def test_a_departure_from_a_flat_history_is_flagged(client: httpx.AsyncClient, traffic: Traffic) -> None:
    account, first = traffic.account, traffic.first
    # 20 new users a day; day 5 (99) has no history, day 66 (26) has eight weeks of 20 before it (MAD 0). Day 5 in
    # the history of days 12, 19, … leaves their median at 20 and their MAD at 0: 20 is no departure.
    assert await _anomalies(client, account, "new_users", first, max(traffic.sessions)) == [
        {
            "day": (first + dt.timedelta(days=66)).isoformat(),
            "value": 26,
            "baseline": 20,
            "mad": 0,
            "score": None,
            "direction": "up",
        }
    ]


async def test_mrr_anomalies_are_in_its_daily_change(client: httpx.AsyncClient, billing: Billing) -> None:
    # MRR changes on the 1st of the months alone (net: -2: 8000 - 1500, -1: 8500, this month: -4000); eight weeks
    # hold at most one other 1st, so every weekday's history has a median and MAD of 0 and each 1st departs from it
    changes = {billing.month(-2): 6500, billing.month(-1): 8500, billing.month(0): -4000}
    assert await _anomalies(client, billing.account, "mrr", billing.month(-2), billing.today) == [
        {
            "day": day.isoformat(),
            "value": change,
            "baseline": 0,
            "mad": 0,
            "score": None,
            "direction": "up" if change > 0 else "down",
        }
        for day, change in changes.items()
    ]
    monthly = await client.get(
        "/api/v1/dashboard/anomalies", headers=billing.account.headers, params={"metric": "customers"}
    )
    assert monthly.status_code == 422 and _fields(monthly) == ["query.metric"]
    unknown = await client.get(
        "/api/v1/dashboard/anomalies", headers=billing.account.headers, params={"metric": "sessions"}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_metric"


# ---------------------------------------------------------------------------------------------------------- explain


async def test_explain_a_day(client: httpx.AsyncClient, billing: Billing) -> None:
    account = billing.account
    day = billing.month(0)

    def lines(*ids: tuple[str, int, int]) -> list[dict[str, Any]]:
        return [
            {
                "externalId": _line_id(customer, month),
                "invoiceExternalId": f"in_{_line_id(customer, month)}",
                "subscriptionExternalId": subscription,
                "kind": "recurring",
                "proration": False,
                "periodStart": _midnight(billing.month(month)),
                "periodEnd": _midnight(billing.month(month + 1)),
                "amount": price,
                "netAmount": price,
                "invoiceStatus": "paid",
            }
            for customer, month, price in ids
            for subscription in [f"sub_{customer[-1]}"]
        ]

    def movement(kind: str, amount: int, customer: str, *ids: tuple[str, int, int]) -> dict[str, Any]:
        return {"day": day.isoformat(), "kind": kind, "amount": amount, "customer": customer, "lines": lines(*ids)}

    def shown(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in found:
            assert item["customer"]["name"] is None and uuid.UUID(item["customer"]["id"])
            item["customer"] = item["customer"]["externalId"]
            for entry in item["lines"]:
                entry["periodStart"] = dt.datetime.fromisoformat(entry["periodStart"])
                entry["periodEnd"] = dt.datetime.fromisoformat(entry["periodEnd"])
        return found

    # largest first (ties by customer): C's last period ended; E's period ended and a cheaper one began; D began
    churn = movement("churn", -3000, "cus_c", ("cus_c", -1, 3000))
    contraction = movement("contraction", -3000, "cus_e", ("cus_e", -1, 4000), ("cus_e", 0, 1000))
    new = movement("new", 2000, "cus_d", ("cus_d", 0, 2000))
    assert shown(
        await _get(client, account, "/api/v1/metrics/explain", start=day.isoformat(), end=day.isoformat())
    ) == [churn, contraction, new]
    assert shown(await _get(client, account, "/api/v1/metrics/explain", start=day.isoformat())) == [
        churn,
        contraction,
        new,
    ]  # the end defaults to the start
    assert shown(
        await _get(client, account, "/api/v1/metrics/explain", start=day.isoformat(), end=day.isoformat(), kind="new")
    ) == [new]
    # over two months, only expansions: B's upgrade on the 1st of last month
    expansions = await _get(
        client,
        account,
        "/api/v1/metrics/explain",
        start=billing.month(-1).isoformat(),
        end=billing.today.isoformat(),
        kind="expansion",
    )
    assert [
        (item["day"], item["amount"], item["customer"]["externalId"], [entry["externalId"] for entry in item["lines"]])
        for item in expansions
    ] == [(billing.month(-1).isoformat(), 3000, "cus_b", [_line_id("cus_b", -2), _line_id("cus_b", -1)])]
    quiet = (day + dt.timedelta(days=1)).isoformat()
    assert await _get(client, account, "/api/v1/metrics/explain", start=quiet, end=quiet) == []
    for params, field in (({"kind": "upgrade"}, "query.kind"), ({"start": "14th"}, "query.start")):
        response = await client.get("/api/v1/metrics/explain", headers=account.headers, params=params)
        assert response.status_code == 422 and _fields(response) == [field], response.text


# ------------------------------------------------------------------------------------------------------------ roles


async def test_every_role_but_investor_sees_everything(client: httpx.AsyncClient, billing: Billing) -> None:
    founder = billing.account
    month = billing.month(0).isoformat()
    team = [founder, *[await add_member(client, founder, role) for role in ("admin", "member", "analyst")]]
    for account in team:
        cards = (await _get(client, account, "/api/v1/dashboard"))["cards"]
        assert [card["metric"] for card in cards] == BILLING_CARDS, account.role
        for card in cards:
            _check_card(card, EXPECTED_CARDS[card["metric"]])
        assert (await _series(client, account, "arr", grain="month", start=month))[-1] == (month, 270000)
        waterfall = await _get(client, account, "/api/v1/dashboard/waterfall", start=month)
        assert [(row["start"], row["end"]) for row in waterfall] == [(26500, 22500)]
        assert len(await _get(client, account, "/api/v1/dashboard/cohorts")) == 14 + 4 + 3 + 2 + 1
        assert len(await _get(client, account, "/api/v1/metrics/explain", start=month)) == 3
        assert len(await _get(client, account, "/api/v1/dashboard/anomalies", metric="mrr", start=month)) == 1


async def test_investors_see_only_the_shared_metrics(client: httpx.AsyncClient, billing: Billing) -> None:
    founder = billing.account
    investor = await add_member(client, founder, "investor")
    member = await add_member(client, founder, "member")
    mrr_goal = await _create_goal(
        client, founder, metric="mrr", target=30000, targetDate=(billing.today + dt.timedelta(days=30)).isoformat()
    )
    arr_goal = await _create_goal(
        client, founder, metric="arr", target=400000, targetDate=(billing.today + dt.timedelta(days=30)).isoformat()
    )
    # nothing shared yet
    assert (await _get(client, investor, "/api/v1/dashboard"))["cards"] == []

    refused = await client.patch("/api/v1/metrics/settings", headers=member.headers, json={"investorMetrics": ["mrr"]})
    assert refused.status_code == 403, refused.text
    shared = await client.patch(
        "/api/v1/metrics/settings", headers=founder.headers, json={"investorMetrics": ["mrr", "customers"]}
    )
    assert shared.status_code == 200, shared.text
    assert shared.json()["data"]["investorMetrics"] == ["mrr", "customers"]

    dashboard = await _get(client, investor, "/api/v1/dashboard")
    assert (dashboard["currency"], dashboard["asOf"], dashboard["problem"]) == ("USD", billing.today.isoformat(), None)
    assert [card["metric"] for card in dashboard["cards"]] == ["mrr", "customers"]
    for card in dashboard["cards"]:
        _check_card(card, EXPECTED_CARDS[card["metric"]])
    assert dashboard["cards"][0]["goal"]["id"] == mrr_goal["id"]
    month = billing.month(0).isoformat()
    assert await _series(client, investor, "mrr", start=billing.today.isoformat()) == [
        (billing.today.isoformat(), 22500)
    ]
    assert await _series(client, investor, "customers", grain="month", start=month) == [(month, 5)]
    assert [goal["id"] for goal in await _get(client, investor, "/api/v1/dashboard/goals")] == [mrr_goal["id"]]
    assert (await _get(client, investor, f"/api/v1/dashboard/goals/{mrr_goal['id']}"))["current"] == 22500

    for path, params in (
        ("/api/v1/dashboard/series", {"metric": "arr"}),
        ("/api/v1/dashboard/series", {"metric": "nothing_at_all"}),
        ("/api/v1/dashboard/anomalies", {"metric": "net_new"}),
        (f"/api/v1/dashboard/goals/{arr_goal['id']}", {}),
    ):
        hidden = await client.get(path, headers=investor.headers, params=params)
        assert hidden.status_code == 404, (path, hidden.text)
        assert hidden.json()["error"]["code"] == "metric_not_shared", path
    for path in (
        "/api/v1/dashboard/waterfall",
        "/api/v1/dashboard/cohorts",
        "/api/v1/metrics/explain",
        "/api/v1/metrics/settings",
    ):
        forbidden = await client.get(path, headers=investor.headers)
        assert forbidden.status_code == 403, (path, forbidden.text)
    for method, path, body in (
        ("POST", "/api/v1/dashboard/export", {"metric": "mrr"}),
        ("POST", "/api/v1/dashboard/goals", {"metric": "mrr", "target": 1, "targetDate": "2099-01-01"}),
        ("PATCH", "/api/v1/metrics/settings", {"investorMetrics": ["arr"]}),
    ):
        forbidden = await client.request(method, path, headers=investor.headers, json=body)
        assert forbidden.status_code == 403, (path, forbidden.text)


# -------------------------------------------------------------------------------------------------- exchange rates


async def test_a_missing_rate_is_named_on_the_dashboard_until_it_is_put(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    this_month = _utc_today().replace(day=1)
    period = (_midnight(this_month), _midnight(_shift(this_month, 1)))
    lines = [
        line("cus_usd", *period, 5000, subscription="sub_usd", item="si_usd"),
        line("cus_eur", *period, 10000, currency="EUR", subscription="sub_eur", item="si_eur"),
    ]
    await _store_and_recompute(database, founder, await _integration(client, founder), lines)
    dashboard = await _get(client, founder, "/api/v1/dashboard")
    assert "EUR" in dashboard["problem"] and this_month.isoformat() in dashboard["problem"]
    assert "PUT /api/v1/metrics/fx-rates" in dashboard["problem"]
    assert {card["value"] for card in dashboard["cards"]} == {None}  # no number rather than a wrong one

    put = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={"rates": [{"currency": "EUR", "day": this_month.isoformat(), "perUsd": "0.8"}]},
    )
    assert put.status_code == 200 and put.json()["data"] == 1, put.text
    await _recompute(database, founder)
    dashboard = await _get(client, founder, "/api/v1/dashboard")
    assert dashboard["problem"] is None
    cards = {card["metric"]: card for card in dashboard["cards"]}
    assert (cards["mrr"]["value"], cards["customers"]["value"]) == (5000 + 12500, 2)  # round(10000 / 0.8)


async def test_an_fx_movement_in_the_waterfall_and_the_anomalies(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    this_month = _utc_today().replace(day=1)
    last_month = _shift(this_month, -1)
    rates = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=founder.headers,
        json={
            "rates": [
                {"currency": "EUR", "day": last_month.isoformat(), "perUsd": "0.9"},
                {"currency": "EUR", "day": this_month.isoformat(), "perUsd": "0.8"},
            ]
        },
    )
    assert rates.status_code == 200, rates.text
    lines = [
        line(
            "cus_eur",
            _midnight(month),
            _midnight(_shift(month, 1)),
            10000,
            currency="EUR",
            subscription="sub_eur",
            item="si_eur",
        )
        for month in (last_month, this_month)
    ]
    lines.append(
        line(
            "cus_usd",
            _midnight(this_month),
            _midnight(_shift(this_month, 1)),
            5000,
            subscription="sub_usd",
            item="si_usd",
        )
    )
    await _store_and_recompute(database, founder, await _integration(client, founder), lines)

    # €100 is round(10000 / 0.9) = 11111 last month and round(10000 / 0.8) = 12500 once renewed: FX +1389
    [previous, current] = await _get(client, founder, "/api/v1/dashboard/waterfall", start=last_month.isoformat())
    assert (previous["start"], previous["new"], previous["end"]) == (0, 11111, 11111)
    assert (current["start"], current["new"], current["fx"], current["expansion"], current["end"]) == (
        11111,
        5000,
        1389,
        0,
        17500,
    )
    # MRR's daily change counts the FX movement, net new MRR does not
    for metric, change in (("mrr", 5000 + 1389), ("net_new", 5000)):
        found = await _anomalies(client, founder, metric, last_month, _utc_today())
        assert [(item["day"], item["value"]) for item in found] == [
            (last_month.isoformat(), 11111),
            (this_month.isoformat(), change),
        ], metric


# ----------------------------------------------------------------------------------------------------------- export


@pytest.fixture(scope="module")
def worker(database_url: str, settings: Settings) -> Iterator[Workers]:
    """A real worker process for the export jobs (started after the app's settings, whose object store it uses)."""
    workers = Workers(database_url)
    yield workers
    stop_worker(workers.process)


# ------------------------------------------------------------------------------------------------------------ money


async def _raw(client: httpx.AsyncClient, account: Account, path: str, **params: str) -> Any:
    response = await client.get(path, headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD", "exponent": 2}


async def test_money_is_integer_minor_units_with_its_currency_and_exponent(
    client: httpx.AsyncClient, billing: Billing, database: Database
) -> None:
    """Every amount a metrics response carries, as Stripe keeps money; counts and rates stay plain numbers."""
    account, today = billing.account, billing.today
    month = billing.month(0).isoformat()
    goal = await client.post(
        "/api/v1/dashboard/goals",
        headers=account.headers,
        json={"metric": "mrr", "target": 30000, "targetDate": (today + dt.timedelta(days=60)).isoformat()},
    )
    assert goal.status_code == 201 and goal.json()["data"]["target"] == _usd(30000), goal.text
    spend = await client.put(
        "/api/v1/metrics/spend", headers=account.headers, json={"entries": [{"month": month, "amount": 150000}]}
    )
    assert spend.status_code == 200 and spend.json()["data"] == [
        {"month": month, "channel": "all", "amount": _usd(150000)}
    ], spend.text

    cards = {card["metric"]: card for card in (await _raw(client, account, "/api/v1/dashboard"))["cards"]}
    mrr = cards["mrr"]
    assert (mrr["value"], mrr["previous"], mrr["change"]) == (_usd(22500), _usd(26500), _usd(-4000))
    assert mrr["sparkline"][-1] == _usd(22500) and mrr["changePercent"] == -15.09
    assert mrr["goal"]["target"] == _usd(30000) and mrr["goal"]["current"] == _usd(22500)
    assert (cards["customers"]["value"], cards["nrr"]["value"]) == (5, 100)  # a count and a rate: numbers

    series = await _raw(client, account, "/api/v1/dashboard/series", metric="mrr", start=today.isoformat())
    assert series["points"] == [{"day": today.isoformat(), "value": _usd(22500)}]
    customers = await _raw(client, account, "/api/v1/dashboard/series", metric="customers", grain="month", start=month)
    assert customers["points"] == [{"day": month, "value": 5}]
    waterfall = await _raw(client, account, "/api/v1/dashboard/waterfall", start=month)
    assert waterfall == [
        {
            "month": month,
            "start": _usd(26500),
            "new": _usd(2000),
            "expansion": _usd(0),
            "reactivation": _usd(0),
            "contraction": _usd(-3000),
            "churn": _usd(-3000),
            "fx": _usd(0),
            "end": _usd(22500),
        }
    ]
    cohort = next(row for row in await _raw(client, account, "/api/v1/dashboard/cohorts") if row["cohort"] == month)
    assert cohort["mrr"] == _usd(2000)  # D, the month's only new customer
    anomalies = await _raw(client, account, "/api/v1/dashboard/anomalies", metric="mrr", start=month, end=month)
    assert [(item["value"], item["baseline"], item["mad"]) for item in anomalies] == [(_usd(-4000), _usd(0), _usd(0))]
    explained = await _raw(client, account, "/api/v1/metrics/explain", start=month, kind="new")
    assert explained[0]["amount"] == _usd(2000)
    assert [(line["amount"], line["netAmount"]) for line in explained[0]["lines"]] == [(_usd(2000), _usd(2000))]

    # reported in yen, which have no minor unit: 150 yen a dollar makes $225.00 of MRR ¥33,750, exponent 0
    rates = await client.put(
        "/api/v1/metrics/fx-rates",
        headers=account.headers,
        json={"rates": [{"currency": "JPY", "day": "2000-01-01", "perUsd": "150"}]},
    )
    assert rates.status_code == 200, rates.text
    settings = await client.patch(
        "/api/v1/metrics/settings", headers=account.headers, json={"reportingCurrency": "JPY"}
    )
    assert settings.status_code == 200, settings.text
    await _recompute(database, account)
    dashboard = await _raw(client, account, "/api/v1/dashboard")
    yen = {card["metric"]: card for card in dashboard["cards"]}["mrr"]
    assert dashboard["currency"] == "JPY"
    assert (yen["value"], yen["previous"]) == (
        {"amount": 33750, "currency": "JPY", "exponent": 0},
        {"amount": 39750, "currency": "JPY", "exponent": 0},
    )
    explained = await _raw(client, account, "/api/v1/metrics/explain", start=month, kind="new")
    assert explained[0]["amount"] == {"amount": 3000, "currency": "JPY", "exponent": 0}  # $20.00
    assert explained[0]["lines"][0]["amount"] == _usd(2000)  # an invoice line keeps its own currency


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("file_format", ["csv", "parquet"])
async def test_export_is_exactly_the_metrics_points(
    client: httpx.AsyncClient, traffic: Traffic, database: Database, file_format: str
) -> None:
    account = traffic.account
    other = await signup(client)
    await _write_points(database, other, "traffic", [Point("sessions", "day", traffic.first, 1)])
    response = await client.post(
        "/api/v1/dashboard/export", headers=account.headers, json={"metric": "sessions", "format": file_format}
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, account, response.json()["data"]["jobId"])
    assert job["type"] == "export" and job["params"]["filters"] == [
        {"column": "metric", "op": "eq", "value": "sessions"}
    ]
    assert job["status"] == "completed", job["errorMessage"]

    content = await download(job["resultUri"])
    if file_format == "csv":
        rows = [
            (row["metric"], row["grain"], D.fromisoformat(row["day"]), row["source"], row["dims"], float(row["value"]))
            for row in csv.DictReader(io.StringIO(content.decode()))
        ]
    else:
        rows = [
            (row["metric"], row["grain"], row["day"], row["source"], row["dims"], row["value"])
            for row in pq.read_table(io.BytesIO(content)).to_pylist()
        ]
    expected = [("sessions", "day", day, "traffic", "", float(value)) for day, value in traffic.sessions.items()]
    expected += [("sessions", "month", month, "traffic", "", float(value)) for month, value in traffic.monthly.items()]
    expected.append(("sessions", "day", traffic.first, "traffic", "channel=Organic Search", 7.0))
    assert sorted(rows) == sorted(expected)
    assert [row[2] for row in rows] == sorted(row[2] for row in rows)  # by day
    assert job["result"]["rows"] == len(expected) == 70 + len(traffic.monthly) + 1
