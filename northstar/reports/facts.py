"""The fact sheet: everything a narrative may say about a month, each fact a sentence with its numbers and an id
to cite. Words come after facts: the writer, the playbook, the coach and any language model work from this sheet,
and a text is accepted only when each of its numbers is one of the sheet's (``numbers.unsupported``)."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.numbers import count, percent
from northstar.integrations import service as integrations_service
from northstar.metrics import service as metrics_service
from northstar.metrics.facts import CustomerMovement, MonthFacts, RangeFacts
from northstar.metrics.statements import Fact, Formatter, goal_facts, kpi_facts, month_name, plain

KIND_WORDS = {
    "new": "started paying",
    "expansion": "expanded",
    "reactivation": "came back",
    "contraction": "contracted",
    "churn": "churned",
}
STALE_AFTER_HOURS = 24


@dataclass(frozen=True)
class FactSheet:
    month: dt.date
    currency: str
    facts: tuple[Fact, ...]
    source: MonthFacts
    customer_names: tuple[str, ...]  # what a prompt must not carry

    def get(self, fact_id: str) -> Fact | None:
        return next((fact for fact in self.facts if fact.id == fact_id), None)

    def starting(self, prefix: str) -> list[Fact]:
        return [fact for fact in self.facts if fact.id.startswith(prefix)]

    def texts(self) -> list[str]:
        return [fact.text for fact in self.facts]

    def only(self, keep: Callable[[Fact], bool]) -> FactSheet:
        """The same sheet with the facts ``keep`` accepts (an investor's, say)."""
        return replace(self, facts=tuple(fact for fact in self.facts if keep(fact)))


def listing(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}" if items else ""


def customer_name(movement: CustomerMovement) -> str:
    return movement.name or movement.external_id


def _movement_facts(found: MonthFacts, say: Formatter) -> Iterable[Fact]:
    month = month_name(found.month)
    parts = [f"{kind} {say.money(amount)}" for kind, amount in found.movements.items() if amount]
    net = found.mrr_end - found.mrr_start
    yield Fact(
        "movements",
        f"MRR went from {say.money(found.mrr_start)} to {say.money(found.mrr_end)} in {month}"
        + (f" ({', '.join(parts)})" if parts else ", with no movement")
        + f": net {'+' if net >= 0 else '-'}{say.money(net)}.",
        {"start": found.mrr_start, "end": found.mrr_end, **found.movements},
    )
    for rank, movement in enumerate(found.top_movements, start=1):
        yield _movement_fact(f"movement.{rank}", movement, say)
    total = -sum(found.contraction_by_plan.values())
    for plan, amount in sorted(found.contraction_by_plan.items(), key=lambda item: item[1]):
        yield Fact(
            f"plan.{plan}",
            f"Contraction on {plan} in {month}: {say.money(amount)}, {percent(-amount * 100 / total)} of all "
            "contraction.",
            {"plan": plan, "amount": amount, "share_percent": round(-amount * 100 / total, 1)},
        )


def _movement_fact(fact_id: str, movement: CustomerMovement, say: Formatter) -> Fact:
    plans = f" on {', '.join(movement.plans)}" if movement.plans else ""
    return Fact(
        fact_id,
        f"{customer_name(movement)} {KIND_WORDS.get(movement.kind, movement.kind)}{plans} on "
        f"{movement.day.isoformat()}: {'+' if movement.amount >= 0 else '-'}{say.money(movement.amount)} MRR.",
        {
            "customer_id": str(movement.customer_id),
            "customer": customer_name(movement),
            "kind": movement.kind,
            "amount": movement.amount,
            "day": movement.day.isoformat(),
            "plans": list(movement.plans),
        },
    )


def week_facts(recent: RangeFacts, shown: int) -> list[Fact]:
    """MRR over a few days (``week``) and its ``shown`` largest customer moves (``week.movement.<n>``)."""
    say = Formatter(recent.currency, recent.exponent)
    net = recent.mrr_end - recent.mrr_start
    parts = [f"{kind} {say.money(amount)}" for kind, amount in recent.movements.items() if amount]
    week = Fact(
        "week",
        f"MRR from {recent.start.isoformat()} to {recent.end.isoformat()}: {say.money(recent.mrr_start)} to "
        f"{say.money(recent.mrr_end)}, net {'+' if net >= 0 else '-'}{say.money(net)}"
        + (f" ({', '.join(parts)})." if parts else ", no movement."),
        {
            "start": recent.mrr_start,
            "end": recent.mrr_end,
            "from": recent.start.isoformat(),
            "to": recent.end.isoformat(),
            **recent.movements,
        },
    )
    movers = [
        _movement_fact(f"week.movement.{rank}", movement, say)
        for rank, movement in enumerate(recent.top_movements[:shown], start=1)
    ]
    return [week, *movers]


def _history_facts(found: MonthFacts) -> Iterable[Fact]:
    if found.churn_history:
        median = statistics.median(rate for _, rate in found.churn_history)
        yield Fact(
            "churn.median",
            f"Median customer churn over the {count(len(found.churn_history))} months before "
            f"{month_name(found.month)}: {percent(median)}.",
            {"median": median, "months": len(found.churn_history)},
        )
    for trial in found.trials:
        if trial.ended:
            rate = trial.converted * 100 / trial.ended
            yield Fact(
                f"trials.{trial.month:%Y-%m}",
                f"Trials ending in {month_name(trial.month)}: {count(trial.ended)}, {count(trial.converted)} "
                f"converted ({percent(rate)}).",
                {"ended": trial.ended, "converted": trial.converted, "rate": round(rate, 1)},
            )


def _health_facts(found: MonthFacts, integrations: Iterable[Any], now: dt.datetime, say: Formatter) -> Iterable[Fact]:
    for item in found.anomalies:
        yield Fact(
            f"anomaly.{item['day'].isoformat()}",
            f"MRR moved unusually on {item['day'].isoformat()}: {item['direction']} "
            f"{say.money(int(plain(item['value'])))} that day.",
            {"day": item["day"].isoformat(), "direction": item["direction"], "value": plain(item["value"])},
        )
    if found.open_pipeline is not None:
        shown = say.money(found.open_pipeline)
        yield Fact("pipeline", f"Open pipeline: {shown}.", {"amount": found.open_pipeline, "shown": shown})
    for integration in integrations:
        synced = integration.last_success_at
        hours = int((now - synced).total_seconds() // 3600) if synced else None
        if integration.status == "error" or (integration.last_error and integration.status != "paused"):
            text = f"{integration.name} is failing: {integration.last_error or 'the last sync failed'}."
        elif hours is None:
            text = f"{integration.name} has not synced yet."
        elif hours >= STALE_AFTER_HOURS:
            text = f"{integration.name} last synced {count(hours)} hours ago."
        else:
            continue
        yield Fact(
            f"integration.{integration.id}",
            text,
            {"name": integration.name, "status": integration.status, "hours_since_sync": hours},
        )
    if found.problem:
        yield Fact("stale", f"Metrics are out of date: {found.problem}.", {"problem": found.problem})


def sheet_of(found: MonthFacts, integrations: Iterable[Any], now: dt.datetime) -> FactSheet:
    """The sheet of a month's facts and the org's integrations, as of ``now``."""
    say = Formatter(found.currency, found.exponent)
    facts = (
        *kpi_facts(found, say),
        *_movement_facts(found, say),
        *_history_facts(found),
        *goal_facts(found, say),
        *_health_facts(found, integrations, now, say),
    )
    names = tuple(sorted({name for movement in found.top_movements if (name := movement.name)}))
    return FactSheet(month=found.month, currency=found.currency, facts=facts, source=found, customer_names=names)


async def build(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date | None) -> FactSheet:
    found = await metrics_service.month_facts(session, org_id=org_id, month=month)
    integrations, _ = await integrations_service.list_integrations(session, org_id=org_id, offset=0, limit=100)
    return sheet_of(found, integrations, dt.datetime.now(dt.UTC))
