"""Evaluating an organization's rules against its metrics, goals and integrations, after each metrics refresh
and on a schedule (``tasks.py``).

Each kind observes the subjects for which its condition holds today (in the organization's time zone): the
metric of a threshold or change, a flagged day of an anomaly, a goal and status, an integration and its problem.
Each is handed to ``firing.fire``, which fires it at most once per rule, day and subject, so evaluating again
(recomputes repeat) changes nothing. Evaluations of one organization take turns (an advisory lock).

An organization's rules share their facts (a thousand rules may watch MRR): one evaluation reads each value,
anomaly scan, the goals and the integrations once (``Reads``), judges identical conditions once, and decides what
fires from the firings read in one query (``firing.Ledger``), so its statements do not grow with its rules.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts.models import Rule
from northstar.alerts.service.firing import EVENT_KINDS, Observation, fire, ledger_of, resolve_absent
from northstar.core.db import settings_of
from northstar.core.http import AppError, NotFound
from northstar.integrations import service as integrations_service
from northstar.metrics import service as metrics_service

ACRONYMS = frozenset({"mrr", "arr", "arpa", "nrr", "grr", "ltv", "cac", "aov", "wau", "mau"})
MAX_INTEGRATIONS = 100
T = TypeVar("T")


class Reads:
    """What one evaluation read, each the first time a rule asks: the same fact for the next rule costs nothing,
    and so does a condition already judged for a rule alike. A fact that cannot be read (anomalies of a monthly
    metric) is remembered as its error, raised again."""

    def __init__(self, session: AsyncSession, org_id: uuid.UUID) -> None:
        self.session, self.org_id = session, org_id
        self._known: dict[Hashable, Any] = {}

    async def once(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """What ``read()`` gives, awaited the first time ``key`` is asked for."""
        if key not in self._known:
            try:
                self._known[key] = await read()
            except AppError as exc:
                self._known[key] = exc
        found = self._known[key]
        if isinstance(found, AppError):
            raise found.with_traceback(None)
        return cast(T, found)

    async def read(self, fact: Callable[..., Awaitable[T]], **args: Hashable) -> T:
        """``fact(session, org_id=…, **args)`` (a read of another module's service), once."""
        return await self.once(
            (fact, *sorted(args.items())), functools.partial(fact, self.session, org_id=self.org_id, **args)
        )


@dataclass(frozen=True)
class Moment:
    """What every rule of one evaluation is judged against, and what it read."""

    now: dt.datetime
    today: dt.date
    currency: str
    base_url: str  # where links in alerts lead (the console)
    reads: Reads


def label(metric: str) -> str:
    return metric.upper() if metric in ACRONYMS else metric.replace("_", " ").capitalize()


def words(value: Any) -> str:
    """A value as the API shows it, as a person reads it: money with its currency and decimals (225.00 USD),
    numbers with separators."""
    if isinstance(value, dict):
        exponent = value["exponent"]
        return f"{value['amount'] / 10**exponent:,.{exponent}f} {value['currency']}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def shown(metric: str, value: float | int, currency: str) -> str:
    """A stored value of ``metric`` (money in minor units), as a person reads it."""
    return words(metrics_service.shown_value(metric, value, currency))


def _moved(change: float, direction: str) -> bool:
    return change > 0 if direction == "up" else change < 0 if direction == "down" else change != 0


async def _threshold(rule: Rule, at: Moment) -> list[Observation]:
    metric, limit, above = rule.params["metric"], rule.params["value"], rule.params["direction"] == "above"
    value = await at.reads.read(metrics_service.value_on, metric=metric, day=at.today)
    if value is None or not (value > limit if above else value < limit):
        return []
    side = "above" if above else "below"
    return [
        Observation(
            subject=metric,
            day=at.today,
            title=f"{label(metric)} is {side} {shown(metric, limit, at.currency)}",
            body=f"{label(metric)} is {shown(metric, value, at.currency)} on {at.today:%d %B %Y}, {side} the "
            f"threshold of {shown(metric, limit, at.currency)}.",
            url=f"{at.base_url}/app/kpis/{metric}",
            facts={"metric": metric, "value": value, "threshold": limit, "direction": rule.params["direction"]},
        )
    ]


async def _change(rule: Rule, at: Moment) -> list[Observation]:
    metric, days = rule.params["metric"], rule.params["window_days"]
    since = at.today - dt.timedelta(days=days)
    before = await at.reads.read(metrics_service.value_on, metric=metric, day=since)
    value = await at.reads.read(metrics_service.value_on, metric=metric, day=at.today)
    if before is None or value is None or before == 0:
        return []
    change = (value - before) * 100 / abs(before)
    if abs(change) < rule.params["percent"] or not _moved(change, rule.params["direction"]):
        return []
    verb = "rose" if change > 0 else "fell"
    return [
        Observation(
            subject=metric,
            day=at.today,
            title=f"{label(metric)} {verb} {abs(change):.1f} % in {days} day{'s' if days != 1 else ''}",
            body=f"{label(metric)} went from {shown(metric, before, at.currency)} on {since:%d %B %Y} to "
            f"{shown(metric, value, at.currency)} on {at.today:%d %B %Y} ({change:+.1f} %).",
            url=f"{at.base_url}/app/kpis/{metric}",
            facts={"metric": metric, "before": before, "value": value, "changePercent": round(change, 2)},
        )
    ]


async def _anomaly(rule: Rule, at: Moment) -> list[Observation]:
    metric, direction = rule.params["metric"], rule.params["direction"]
    start = at.today - dt.timedelta(days=rule.params["lookback_days"] - 1)
    try:
        flagged = await at.reads.read(metrics_service.anomalies, metric=metric, start=start, end=at.today)
    except NotFound:
        return []  # no values of the metric yet
    return [
        Observation(
            subject=metric,
            day=item["day"],
            title=f"Unusual {label(metric)} on {item['day']:%d %B %Y}",
            body=f"{label(metric)} was {shown(metric, item['value'], at.currency)} on {item['day']:%A %d %B}, against "
            f"a usual {shown(metric, item['baseline'], at.currency)} for that weekday"
            + (f" (robust z-score {item['score']})." if item["score"] is not None else "."),
            url=f"{at.base_url}/app/kpis/{metric}",
            facts={"metric": metric, "value": item["value"], "baseline": item["baseline"], "score": item["score"]},
        )
        for item in flagged
        if direction == "either" or item["direction"] == direction
    ]


async def _goal(rule: Rule, at: Moment) -> list[Observation]:
    wanted, statuses = rule.params.get("goal_id"), rule.params["statuses"]
    found = []
    for goal in await at.reads.read(metrics_service.goal_statuses):
        if (wanted and str(goal["id"]) != wanted) or goal["status"] not in statuses:
            continue
        at_risk = goal["status"] == "at_risk"
        metric = label(goal["metric"])
        found.append(
            Observation(
                subject=f"goal:{goal['id']}:{goal['status']}",
                day=at.today,
                title=f"Goal {'at risk' if at_risk else 'missed'}: {metric} to {words(goal['target'])} by "
                f"{goal['target_date']:%d %B %Y}",
                body=f"{metric} is {words(goal['current'])}, {goal['progress_percent']} % of the way to the goal"
                + (
                    f"; it should be at {words(goal['expected'])} by now."
                    if at_risk
                    else f"; the target date was {goal['target_date']:%d %B %Y}."
                ),
                url=f"{at.base_url}/app/goals/{goal['id']}",
                facts={
                    "goalId": str(goal["id"]),
                    "status": goal["status"],
                    "progressPercent": goal["progress_percent"],
                },
            )
        )
    return found


async def _integration(rule: Rule, at: Moment) -> list[Observation]:
    wanted, problem, hours = rule.params.get("integration_id"), rule.params["problem"], rule.params.get("hours")
    integrations, _ = await at.reads.read(integrations_service.list_integrations, offset=0, limit=MAX_INTEGRATIONS)
    found = []
    for integration in integrations:
        if (wanted and str(integration.id) != wanted) or integration.status == "paused":
            continue
        if problem == "error":
            if integration.status != "error" and not integration.last_error:
                continue
            title = f"{integration.name} needs attention"
            body = f"The last sync of {integration.name} ({integration.provider}) failed: {integration.last_error}"
        else:
            since = integration.last_success_at or integration.created_at
            lag = at.now - since
            if lag < dt.timedelta(hours=hours or 0):
                continue
            title = f"{integration.name} has not synced for {int(lag.total_seconds() // 3600)} hours"
            body = (
                f"{integration.name} ({integration.provider}) last synced successfully at {since:%d %B %Y %H:%M} UTC."
            )
        found.append(
            Observation(
                subject=f"integration:{integration.id}:{problem}",
                day=at.today,
                title=title,
                body=body,
                url=f"{at.base_url}/app/integrations/{integration.id}",
                facts={"integrationId": str(integration.id), "problem": problem},
            )
        )
    return found


Observer = Callable[[Rule, Moment], Awaitable[list[Observation]]]
OBSERVERS: dict[str, Observer] = {
    "threshold": _threshold,
    "change": _change,
    "anomaly": _anomaly,
    "goal": _goal,
    "integration": _integration,
}


async def evaluate(session: AsyncSession, *, org_id: uuid.UUID) -> int:
    """Evaluate every enabled rule of the organization (reports fire when one is ready, not here); returns how many
    alerts fired. A rule that cannot be evaluated (say, anomalies of a monthly metric) says why on itself."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('alerts:' || :org, 0))"), {"org": str(org_id)}
    )
    rules = list(
        (
            await session.scalars(
                select(Rule)
                .where(Rule.org_id == org_id, Rule.enabled, Rule.kind.in_(OBSERVERS))
                .order_by(Rule.created_at, Rule.id)
            )
        ).all()
    )
    if not rules:
        return 0
    reporting = await metrics_service.reporting(session, org_id=org_id)
    at = Moment(
        now=dt.datetime.now(dt.UTC),
        today=reporting.today,
        currency=reporting.currency,
        base_url=settings_of(session).public_url.rstrip("/"),
        reads=Reads(session, org_id),
    )
    seen: list[tuple[Rule, Observation]] = []
    holding: dict[uuid.UUID, set[str]] = {}  # the subjects each lasting condition holds for now
    evaluated: dict[str | None, list[uuid.UUID]] = defaultdict(list)  # the rules, by why they could not be (None)
    for rule in rules:
        condition = (rule.kind, json.dumps(rule.params, sort_keys=True))  # rules alike are judged once
        try:
            observed = await at.reads.once(condition, functools.partial(OBSERVERS[rule.kind], rule, at))
        except AppError as exc:
            evaluated[exc.message].append(rule.id)
            continue
        evaluated[None].append(rule.id)
        seen.extend((rule, observation) for observation in observed)
        if rule.kind not in EVENT_KINDS:
            holding[rule.id] = {observation.subject for observation in observed}
    ledger = await ledger_of(session, org_id=org_id, rules=rules, seen=seen)
    fired = await fire(session, ledger=ledger, seen=seen, now=at.now)
    await resolve_absent(session, ledger=ledger, holding=holding, now=at.now)
    for error, rule_ids in evaluated.items():
        await _evaluated(session, rule_ids, at=at, error=error)
    return fired


async def _evaluated(session: AsyncSession, rule_ids: list[uuid.UUID], *, at: Moment, error: str | None) -> None:
    """When the rules were last evaluated and why they could not be (one statement per reason, usually the one of
    none); not a change of the rules (``updatedAt`` stays). The rules loaded are left as they are: matching the
    statement against each of them would cost more than the statement."""
    await session.execute(
        update(Rule)
        .where(Rule.id.in_(rule_ids))
        .values(last_evaluated_at=at.now, last_error=error, updated_at=Rule.updated_at)
        .execution_options(synchronize_session=False)
    )
