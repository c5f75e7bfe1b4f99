"""A fixed month of a subscription business (March 2026, in USD), stated by hand, for the coach's pure parts:
the fact sheet, the playbook, the writer and the intents read it without a database."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace

from northstar.metrics.facts import CustomerMovement, MetricChange, MonthFacts, TrialMonth
from northstar.reports.facts import FactSheet, sheet_of

D = dt.date
NOW = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
GOAL_ID = uuid.UUID("00000000-0000-4000-8000-00000000000a")


@dataclass(frozen=True)
class Integration:
    """What the fact sheet reads of an integration."""

    id: uuid.UUID
    name: str
    status: str
    last_success_at: dt.datetime | None
    last_error: str | None


def _change(metric: str, value: float, previous: float, *, money: bool = False, percent: bool = False) -> MetricChange:
    return MetricChange(metric, value, previous, money, percent)


def _moved(day: int, kind: str, amount: int, name: str, plan: str) -> CustomerMovement:
    return CustomerMovement(
        day=D(2026, 3, day),
        kind=kind,
        amount=amount,
        customer_id=uuid.uuid5(uuid.NAMESPACE_URL, name),
        external_id=f"cus_{name.split()[0].lower()}",
        name=name,
        plans=(plan,),
    )


MARCH = MonthFacts(
    month=D(2026, 3, 1),
    today=D(2026, 3, 31),
    currency="USD",
    exponent=2,
    metrics={
        "mrr": _change("mrr", 4_825_000, 4_610_000, money=True),
        "customers": _change("customers", 212, 205),
        "customer_churn_rate": _change("customer_churn_rate", 3.8, 2.1, percent=True),
        "nrr": _change("nrr", 101.2, 99.5, percent=True),
    },
    mrr_series=[
        (D(2025, 4 + back, 1) if back < 9 else D(2026, back - 8, 1), 3_900_000 + 80_000 * back) for back in range(11)
    ]
    + [(D(2026, 3, 1), 4_825_000)],
    mrr_start=4_610_000,
    mrr_end=4_825_000,
    movements={
        "new": 340_000,
        "expansion": 120_000,
        "reactivation": 0,
        "contraction": -45_000,
        "churn": -200_000,
        "fx": 0,
    },
    top_movements=[
        _moved(4, "new", 150_000, "Acme Corp", "price_pro"),
        _moved(18, "churn", -120_000, "Globex", "price_pro"),
        _moved(9, "expansion", 80_000, "Initech", "price_scale"),
        _moved(22, "churn", -80_000, "Umbrella", "price_basic"),
        _moved(12, "contraction", -30_000, "Hooli", "price_scale"),
    ],
    contraction_by_plan={"price_scale": -30_000, "price_basic": -15_000},
    churn_history=[
        (D(2025, 9 + back, 1) if back < 4 else D(2026, back - 3, 1), rate)
        for back, rate in enumerate((2.0, 2.4, 1.9, 2.2, 2.6, 2.1))
    ],
    trials=[
        TrialMonth(D(2025, 12, 1), 40, 12),
        TrialMonth(D(2026, 1, 1), 38, 11),
        TrialMonth(D(2026, 2, 1), 45, 14),
        TrialMonth(D(2026, 3, 1), 50, 9),
    ],
    goals=[
        {
            "id": GOAL_ID,
            "metric": "mrr",
            "target": {"amount": 6_000_000, "currency": "USD", "exponent": 2},
            "target_date": D(2026, 6, 30),
            "start_date": D(2026, 1, 1),
            "start_value": {"amount": 4_400_000, "currency": "USD", "exponent": 2},
            "current": {"amount": 4_825_000, "currency": "USD", "exponent": 2},
            "expected": {"amount": 5_100_000, "currency": "USD", "exponent": 2},
            "progress_percent": 26.56,
            "status": "at_risk",
        }
    ],
    anomalies=[{"day": D(2026, 3, 18), "direction": "down", "value": -120_000.0, "score": -4.2}],
    open_pipeline=1_500_000,
    problem=None,
    computed_at=NOW,
)
HUBSPOT = Integration(uuid.UUID(int=2), "HubSpot", "error", NOW - dt.timedelta(days=3), "401 Unauthorized")
STRIPE = Integration(uuid.UUID(int=1), "Stripe", "active", NOW - dt.timedelta(hours=2), None)


def march(**changes: object) -> FactSheet:
    """The month's sheet, with some of its facts changed."""
    return sheet_of(replace(MARCH, **changes), [STRIPE, HUBSPOT], NOW)  # type: ignore[arg-type]
