"""The month's metrics as cited sentences: each KPI and each goal a ``Fact`` (an id to cite, one sentence whose
numbers ``core.numbers`` writes, and the same in structured form). The coach's fact sheet (reports) and the
investor dashboard (DevBizOps) both write from these, so a number reads the same wherever it is stated, and a text
built on them passes the number check (``numbers.unsupported``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from northstar.core.numbers import count, money, percent
from northstar.metrics.facts import MetricChange
from northstar.metrics.facts import MonthFacts as MonthFacts  # what these state, for their callers

LABELS = {
    "mrr": "MRR",
    "arr": "ARR",
    "customers": "Customers",
    "arpa": "ARPA",
    "net_new": "Net new MRR",
    "customer_churn_rate": "Customer churn",
    "net_mrr_churn_rate": "Net MRR churn",
    "nrr": "Net revenue retention",
    "quick_ratio": "Quick ratio",
    "ltv": "LTV",
    "revenue": "Revenue",
    "orders": "Orders",
    "aov": "Average order value",
    "sessions": "Sessions",
    "conversion_rate": "Conversion rate",
    "won_amount": "Won deals",
    "win_rate": "Win rate",
}


@dataclass(frozen=True)
class Fact:
    id: str  # what a text cites: "kpi.mrr", "movement.2", "goal.<uuid>", "plan.price_basic", "trials", …
    text: str  # one sentence stating it, numbers written as ``numbers`` writes them
    data: dict[str, Any] = field(default_factory=dict)  # the same in structured form


def month_name(day: dt.date) -> str:
    return day.strftime("%B %Y")


def label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " ").capitalize())


class Formatter:
    """Values of one sheet in its currency: every number a fact holds is written by one of these."""

    def __init__(self, currency: str, exponent: int) -> None:
        self.currency, self.exponent = currency, exponent

    def money(self, minor: int) -> str:
        return money(minor, self.currency, self.exponent)

    def change(self, change: MetricChange, delta: int | float) -> str:
        """A change without its sign (the words say which way): a rate's change in percentage points."""
        return f"{abs(delta):,.1f} points" if change.percent else self.value(change, abs(delta))

    def value(self, change: MetricChange, value: int | float) -> str:
        if change.money:
            return self.money(int(value))
        if change.percent:
            return percent(value)
        return count(value) if isinstance(value, int) else f"{value:,.2f}"


def kpi_facts(found: MonthFacts, say: Formatter) -> Iterable[Fact]:
    month = month_name(found.month)
    for metric, change in found.metrics.items():
        if change.value is None:
            continue
        now = say.value(change, change.value)
        text = f"{label(metric)} in {month}: {now}"
        data: dict[str, Any] = {"metric": metric, "value": change.value, "previous": change.previous}
        if change.previous is not None:
            delta = change.value - change.previous
            direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
            text += f", {direction}"
            if delta:
                text += f" {say.change(change, delta)}"
                if change.previous and not change.percent:
                    share = abs(delta) * 100 / abs(change.previous)
                    text += f" ({percent(share)})"
                    data["change_percent"] = round(share if delta > 0 else -share, 1)
            text += f" from {say.value(change, change.previous)}"
            data["change"] = delta
        yield Fact(f"kpi.{metric}", text + ".", data)


def goal_facts(found: MonthFacts, say: Formatter) -> Iterable[Fact]:
    for goal in found.goals:
        change = found.metrics.get(goal["metric"]) or MetricChange(
            goal["metric"], None, None, isinstance(goal["target"], dict), goal["metric"].endswith("_rate")
        )
        values = {name: plain(goal[name]) for name in ("target", "current", "expected")}
        shown = {name: say.value(change, value) for name, value in values.items() if value is not None}
        text = f"Goal: {label(goal['metric'])} at {shown['target']} by {goal['target_date'].isoformat()}"
        if "current" in shown:
            text += f", now {shown['current']}"
        if "expected" in shown and goal["status"] in ("at_risk", "on_track"):
            text += f", {shown['expected']} expected by today"
        yield Fact(
            f"goal.{goal['id']}",
            f"{text}: {goal['status'].replace('_', ' ')}.",
            {
                "metric": goal["metric"],
                **values,
                "shown": shown,
                "progress": goal["progress_percent"],
                "target_date": goal["target_date"].isoformat(),
                "status": goal["status"],
            },
        )


def plain(value: Any) -> Any:
    return value["amount"] if isinstance(value, dict) else value
