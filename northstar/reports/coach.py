"""Ask the coach, without a language model: a question is matched to one of the intents a founder asks most, and
the answer is put together from the fact sheet, citing the facts (and so the movements and customers) it rests on.

Intents: why a metric changed (in a month), the top customers by movement, whether a goal will be met, and what
changed since last week. A question that matches none gets the month's headline and the intents it can ask."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from northstar.metrics.facts import RangeFacts
from northstar.metrics.statements import Fact, label, month_name
from northstar.reports.facts import FactSheet, week_facts

Intent = Literal["why_changed", "top_customers", "goal_outlook", "since_last_week", "overview"]
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
METRIC_WORDS = {
    "mrr": ("mrr", "recurring revenue", "revenue"),
    "customer_churn_rate": ("churn",),
    "customers": ("customers", "customer count"),
    "arr": ("arr",),
    "arpa": ("arpa", "average revenue"),
    "nrr": ("nrr", "retention"),
}
LOSS_KINDS = ("churn", "contraction")
GAIN_KINDS = ("new", "expansion", "reactivation")
TOP_SHOWN = 5


@dataclass(frozen=True)
class Answer:
    intent: Intent
    text: str
    cites: tuple[str, ...]
    month: dt.date | None


def _words(question: str) -> str:
    return " " + re.sub(r"[^a-z0-9-]+", " ", question.lower()) + " "


def intent_of(question: str) -> Intent:
    words = _words(question)
    if any(f" {word} " in words for word in ("goal", "goals", "target", "hit", "reach", "meet", "track")):
        return "goal_outlook"
    if "last week" in words or "this week" in words or " past week " in words or " since " in words:
        return "since_last_week"
    if any(f" {word} " in words for word in ("top", "biggest", "largest", "who", "which")):
        return "top_customers"
    if any(f" {word} " in words for word in ("why", "explain", "drop", "dropped", "grow", "grew", "fall", "fell")):
        return "why_changed"
    return "overview"


def month_of(question: str, today: dt.date) -> dt.date | None:
    """The month a question names: "in March" (the latest March not after today), "March 2025", "2025-03",
    "last month" or "this month"; None when it names none."""
    words = _words(question)
    if found := re.search(r" ([1-9]\d{3})-(0[1-9]|1[0-2]) ", words):
        return dt.date(int(found[1]), int(found[2]), 1)
    if " last month " in words:
        return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    if " this month " in words:
        return today.replace(day=1)
    for name, number in MONTHS.items():
        if found := re.search(rf" {name} (?:([1-9]\d{{3}}) )?", words):
            year = int(found[1]) if found[1] else today.year - (number > today.month)
            return dt.date(year, number, 1)
    return None


def metric_named(question: str) -> str | None:
    words = _words(question)
    for metric, names in METRIC_WORDS.items():
        if any(f" {name} " in words for name in names):
            return metric
    return None


def _movers(sheet: FactSheet, kinds: tuple[str, ...] | None) -> list[Fact]:
    return [fact for fact in sheet.starting("movement.") if kinds is None or fact.data["kind"] in kinds]


def why_changed(question: str, sheet: FactSheet) -> Answer:
    metric = metric_named(question) or "mrr"
    stated = sheet.get(f"kpi.{metric}")
    movements = sheet.get("movements")
    if stated is None or movements is None:
        return Answer("why_changed", f"There is no {label(metric)} for {month_name(sheet.month)} yet.", (), sheet.month)
    change = stated.data.get("change") or 0
    kinds = LOSS_KINDS if change < 0 else GAIN_KINDS
    if metric == "customer_churn_rate":
        kinds = LOSS_KINDS
    behind = _movers(sheet, kinds)[:TOP_SHOWN]
    text = f"{stated.text} {movements.text}"
    if behind:
        text += " Behind it: " + " ".join(fact.text for fact in behind)
    return Answer("why_changed", text, (stated.id, movements.id, *(fact.id for fact in behind)), sheet.month)


def top_customers(question: str, sheet: FactSheet) -> Answer:
    words = _words(question)
    kinds: tuple[str, ...] | None = None
    if any(word in words for word in (" churn", " lost ", " losses ", " contract", " downgrad")):
        kinds = LOSS_KINDS
    elif any(word in words for word in (" expan", " upgrad", " grew ", " growth ", " new ")):
        kinds = GAIN_KINDS
    movers = _movers(sheet, kinds)[:TOP_SHOWN]
    if not movers:
        return Answer("top_customers", f"No customer moved MRR in {month_name(sheet.month)}.", (), sheet.month)
    text = f"The largest moves in {month_name(sheet.month)}: " + " ".join(fact.text for fact in movers)
    return Answer("top_customers", text, tuple(fact.id for fact in movers), sheet.month)


def goal_outlook(question: str, sheet: FactSheet) -> Answer:
    goals = sheet.starting("goal.")
    metric = metric_named(question)
    chosen = [goal for goal in goals if metric is None or goal.data["metric"] == metric] or goals
    if not chosen:
        return Answer("goal_outlook", "There are no goals yet: set one and the coach tracks it.", (), None)
    verdicts = {
        "achieved": "It is reached.",
        "on_track": "At this pace it will be met.",
        "at_risk": "At this pace it will not be met: it is behind where a straight line to the target would be.",
        "missed": "Its date has passed without reaching it.",
        "no_data": "There are no values to judge it by yet.",
    }
    text = " ".join(f"{goal.text} {verdicts[goal.data['status']]}" for goal in chosen)
    return Answer("goal_outlook", text, tuple(goal.id for goal in chosen), None)


def since_last_week(recent: RangeFacts) -> tuple[Answer, list[Fact]]:
    """What MRR did over the last seven days: the facts it states (for the check and the citations) and the answer."""
    week, *movers = week_facts(recent, TOP_SHOWN)
    text = week.text + (" Largest moves: " + " ".join(fact.text for fact in movers) if movers else "")
    return Answer("since_last_week", text, (week.id, *(fact.id for fact in movers)), None), [week, *movers]


def overview(sheet: FactSheet) -> Answer:
    headline = [fact for fact in (sheet.get("kpi.mrr"), sheet.get("movements")) if fact is not None]
    asks = ", ".join(f'"why did {name} change?"' for name in ("MRR", "churn"))
    text = " ".join(fact.text for fact in headline) + (" " if headline else "")
    text += f'Ask {asks}, "who are the top customers?", "will we hit our goal?" or "what changed since last week?".'
    return Answer("overview", text, tuple(fact.id for fact in headline), sheet.month)
