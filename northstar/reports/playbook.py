"""The playbook: rules that turn a fact sheet into next steps. Each rule looks at facts, and a step it proposes
cites the facts that made it fire, so a founder can check why the coach says so."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from northstar.core.numbers import percent
from northstar.metrics.statements import Fact, label
from northstar.reports.facts import FactSheet, listing

CONCENTRATED_SHARE = 60.0  # percent of all contraction on one plan
TRIAL_DROP_POINTS = 5.0  # percentage points below the months before
PIPELINE_COVERAGE = 3.0  # open pipeline per unit of the target still to win
PIPELINE_METRICS = ("won_amount", "revenue", "arr", "mrr")


@dataclass(frozen=True)
class Step:
    rule: str
    title: str
    action: str
    cites: tuple[str, ...]  # fact ids
    weight: int  # higher first: money at risk before housekeeping


Rule = Callable[[FactSheet], Iterable[Step]]


def churn_above_median(sheet: FactSheet) -> Iterable[Step]:
    churn, median = sheet.get("kpi.customer_churn_rate"), sheet.get("churn.median")
    if churn is None or median is None or median.data["months"] < 3:
        return
    if churn.data["value"] > median.data["median"]:
        yield Step(
            "churn_above_median",
            "Churn is above its usual level",
            f"Customer churn is {percent(churn.data['value'])} against a usual {percent(median.data['median'])}. "
            + _call(_movements(sheet, "churn"), "who churned")
            + "Fix the most common reason before next month.",
            (churn.id, median.id, *(fact.id for fact in _movements(sheet, "churn"))),
            90,
        )


def contraction_in_one_plan(sheet: FactSheet) -> Iterable[Step]:
    plans = sheet.starting("plan.")
    top = max(plans, key=lambda fact: fact.data["share_percent"], default=None)
    if top is not None and len(plans) > 1 and top.data["share_percent"] >= CONCENTRATED_SHARE:
        yield Step(
            "contraction_in_one_plan",
            f"Downgrades cluster on {top.data['plan']}",
            f"{percent(top.data['share_percent'])} of this month's contraction is on {top.data['plan']}. Review what "
            f"its customers lose or no longer use, and check its price and limits against the plan below it.",
            (top.id, *(fact.id for fact in _movements(sheet, "contraction"))),
            70,
        )


def trial_conversion_falling(sheet: FactSheet) -> Iterable[Step]:
    months = sheet.starting("trials.")
    this = sheet.get(f"trials.{sheet.month:%Y-%m}")
    before = [fact for fact in months if fact is not this]
    if this is None or not before:
        return
    ended = sum(fact.data["ended"] for fact in before)
    usual = sum(fact.data["converted"] for fact in before) * 100 / ended
    if this.data["rate"] <= usual - TRIAL_DROP_POINTS:
        yield Step(
            "trial_conversion_falling",
            "Fewer trials turn into customers",
            f"{percent(this.data['rate'])} of trials converted this month, against "
            f"{_span([fact.data['rate'] for fact in before])} before. Walk through the trial yourself this week: "
            "onboarding e-mails, the first-run screen, the moment a trial user first gets value.",
            (this.id, *(fact.id for fact in before)),
            80,
        )


def goal_at_risk(sheet: FactSheet) -> Iterable[Step]:
    for goal in sheet.starting("goal."):
        if goal.data["status"] in ("at_risk", "missed"):
            yield Step(
                "goal_at_risk",
                f"The {label(goal.data['metric'])} goal is {goal.data['status'].replace('_', ' ')}",
                f"It is at {goal.data['shown'].get('current', 'no value')} against "
                f"{goal.data['shown'].get('expected', 'no value')} expected by today. Pick the one lever that moves it "
                "most (new business, expansion or saved churn) and put a weekly number on it."
                if goal.data["status"] == "at_risk"
                else "Set a new date or target you believe in, and write down what was learned.",
                (goal.id, f"kpi.{goal.data['metric']}") if sheet.get(f"kpi.{goal.data['metric']}") else (goal.id,),
                85 if goal.data["status"] == "at_risk" else 60,
            )


def pipeline_coverage_low(sheet: FactSheet) -> Iterable[Step]:
    pipeline = sheet.get("pipeline")
    if pipeline is None:
        return
    for goal in sheet.starting("goal."):
        data = goal.data
        if data["metric"] not in PIPELINE_METRICS or data["current"] is None or data["status"] == "achieved":
            continue
        remaining = data["target"] - data["current"]
        if remaining > 0 and pipeline.data["amount"] < PIPELINE_COVERAGE * remaining:
            yield Step(
                "pipeline_coverage_low",
                "Not enough pipeline for the goal",
                f"Open pipeline of {pipeline.data['shown']} covers less than three times what is left to reach "
                f"{goal.data['shown']['target']}. Book more first calls this week, or move the date.",
                (pipeline.id, goal.id),
                75,
            )


def shrinking_month(sheet: FactSheet) -> Iterable[Step]:
    movements = sheet.get("movements")
    if movements is not None and movements.data["end"] < movements.data["start"]:
        yield Step(
            "shrinking_month",
            "MRR shrank this month",
            "Losses outran new business. "
            + _call(_movements(sheet, "churn", "contraction"), "who left or downgraded")
            + "Spend this week on the accounts at risk before finding new ones.",
            (movements.id, *[fact.id for fact in _movements(sheet, "churn", "contraction")][:3]),
            95,
        )


def unusual_days(sheet: FactSheet) -> Iterable[Step]:
    days = sheet.starting("anomaly.")
    if days:
        yield Step(
            "unusual_days",
            "Look into the unusual days",
            f"MRR moved unusually on {listing([fact.data['day'] for fact in days])}. Check whether one customer "
            "or one bug is behind each.",
            tuple(fact.id for fact in days),
            50,
        )


def data_health(sheet: FactSheet) -> Iterable[Step]:
    problems = [*sheet.starting("integration."), *([stale] if (stale := sheet.get("stale")) else [])]
    if problems:
        yield Step(
            "data_health",
            "Fix the data first",
            " ".join(fact.text for fact in problems) + " Reconnect or resume it, then read this report again.",
            tuple(fact.id for fact in problems),
            100,
        )


def _call(movers: list[Fact], who: str) -> str:
    """Whom to call: the customers named by the movements, largest first."""
    names = list(dict.fromkeys(fact.data["customer"] for fact in movers))[:3]
    return f"Call {listing(names)}, {who} this month, and ask why. " if names else ""


def _span(rates: list[float]) -> str:
    low, high = min(rates), max(rates)
    return percent(low) if low == high else f"{percent(low)} to {percent(high)}"


def _movements(sheet: FactSheet, *kinds: str) -> list[Fact]:
    return [fact for fact in sheet.starting("movement.") if fact.data["kind"] in kinds]


RULES: tuple[Rule, ...] = (
    data_health,
    shrinking_month,
    churn_above_median,
    goal_at_risk,
    trial_conversion_falling,
    pipeline_coverage_low,
    contraction_in_one_plan,
    unusual_days,
)


def next_steps(sheet: FactSheet) -> list[Step]:
    """Every step the rules find, most pressing first."""
    return sorted((step for rule in RULES for step in rule(sheet)), key=lambda step: -step.weight)
