"""Evaluating an organization's rules against its metrics, goals and integrations, after each metrics refresh
and on a schedule (``tasks.py``).

Each kind observes the subjects for which its condition holds today (in the organization's time zone): the
metric of a threshold or change, a flagged day of an anomaly, a goal and status, an integration and its problem.
Each is handed to ``firing.fire``, which fires it at most once per rule, day and subject, so evaluating again
(recomputes repeat) changes nothing. Evaluations of one organization take turns (an advisory lock).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts.models import Rule
from northstar.alerts.service.firing import EVENT_KINDS, Observation, fire, resolve_absent
from northstar.core.db import settings_of
from northstar.core.http import AppError, NotFound
from northstar.integrations import service as integrations_service
from northstar.metrics import service as metrics_service

ACRONYMS = frozenset({"mrr", "arr", "arpa", "nrr", "grr", "ltv", "cac", "aov", "wau", "mau"})
MAX_INTEGRATIONS = 100


@dataclass(frozen=True)
class Moment:
    """What every rule of one evaluation is judged against."""

    now: dt.datetime
    today: dt.date
    currency: str
    base_url: str  # where links in alerts lead (the console)


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


async def _threshold(session: AsyncSession, rule: Rule, at: Moment) -> list[Observation]:
    metric, limit, above = rule.params["metric"], rule.params["value"], rule.params["direction"] == "above"
    value = await metrics_service.value_on(session, org_id=rule.org_id, metric=metric, day=at.today)
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


async def _change(session: AsyncSession, rule: Rule, at: Moment) -> list[Observation]:
    metric, days = rule.params["metric"], rule.params["window_days"]
    since = at.today - dt.timedelta(days=days)
    before = await metrics_service.value_on(session, org_id=rule.org_id, metric=metric, day=since)
    value = await metrics_service.value_on(session, org_id=rule.org_id, metric=metric, day=at.today)
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


async def _anomaly(session: AsyncSession, rule: Rule, at: Moment) -> list[Observation]:
    metric, direction = rule.params["metric"], rule.params["direction"]
    start = at.today - dt.timedelta(days=rule.params["lookback_days"] - 1)
    try:
        flagged = await metrics_service.anomalies(session, org_id=rule.org_id, metric=metric, start=start, end=at.today)
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


async def _goal(session: AsyncSession, rule: Rule, at: Moment) -> list[Observation]:
    wanted, statuses = rule.params.get("goal_id"), rule.params["statuses"]
    found = []
    for goal in await metrics_service.goal_statuses(session, org_id=rule.org_id):
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


async def _integration(session: AsyncSession, rule: Rule, at: Moment) -> list[Observation]:
    wanted, problem, hours = rule.params.get("integration_id"), rule.params["problem"], rule.params.get("hours")
    integrations, _ = await integrations_service.list_integrations(
        session, org_id=rule.org_id, offset=0, limit=MAX_INTEGRATIONS
    )
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


Observer = Callable[[AsyncSession, Rule, Moment], Awaitable[list[Observation]]]
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
    )
    fired = 0
    for rule in rules:
        try:
            seen = await OBSERVERS[rule.kind](session, rule, at)
        except AppError as exc:
            await _evaluated(session, rule, at=at, error=exc.message)
            continue
        for observation in seen:
            fired += await fire(session, rule=rule, seen=observation, now=at.now) is not None
        if rule.kind not in EVENT_KINDS:
            await resolve_absent(session, rule=rule, holding={observation.subject for observation in seen}, now=at.now)
        await _evaluated(session, rule, at=at, error=None)
    return fired


async def _evaluated(session: AsyncSession, rule: Rule, *, at: Moment, error: str | None) -> None:
    """When the rule was last evaluated and why it could not be; not a change of the rule (``updatedAt`` stays)."""
    await session.execute(
        update(Rule)
        .where(Rule.id == rule.id)
        .values(last_evaluated_at=at.now, last_error=error, updated_at=Rule.updated_at)
    )
