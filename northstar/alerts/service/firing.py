"""A rule firing: once per rule, day and subject, not again while it stays open, not within its cooldown; then one
delivery per recipient's channel and per shared channel, queued in the same transaction.

Conditions that last (a threshold, a change, a goal, an integration) stay open while they hold and fire again
only after they stopped holding (and the cooldown passed). Events (an anomalous day, a report) are done as they
fire; a report is told once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import Channel, Delivery, Firing, Rule, RuleChannel, RuleRecipient
from northstar.alerts.service import inbox
from northstar.alerts.service.preferences import channels_for, next_digest, preferences_of_members, zone_of
from northstar.core.permissions import Role, role_allows
from northstar.core.queue import enqueue_named, enqueue_named_batch
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


async def queue_deliveries(session: AsyncSession, *, org_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID]) -> None:
    """``queue_delivery`` for many deliveries at once (an alert to a thousand members: one statement)."""
    if delivery_ids:
        await enqueue_named_batch(
            session, DELIVER, org_id=org_id, jobs=[{"delivery_id": str(delivery_id)} for delivery_id in delivery_ids]
        )


@dataclass
class Ledger:
    """What an organization's firings say about the rules about to fire, read in one query: which (rule, subject)
    are still open, when each last fired and the days it already fired for. Deciding from it, in memory, what
    fires keeps an evaluation of a thousand rules at a few statements; it is read under the evaluation's lock, and
    the unique key on (rule, day, subject) still refuses what a concurrent writer got in first."""

    org_id: uuid.UUID
    open: set[tuple[uuid.UUID, str]] = field(default_factory=set)
    last: dict[tuple[uuid.UUID, str], dt.datetime] = field(default_factory=dict)
    days: set[tuple[uuid.UUID, dt.date, str]] = field(default_factory=set)

    def take(self, rule: Rule, seen: Observation, now: dt.datetime) -> bool:
        """Whether ``seen`` fires: not while it is open, told before (a report), within the cooldown or already
        fired for its day. When it does, it is noted as fired, so a later observation of the same rule and
        subject in the same evaluation (another flagged day) is judged against it."""
        key, event = (rule.id, seen.subject), rule.kind in EVENT_KINDS
        if not event and key in self.open:
            return False
        last = self.last.get(key)
        if last is not None and (rule.kind == "report" or now - last < dt.timedelta(minutes=rule.cooldown_minutes)):
            return False
        if (rule.id, seen.day, seen.subject) in self.days:
            return False
        self.last[key] = now
        self.days.add((rule.id, seen.day, seen.subject))
        if not event:
            self.open.add(key)
        return True


async def ledger_of(
    session: AsyncSession, *, org_id: uuid.UUID, rules: Sequence[Rule], seen: Sequence[tuple[Rule, Observation]]
) -> Ledger:
    """The ledger of ``rules`` (their open firings) and of the subjects ``seen`` (when they last fired, the days
    they fired for since the earliest day seen)."""
    ledger = Ledger(org_id)
    if not rules:
        return ledger
    earliest = min((observation.day for _, observation in seen), default=dt.date.max)
    rows = await session.execute(
        select(
            Firing.rule_id,
            Firing.subject,
            func.bool_or(Firing.resolved_at.is_(None)),
            func.max(Firing.fired_at),
            func.array_agg(Firing.day).filter(Firing.day >= earliest),
        )
        .where(
            Firing.org_id == org_id,
            Firing.rule_id.in_({rule.id for rule in rules}),
            or_(Firing.resolved_at.is_(None), Firing.subject.in_({observation.subject for _, observation in seen})),
        )
        .group_by(Firing.rule_id, Firing.subject)
    )
    for rule_id, subject, is_open, last, days in rows:
        if is_open:
            ledger.open.add((rule_id, subject))
        ledger.last[rule_id, subject] = last
        ledger.days.update((rule_id, day, subject) for day in days or ())
    return ledger


async def fire(
    session: AsyncSession, *, ledger: Ledger, seen: Sequence[tuple[Rule, Observation]], now: dt.datetime
) -> int:
    """Record the firings of ``seen`` (in order) that the ledger lets through, in one statement, and queue their
    deliveries; returns how many fired (one the unique key refused did not)."""
    due = [(rule, observation, uuid.uuid4()) for rule, observation in seen if ledger.take(rule, observation, now)]
    if not due:
        return 0
    # The rows go in one pipelined statement (``render_nulls``: rows with a None are not set apart); which of them
    # the unique key let in is read back by id (with RETURNING, SQLAlchemy would write one statement of all the
    # rows, slower to prepare than the rows to insert).
    await session.execute(
        pg_insert(Firing)
        .on_conflict_do_nothing(constraint="uq_firings_rule_id_day_subject")
        .execution_options(render_nulls=True),
        [
            {
                "id": firing_id,
                "org_id": ledger.org_id,
                "rule_id": rule.id,
                "day": observation.day,
                "subject": observation.subject,
                "title": observation.title,
                "body": observation.body,
                "url": observation.url,
                "facts": observation.facts,
                "fired_at": now,
                "resolved_at": now if rule.kind in EVENT_KINDS else None,
            }
            for rule, observation, firing_id in due
        ],
    )
    inserted = set(
        await session.scalars(
            select(Firing.id).where(Firing.org_id == ledger.org_id, Firing.id.in_([firing_id for *_, firing_id in due]))
        )
    )
    fired = [(rule, firing_id) for rule, _, firing_id in due if firing_id in inserted]
    if fired:
        await _fan_out(session, org_id=ledger.org_id, fired=fired, now=now)
    return len(fired)


async def resolve_absent(
    session: AsyncSession, *, ledger: Ledger, holding: Mapping[uuid.UUID, set[str]], now: dt.datetime
) -> None:
    """The open firings of the rules in ``holding`` whose condition no longer holds (their subject is not in it)
    are closed: they may fire again. One statement, and none when nothing closes (the usual case)."""
    absent = [
        (rule_id, subject) for rule_id, subject in ledger.open if rule_id in holding and subject not in holding[rule_id]
    ]
    if not absent:
        return
    await session.execute(
        update(Firing)
        .where(
            Firing.org_id == ledger.org_id,
            Firing.resolved_at.is_(None),
            tuple_(Firing.rule_id, Firing.subject).in_(absent),
        )
        .values(resolved_at=now)
    )
    ledger.open.difference_update(absent)


async def _fan_out(
    session: AsyncSession, *, org_id: uuid.UUID, fired: Sequence[tuple[Rule, uuid.UUID]], now: dt.datetime
) -> None:
    """A delivery per recipient's chosen channel (e-mail in digest mode waits for the digest; turned-off e-mail is
    skipped) and per shared channel (skipped while it is off); e-mail and Slack are queued. In-app messages are
    written here, in the firing's transaction: a database row needs no retry, and a thousand members see the alert
    when it commits instead of a queue job later each. The recipients, members, preferences and channels of every
    rule that fired are read once, and the deliveries written and queued in one statement each."""
    rule_ids = {rule.id for rule, _ in fired}
    recipients: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for rule_id, user_id in await session.execute(
        select(RuleRecipient.rule_id, RuleRecipient.user_id).where(RuleRecipient.rule_id.in_(rule_ids))
    ):
        recipients[rule_id].append(user_id)
    members = await accounts.members_of(
        session, org_id=org_id, user_ids={user_id for named in recipients.values() for user_id in named}
    )
    # whom a rule names is told while they are a member whose role reads alerts (roles change)
    readers = [member.user_id for member in members if role_allows(Role(member.role), "read", "alerts")]
    preferences = await preferences_of_members(session, org_id=org_id, user_ids=readers)
    shared: dict[uuid.UUID, list[Channel]] = defaultdict(list)
    for rule_id, channel in await session.execute(
        select(RuleChannel.rule_id, Channel)
        .join(Channel, Channel.id == RuleChannel.channel_id)
        .where(RuleChannel.rule_id.in_(rule_ids))
    ):
        shared[rule_id].append(channel)
    digests: dict[uuid.UUID, dt.datetime] = {}  # when each member's next digest goes out
    deliveries: list[dict[str, Any]] = []
    for rule, firing_id in fired:
        for user_id in recipients[rule.id]:
            if (chosen := preferences.get(user_id)) is None:
                continue
            channels = channels_for(chosen, rule.kind)
            if "in_app" in channels:
                deliveries.append(_delivery(org_id, firing_id, "in_app", "sent", user_id=user_id, sent_at=now))
            if "email" not in channels:
                continue
            if chosen.email_disabled_at is not None:
                error = "E-mail is turned off for this member"
                deliveries.append(_delivery(org_id, firing_id, "email", "skipped", user_id=user_id, last_error=error))
            elif chosen.digest:
                if user_id not in digests:
                    digests[user_id] = next_digest(now, await zone_of(session, chosen), chosen.digest_hour)
                deliveries.append(
                    _delivery(
                        org_id, firing_id, "email", "held", user_id=user_id, in_digest=True, not_before=digests[user_id]
                    )
                )
            else:
                deliveries.append(_delivery(org_id, firing_id, "email", "queued", user_id=user_id))
        for channel in shared[rule.id]:
            active = channel.status == "active"
            deliveries.append(
                _delivery(
                    org_id,
                    firing_id,
                    "slack",
                    "queued" if active else "skipped",
                    channel_id=channel.id,
                    last_error=None if active else "The channel is turned off",
                )
            )
    if deliveries:
        await session.execute(insert(Delivery).execution_options(render_nulls=True), deliveries)
        await queue_deliveries(
            session, org_id=org_id, delivery_ids=[row["id"] for row in deliveries if row["status"] == "queued"]
        )
        await _write_inboxes(session, org_id=org_id, fired=fired, deliveries=deliveries)


async def _write_inboxes(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    fired: Sequence[tuple[Rule, uuid.UUID]],
    deliveries: list[dict[str, Any]],
) -> None:
    """The in-app messages of every firing, to all their members, written at once."""
    in_app = [row for row in deliveries if row["channel"] == "in_app"]
    if not in_app:
        return
    kinds = {firing_id: rule.kind for rule, firing_id in fired}
    firings = {
        firing.id: firing
        for firing in (
            await session.scalars(select(Firing).where(Firing.id.in_({row["firing_id"] for row in in_app})))
        ).all()
    }
    await inbox.notify_many(
        session,
        org_id=org_id,
        messages=[
            inbox.Message(
                user_id=row["user_id"],
                kind=kinds[row["firing_id"]],
                title=firings[row["firing_id"]].title,
                body=firings[row["firing_id"]].body,
                url=firings[row["firing_id"]].url,
                delivery_id=row["id"],
            )
            for row in in_app
        ],
    )


def _delivery(
    org_id: uuid.UUID,
    firing_id: uuid.UUID,
    channel: str,
    status: str,
    *,
    user_id: uuid.UUID | None = None,
    channel_id: uuid.UUID | None = None,
    last_error: str | None = None,
    in_digest: bool = False,
    not_before: dt.datetime | None = None,
    sent_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A delivery's row, with every column (and ``render_nulls``) so that all of them go in one statement."""
    return {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "firing_id": firing_id,
        "channel": channel,
        "status": status,
        "user_id": user_id,
        "channel_id": channel_id,
        "last_error": last_error,
        "in_digest": in_digest,
        "not_before": not_before,
        "sent_at": sent_at,
        "attempts": 1 if sent_at else 0,
    }


async def report_ready(session: AsyncSession, *, org_id: uuid.UUID, report_id: uuid.UUID, title: str, url: str) -> int:
    """A report is ready: every enabled report rule of the organization fires (once per report, however often
    this is called), in the caller's transaction. Returns how many fired."""
    rules = list(
        (
            await session.scalars(
                select(Rule).where(Rule.org_id == org_id, Rule.kind == "report", Rule.enabled).order_by(Rule.created_at)
            )
        ).all()
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
    told = [(rule, seen) for rule in rules]
    ledger = await ledger_of(session, org_id=org_id, rules=rules, seen=told)
    return await fire(session, ledger=ledger, seen=told, now=dt.datetime.now(dt.UTC))
