"""A rule firing: once per rule, day and subject, not again while it stays open, not within its cooldown; then one
delivery per recipient's channel and per shared channel, queued in the same transaction.

Conditions that last (a threshold, a change, a goal, an integration) stay open while they hold and fire again
only after they stopped holding (and the cooldown passed). Events (an anomalous day, a report) are done as they
fire; a report is told once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import Channel, Delivery, Firing, Rule, RuleChannel, RuleRecipient
from northstar.alerts.service.preferences import channels_for, next_digest, preferences_of, zone_of
from northstar.core.permissions import Role, role_allows
from northstar.core.queue import enqueue_named
from northstar.metrics import service as metrics_service

EVENT_KINDS = frozenset({"anomaly", "report"})
DELIVER = "alerts.deliver"  # the queue task (``tasks.py``) that sends one delivery


@dataclass(frozen=True)
class Observation:
    """A subject for which a rule's condition holds, and what the alert says about it."""

    subject: str
    day: dt.date
    title: str
    body: str
    url: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


async def queue_delivery(session: AsyncSession, delivery: Delivery, *, schedule_at: dt.datetime | None = None) -> None:
    await enqueue_named(session, DELIVER, org_id=delivery.org_id, schedule_at=schedule_at, delivery_id=str(delivery.id))


async def fire(session: AsyncSession, *, rule: Rule, seen: Observation, now: dt.datetime) -> uuid.UUID | None:
    """Record the firing and queue its deliveries; None when it is still open, told before, within the cooldown,
    or already fired for this day."""
    same = (Firing.org_id == rule.org_id, Firing.rule_id == rule.id, Firing.subject == seen.subject)
    event = rule.kind in EVENT_KINDS
    if not event and await session.scalar(select(Firing.id).where(*same, Firing.resolved_at.is_(None)).limit(1)):
        return None
    last = await session.scalar(select(func.max(Firing.fired_at)).where(*same))
    if last is not None and (rule.kind == "report" or now - last < dt.timedelta(minutes=rule.cooldown_minutes)):
        return None
    firing_id: uuid.UUID | None = await session.scalar(
        pg_insert(Firing)
        .values(
            org_id=rule.org_id,
            rule_id=rule.id,
            day=seen.day,
            subject=seen.subject,
            title=seen.title,
            body=seen.body,
            url=seen.url,
            facts=seen.facts,
            fired_at=now,
            resolved_at=now if event else None,
        )
        .on_conflict_do_nothing(constraint="uq_firings_rule_id_day_subject")
        .returning(Firing.id)
    )
    if firing_id is not None:
        await _fan_out(session, rule=rule, firing_id=firing_id, now=now)
    return firing_id


async def resolve_absent(session: AsyncSession, *, rule: Rule, holding: set[str], now: dt.datetime) -> None:
    """The rule's open firings whose condition no longer holds are closed: they may fire again."""
    await session.execute(
        update(Firing)
        .where(
            Firing.org_id == rule.org_id,
            Firing.rule_id == rule.id,
            Firing.resolved_at.is_(None),
            Firing.subject.not_in(holding),
        )
        .values(resolved_at=now)
    )


async def _fan_out(session: AsyncSession, *, rule: Rule, firing_id: uuid.UUID, now: dt.datetime) -> None:
    """A delivery per recipient's chosen channel (e-mail in digest mode waits for the digest; turned-off e-mail is
    skipped) and per shared channel (skipped while it is off); the others are queued."""
    recipients = list(
        (await session.scalars(select(RuleRecipient.user_id).where(RuleRecipient.rule_id == rule.id))).all()
    )
    deliveries: list[Delivery] = []
    for member in await accounts.members_of(session, org_id=rule.org_id, user_ids=recipients):
        if not role_allows(Role(member.role), "read", "alerts"):
            continue  # their role changed since they were named
        preferences = await preferences_of(session, org_id=rule.org_id, user_id=member.user_id)
        chosen = channels_for(preferences, rule.kind)
        personal = {"firing_id": firing_id, "user_id": member.user_id}
        if "in_app" in chosen:
            deliveries.append(Delivery(**personal, channel="in_app", status="queued"))
        if "email" not in chosen:
            continue
        if preferences.email_disabled_at is not None:
            deliveries.append(
                Delivery(
                    **personal, channel="email", status="skipped", last_error="E-mail is turned off for this member"
                )
            )
        elif preferences.digest:
            digest_at = next_digest(now, await zone_of(session, preferences), preferences.digest_hour)
            deliveries.append(
                Delivery(**personal, channel="email", status="held", in_digest=True, not_before=digest_at)
            )
        else:
            deliveries.append(Delivery(**personal, channel="email", status="queued"))
    shared = await session.scalars(
        select(Channel).join(RuleChannel, RuleChannel.channel_id == Channel.id).where(RuleChannel.rule_id == rule.id)
    )
    for channel in shared:
        active = channel.status == "active"
        deliveries.append(
            Delivery(
                firing_id=firing_id,
                channel="slack",
                channel_id=channel.id,
                status="queued" if active else "skipped",
                last_error=None if active else "The channel is turned off",
            )
        )
    for delivery in deliveries:
        delivery.id, delivery.org_id = uuid.uuid4(), rule.org_id
    session.add_all(deliveries)
    await session.flush()
    for delivery in deliveries:
        if delivery.status == "queued":
            await queue_delivery(session, delivery)


async def report_ready(session: AsyncSession, *, org_id: uuid.UUID, report_id: uuid.UUID, title: str, url: str) -> int:
    """A report is ready: every enabled report rule of the organization fires (once per report, however often
    this is called), in the caller's transaction. Returns how many fired."""
    rules = await session.scalars(
        select(Rule).where(Rule.org_id == org_id, Rule.kind == "report", Rule.enabled).order_by(Rule.created_at)
    )
    today = (await metrics_service.reporting(session, org_id=org_id)).today
    seen = Observation(
        subject=f"report:{report_id}",
        day=today,
        title=f"Report ready: {title}",
        body=f"The report “{title}” is ready to read.",
        url=url,
        facts={"reportId": str(report_id)},
    )
    now = dt.datetime.now(dt.UTC)
    fired = [await fire(session, rule=rule, seen=seen, now=now) for rule in rules.all()]
    return sum(firing is not None for firing in fired)
