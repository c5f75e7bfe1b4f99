"""The deterministic writer: a month's narrative from the fact sheet alone, with templates and rules.

It is the default (no language model needed) and the fallback when a model's text fails the number check. It
writes numbers with the fact sheet's own formatter, from the facts' own values, so what it writes always passes
that check. The voice is the coach's: direct, and upbeat unless the org picked a plainer tone; the length picks
how many sections are told."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from northstar.core.numbers import count, percent
from northstar.metrics.statements import Fact, Formatter, label, month_name
from northstar.reports.facts import FactSheet, listing
from northstar.reports.models import Length, Tone
from northstar.reports.playbook import Step

STEPS_SHOWN = {"short": 1, "standard": 3, "detailed": 5}
MOVERS_SHOWN = {"short": 0, "standard": 3, "detailed": 5}
GAINS = (("new", "new business brought"), ("expansion", "expansion"), ("reactivation", "returning customers"))
LOSSES = (("churn", "churn took"), ("contraction", "contraction"))
MOVED = {
    "new": "started paying",
    "expansion": "expanded",
    "reactivation": "came back",
    "contraction": "downgraded",
    "churn": "churned",
}
GOAL_WORDS = {
    "achieved": "is reached",
    "on_track": "is on track",
    "at_risk": "is at risk",
    "missed": "was missed",
    "no_data": "has no values yet",
}


@dataclass(frozen=True)
class Narrative:
    title: str
    paragraphs: tuple[str, ...]
    cites: tuple[str, ...]  # the facts it tells

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


Part = tuple[str, list[str]]  # a paragraph and the facts it tells


def _signed(say: Formatter, amount: int) -> str:
    return f"{'+' if amount >= 0 else '-'}{say.money(amount)}"


def _opening(sheet: FactSheet, say: Formatter, tone: Tone) -> Part:
    mrr = sheet.get("kpi.mrr")
    month = month_name(sheet.month)
    if mrr is None:
        return f"No MRR for {month} yet: connect billing and the coach takes it from there.", []
    data = mrr.data
    value = say.money(data["value"])
    change = data.get("change")
    if not change:
        text = f"MRR held at {value} in {month}." if change == 0 else f"MRR stood at {value} in {month}."
    else:
        rise = change > 0
        share = f" ({percent(data['change_percent'])})" if "change_percent" in data else ""
        text = f"MRR {'grew' if rise else 'fell'} by {say.money(abs(change))}{share} to {value} in {month}."
        if tone == "upbeat":
            text = ("Good month: " if rise else "A tougher month, with a clear place to start. ") + text
    cites = [mrr.id]
    customers = sheet.get("kpi.customers")
    if customers is not None and customers.data.get("change") is not None:
        more = customers.data["change"]
        text += f" You have {count(customers.data['value'])} customers, " + (
            f"{count(more)} {'more' if more > 0 else 'fewer'} than the month before." if more else "as many as before."
        )
        cites.append(customers.id)
    return text, cites


def _movements(sheet: FactSheet, say: Formatter) -> Part:
    fact = sheet.get("movements")
    if fact is None or sheet.get("kpi.mrr") is None:
        return "", []
    data: dict[str, Any] = fact.data
    gains = [f"{words} {say.money(data[kind])}" for kind, words in GAINS if data.get(kind)]
    losses = [f"{words} {say.money(data[kind])}" for kind, words in LOSSES if data.get(kind)]
    if not gains and not losses:
        return "No customer changed what they pay this month.", [fact.id]
    sentence = "; ".join(listing(part) for part in (gains, losses) if part)
    return sentence[0].upper() + sentence[1:] + ".", [fact.id]


def _movers(sheet: FactSheet, say: Formatter, shown: int) -> Part:
    movers = sheet.starting("movement.")[:shown]
    if not movers:
        return "", []
    told = []
    for fact in movers:
        data = fact.data
        plans = f", {', '.join(data['plans'])}" if data["plans"] else ""
        told.append(
            f"{data['customer']} {MOVED.get(data['kind'], data['kind'])} "
            f"({_signed(say, data['amount'])} on {data['day']}{plans})"
        )
    return f"The biggest moves: {listing(told)}.", [fact.id for fact in movers]


def _goals(sheet: FactSheet, say: Formatter, tone: Tone) -> Part:
    goals = sheet.starting("goal.")
    told = []
    for goal in goals:
        data, shown = goal.data, goal.data["shown"]
        text = f"Your {label(data['metric'])} goal of {shown['target']} by {data['target_date']}"
        text += f" {GOAL_WORDS[data['status']]}"
        if data["status"] in ("at_risk", "on_track") and "current" in shown and "expected" in shown:
            text += f": {shown['current']} now, {shown['expected']} expected by today"
        if data["status"] == "achieved" and tone == "upbeat":
            text += ", well done"
        told.append(text + ".")
    return " ".join(told), [goal.id for goal in goals]


def _details(sheet: FactSheet) -> Part:
    others: list[Fact] = [
        fact
        for fact in sheet.facts
        if fact.id.startswith(("kpi.", "churn.", "trials.", "plan.", "anomaly.", "pipeline", "integration.", "stale"))
        and fact.id not in ("kpi.mrr", "kpi.customers")
    ]
    return " ".join(fact.text for fact in others), [fact.id for fact in others]


def _steps(steps: list[Step], shown: int, tone: Tone) -> Part:
    if not steps:
        return (
            "Nothing needs fixing this month: keep doing what works." if tone == "upbeat" else "No action needed."
        ), []
    chosen = steps[:shown]
    intro = "Where to push next:" if tone == "upbeat" else "Next steps:"
    lines = "\n".join(f"- {step.title}. {step.action}" for step in chosen)
    return f"{intro}\n{lines}", [cited for step in chosen for cited in step.cites]


def write(sheet: FactSheet, steps: list[Step], *, tone: Tone = "upbeat", length: Length = "standard") -> Narrative:
    say = Formatter(sheet.currency, sheet.source.exponent)
    parts = [_opening(sheet, say, tone)]
    if length != "short":
        parts += [_movements(sheet, say), _movers(sheet, say, MOVERS_SHOWN[length]), _goals(sheet, say, tone)]
    if length == "detailed":
        parts.append(_details(sheet))
    elif (stale := sheet.get("stale")) is not None:
        parts.append((stale.text, [stale.id]))
    parts.append(_steps(steps, STEPS_SHOWN[length], tone))
    return _narrative(f"{month_name(sheet.month)} in review", parts)


def weekly(
    sheet: FactSheet, week: list[Fact], steps: list[Step], *, tone: Tone = "upbeat", length: Length = "standard"
) -> Narrative:
    """The weekly digest: the week's MRR and its largest moves (``facts.week_facts``), the month so far, and the
    most pressing steps."""
    say = Formatter(sheet.currency, sheet.source.exponent)
    summary, *movers = week
    data = summary.data
    net = data["end"] - data["start"]
    verb = "grew by" if net > 0 else "fell by" if net < 0 else "held at"
    amount = say.money(abs(net)) if net else say.money(data["end"])
    opening = f"In the week from {data['from']}, MRR {verb} {amount}" + (
        f" to {say.money(data['end'])}." if net else "."
    )
    if tone == "upbeat":
        opening = ("Nice week: " if net > 0 else "Your week: ") + opening
    parts: list[Part] = [(opening, [summary.id])]
    shown = movers[: MOVERS_SHOWN[length] or 1]
    if shown:
        parts.append(("The largest moves: " + " ".join(fact.text for fact in shown), [fact.id for fact in shown]))
    mrr = sheet.get("kpi.mrr")
    if mrr is not None and length != "short":
        parts.append((f"Month to date: {mrr.text}", [mrr.id]))
    parts.append(_steps(steps, max(1, STEPS_SHOWN[length] - 1), tone))
    return _narrative(f"Your week to {data['to']}", parts)


def investor_update(sheet: FactSheet, *, tone: Tone = "upbeat") -> Narrative:
    """The investor update: the shared metrics and goals only (the sheet given holds nothing else), no customer
    and no internal next steps."""
    say = Formatter(sheet.currency, sheet.source.exponent)
    parts = [_opening(sheet, say, tone)]
    shared = [fact for fact in sheet.starting("kpi.") if fact.id not in ("kpi.mrr", "kpi.customers")]
    if shared:
        parts.append(("Key metrics:\n" + "\n".join(f"- {fact.text}" for fact in shared), [fact.id for fact in shared]))
    parts.append(_goals(sheet, say, tone))
    if tone == "upbeat":
        parts.append(("Thank you for your support. Questions and introductions are always welcome.", []))
    return _narrative(f"Investor update: {month_name(sheet.month)}", parts)


def _narrative(title: str, parts: list[Part]) -> Narrative:
    paragraphs = tuple(text for text, _ in parts if text)
    cites = tuple(dict.fromkeys(cited for _, ids in parts for cited in ids))
    return Narrative(title=title, paragraphs=paragraphs, cites=cites)
