"""Sending deliveries (the queue task ``alerts.deliver``), daily digests, and the delivery log.

A try reads and marks the delivery in one transaction, sends with no transaction open, and records the outcome
in another. In-app messages are written in the first transaction. E-mail waits while its member is in quiet
hours (held until they end, then queued again). A failed try is recorded (attempts, the error) and raised as
``DeliveryFailed`` for the queue to retry with backoff; after the last attempt the delivery is failed.

A destination that keeps failing is turned off: a shared channel, or a member's e-mail, failing for
``disable_after_hours`` with no success in between. The organization's admins (and, for e-mail, the member) are
told in-app; later deliveries to it are skipped until it is turned back on.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.models import Channel, Delivery, Firing, Preferences, Rule
from northstar.alerts.senders import Alert, DeliveryError, Email, email_of
from northstar.alerts.service import inbox
from northstar.alerts.service.channels import send_to_channel
from northstar.alerts.service.firing import queue_delivery
from northstar.alerts.service.preferences import preferences_of, quiet_until, stored_preferences, zone_of
from northstar.alerts.service.unsubscribe import Subscription, link_for
from northstar.core.db import Database, fetch_rows_page, settings_of
from northstar.core.mailer import send_email
from northstar.core.permissions import Principal
from northstar.settings import Settings

FINISHED = frozenset({"sent", "failed", "skipped", "digested"})
ERROR_LIMIT = 1000


class DeliveryFailed(Exception):
    """A try failed; the delivery is tried again after the queue's backoff."""


Send = Callable[[], Awaitable[bool]]  # one try: True when sent, False when there was nowhere to send it


async def deliver(database: Database, *, org_id: uuid.UUID, delivery_id: uuid.UUID, max_attempts: int) -> None:
    """One try of a delivery (the task ``alerts.deliver``); ``DeliveryFailed`` asks the queue to try again."""
    async with database.tenant_transaction(org_id=org_id) as session:
        send = await _prepare(session, delivery_id=delivery_id, now=dt.datetime.now(dt.UTC))
    if send is None:
        return
    error, sent = None, False
    try:
        sent = await send()
    except DeliveryError as exc:
        error = str(exc)
    except (smtplib.SMTPException, OSError) as exc:  # the SMTP server refused, or could not be reached
        error = f"{exc.__class__.__name__}: {exc}"
    async with database.tenant_transaction(org_id=org_id) as session:
        again = await _record(session, delivery_id=delivery_id, sent=sent, error=error, max_attempts=max_attempts)
    if again:
        raise DeliveryFailed(error)


def _skip(delivery: Delivery, reason: str) -> None:
    delivery.status, delivery.last_error = "skipped", reason


async def _prepare(session: AsyncSession, *, delivery_id: uuid.UUID, now: dt.datetime) -> Send | None:
    """Mark the try (or finish it here: in-app, skipped, held for quiet hours) and say what to send."""
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status in FINISHED or (delivery.status == "held" and delivery.in_digest):
        return None
    settings = settings_of(session)
    if delivery.channel == "slack":
        channel = await session.get(Channel, delivery.channel_id)
        if channel is None or channel.status != "active":
            _skip(delivery, "The channel is turned off")
            return None
        alert = (await _alerts(session, delivery))[0]
        delivery.status, delivery.attempts = "sending", delivery.attempts + 1

        async def post() -> bool:
            await send_to_channel(settings, channel, alert)
            return True

        return post
    assert delivery.user_id is not None  # e-mail and in-app go to a member
    members = await accounts.members_of(session, org_id=delivery.org_id, user_ids=[delivery.user_id])
    if not members:
        _skip(delivery, "Not a member any more")
        return None
    if delivery.channel == "in_app":
        await _write_inbox(session, delivery)
        delivery.status, delivery.attempts, delivery.sent_at = "sent", delivery.attempts + 1, now
        return None
    preferences = await preferences_of(session, org_id=delivery.org_id, user_id=delivery.user_id)
    if preferences.email_disabled_at is not None:
        _skip(delivery, "E-mail is turned off for this member")
        return None
    until = quiet_until(now, await zone_of(session, preferences), preferences.quiet_start, preferences.quiet_end)
    if until is not None:
        delivery.status, delivery.not_before = "held", until
        await queue_delivery(session, delivery, schedule_at=until)
        return None
    email = await _email(session, delivery, settings)
    delivery.status, delivery.attempts, delivery.not_before = "sending", delivery.attempts + 1, None
    to = members[0].email

    async def mail() -> bool:
        return await send_email(
            settings.smtp,
            to=to,
            subject=email.subject,
            body=email.text,
            html=email.html,
            headers={**_email_headers(email), "X-Northstar-Delivery": str(delivery_id)},
        )

    return mail


def _email_headers(email: Email) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe, and the marks of an automatic message (no auto-replies to it)."""
    return {
        "List-Unsubscribe": f"<{email.unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-Auto-Response-Suppress": "All",
    }


async def _write_inbox(session: AsyncSession, delivery: Delivery) -> None:
    firing = await session.get(Firing, delivery.firing_id)
    rule = await session.get(Rule, firing.rule_id) if firing is not None else None
    if firing is None or rule is None or delivery.user_id is None:
        return
    await inbox.notify(
        session,
        org_id=delivery.org_id,
        user_id=delivery.user_id,
        kind=rule.kind,
        title=firing.title,
        body=firing.body,
        url=firing.url,
        delivery_id=delivery.id,
    )


async def _alerts(session: AsyncSession, delivery: Delivery) -> list[Alert]:
    """What the delivery carries: its firing's alert, or (a digest) those of the deliveries it collected."""
    organization = await accounts.get_organization(session, org_id=delivery.org_id)
    query = select(Firing, Rule.name).join(Rule, Rule.id == Firing.rule_id)
    if delivery.firing_id is not None:
        query = query.where(Firing.id == delivery.firing_id)
    else:
        query = query.join(Delivery, Delivery.firing_id == Firing.id).where(Delivery.digest_id == delivery.id)
    rows = (await session.execute(query.order_by(Firing.fired_at, Firing.id))).all()
    return [
        Alert(title=firing.title, body=firing.body, url=firing.url, context=f"Rule “{name}” · {organization.name}")
        for firing, name in rows
    ]


async def _email(session: AsyncSession, delivery: Delivery, settings: Settings) -> Email:
    """One alert's e-mail, or the digest's; unsubscribing from one alert's stops its kind, from a digest all."""
    assert delivery.user_id is not None
    organization = await accounts.get_organization(session, org_id=delivery.org_id)
    alerts = await _alerts(session, delivery)
    if delivery.firing_id is not None:
        firing = await session.get(Firing, delivery.firing_id)
        rule = await session.get(Rule, firing.rule_id) if firing is not None else None
        kind = rule.kind if rule is not None else "all"
        subject, intro = f"[{organization.name}] {alerts[0].title}", ""
    else:
        kind = "all"
        count = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
        subject, intro = f"[{organization.name}] Daily digest: {count}", f"{count} since the last digest."
    subscription = Subscription(org_id=delivery.org_id, user_id=delivery.user_id, kind=kind)
    link, page = link_for(settings, subscription), link_for(settings, subscription, page=True)
    footer = (
        f"You get {kind} alerts of {organization.name} by e-mail because of your notification preferences."
        if kind != "all"
        else f"You get a daily digest of the alerts of {organization.name} because of your notification preferences."
    )
    return email_of(alerts, subject=subject, intro=intro, unsubscribe_url=link, unsubscribe_page=page, footer=footer)


async def _record(
    session: AsyncSession, *, delivery_id: uuid.UUID, sent: bool, error: str | None, max_attempts: int
) -> bool:
    """The try's outcome on the delivery and its destination; True when it is to be tried again."""
    now = dt.datetime.now(dt.UTC)
    delivery = await session.get(Delivery, delivery_id, with_for_update=True)
    if delivery is None:
        return False
    destination = await _destination(session, delivery)
    if error is None:
        if sent:
            delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
        else:
            _skip(delivery, "No SMTP server is configured")
        if destination is not None:
            destination.healthy()
        return False
    delivery.last_error = error[:ERROR_LIMIT]
    turned_off = destination is not None and await destination.failed(session, error=delivery.last_error, now=now)
    if turned_off or delivery.attempts >= max_attempts:
        delivery.status = "failed"
        return False
    delivery.status = "retrying"
    return True


@dataclass
class _Destination:
    """A shared channel, or a member's e-mail: what a failure counts against and what gets turned off."""

    channel: Channel | None
    preferences: Preferences | None

    def healthy(self) -> None:
        if self.channel is not None:
            self.channel.failing_since = None
        elif self.preferences is not None:
            self.preferences.email_failing_since = None

    async def failed(self, session: AsyncSession, *, error: str, now: dt.datetime) -> bool:
        """Count the failure; True when the destination has failed long enough to be turned off (it now is)."""
        limit = dt.timedelta(hours=settings_of(session).alerts.disable_after_hours)
        if self.channel is not None:
            channel = self.channel
            channel.last_error, channel.failing_since = error, channel.failing_since or now
            if channel.status != "active" or now - channel.failing_since < limit:
                return False
            channel.status, channel.disabled_at = "disabled", now
            await inbox.notify_admins(
                session,
                org_id=channel.org_id,
                title=f"Slack channel “{channel.name}” was turned off",
                body=f"Alerts could not be posted to it since {channel.failing_since:%d %B %Y %H:%M} UTC "
                f"(last error: {error}). Fix it, then turn it back on (enabled: true) in its settings.",
            )
            return True
        preferences = self.preferences
        if preferences is None:
            return False
        preferences.email_last_error = error
        preferences.email_failing_since = preferences.email_failing_since or now
        if preferences.email_disabled_at is not None or now - preferences.email_failing_since < limit:
            return False
        preferences.email_disabled_at = now
        member = await accounts.members_of(session, org_id=preferences.org_id, user_ids=[preferences.user_id])
        address = member[0].email if member else "a member"
        await inbox.notify_admins(
            session,
            org_id=preferences.org_id,
            title=f"Alert e-mail to {address} was turned off",
            body=f"E-mail could not be delivered since {preferences.email_failing_since:%d %B %Y %H:%M} UTC "
            f"(last error: {error}). It is back on once the member turns it on in their notification preferences.",
            also=preferences.user_id,
        )
        return True


async def _destination(session: AsyncSession, delivery: Delivery) -> _Destination | None:
    if delivery.channel == "slack" and delivery.channel_id is not None:
        channel = await session.get(Channel, delivery.channel_id, with_for_update=True)
        return _Destination(channel, None) if channel is not None else None
    if delivery.channel == "email" and delivery.user_id is not None:
        preferences = await stored_preferences(session, org_id=delivery.org_id, user_id=delivery.user_id)
        return _Destination(None, preferences)
    return None


async def send_digests(session: AsyncSession, *, org_id: uuid.UUID) -> int:
    """Each member's e-mails whose digest time has come go out as one digest (a delivery of its own, queued)."""
    due = (
        Delivery.org_id == org_id,
        Delivery.status == "held",
        Delivery.in_digest,
        Delivery.not_before <= dt.datetime.now(dt.UTC),
    )
    members = (await session.scalars(select(Delivery.user_id).where(*due).distinct())).all()
    for user_id in members:
        digest = Delivery(id=uuid.uuid4(), org_id=org_id, channel="email", user_id=user_id, status="queued")
        session.add(digest)
        await session.flush()
        await session.execute(
            update(Delivery).where(*due, Delivery.user_id == user_id).values(status="digested", digest_id=digest.id)
        )
        await queue_delivery(session, digest)
    return len(members)


def _history_query(principal: Principal) -> Select[Delivery, str, uuid.UUID, str]:
    """Founders and admins see every delivery; others those sent to them and those of the rules they made."""
    query = (
        select(Delivery, Firing.title, Rule.id, Rule.name)
        .outerjoin(Firing, Firing.id == Delivery.firing_id)
        .outerjoin(Rule, Rule.id == Firing.rule_id)
        .where(Delivery.org_id == principal.org_id)
    )
    if not principal.can("update", "alerts"):
        query = query.where(or_(Delivery.user_id == principal.user_id, Rule.created_by == principal.user_id))
    return query


async def list_history(
    session: AsyncSession,
    *,
    principal: Principal,
    rule_id: uuid.UUID | None,
    channel: str | None,
    status: str | None,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """The delivery log, newest first: each delivery's status, attempts and last error."""
    query = _history_query(principal)
    if rule_id is not None:
        query = query.where(Rule.id == rule_id)
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    if status is not None:
        query = query.where(Delivery.status == status)
    rows, total = await fetch_rows_page(
        session, query.order_by(Delivery.created_at.desc(), Delivery.id), offset=offset, limit=limit
    )
    return [
        {
            "id": delivery.id,
            "rule_id": found_rule,
            "rule_name": rule_name,
            "title": title or "Daily digest",
            "channel": delivery.channel,
            "channel_id": delivery.channel_id,
            "user_id": delivery.user_id,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "last_error": delivery.last_error,
            "not_before": delivery.not_before,
            "digest_id": delivery.digest_id,
            "sent_at": delivery.sent_at,
            "created_at": delivery.created_at,
        }
        for delivery, title, found_rule, rule_name, *_ in rows
    ], total
