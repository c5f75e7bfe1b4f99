"""Alert tables (schema ``alerts``; the seed's Notifications table: "configuration and history of alerts (email,
Slack, in-app)"): rules and whom they notify, shared Slack channels, each member's preferences, what fired, each
delivery of it, and the in-app inbox.

Everything is under forced row-level security by organization; what belongs to one member (preferences, inbox,
their deliveries) is narrowed to them by the services.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.crypto import EncryptedColumn, register_encrypted_column
from northstar.core.db import Base, created_at, org_fk, tenant_fk, updated_at, uuid_pk

RULE_KINDS = ("threshold", "change", "anomaly", "goal", "integration", "report")
PERSONAL_CHANNELS = ("email", "in_app")  # what a member chooses per rule kind
CHANNEL_KINDS = ("slack_webhook", "slack_bot")  # shared destinations an admin configures
DELIVERY_CHANNELS = ("email", "in_app", "slack")
DELIVERY_STATUSES = ("queued", "held", "sending", "retrying", "sent", "failed", "skipped", "digested")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _member_fk(table: str) -> ForeignKeyConstraint:
    """A member of the row's own organization; the row goes when they leave it."""
    return ForeignKeyConstraint(
        ["org_id", "user_id"],
        ["core.memberships.org_id", "core.memberships.user_id"],
        ondelete="CASCADE",
        name=f"fk_{table}_member",
    )


class Channel(Base):
    """A shared Slack destination: an incoming webhook, or a bot token and the channel it posts to. The secret (the
    webhook URL or the token) is encrypted with the row's id as associated data."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_channels_org_id_id"),
        CheckConstraint(_in("kind", CHANNEL_KINDS), name="kind"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        {"schema": "alerts"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    target: Mapped[str] = mapped_column(String(100), nullable=False, server_default="")  # a bot's Slack channel
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


register_encrypted_column(EncryptedColumn("alerts.channels", "secret_encrypted"))


class Rule(Base):
    """When to alert (``kind`` and its ``params``), and how often at most (``cooldown_minutes``)."""

    __tablename__ = "rules"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_rules_org_id_id"),
        CheckConstraint(_in("kind", RULE_KINDS), name="kind"),
        CheckConstraint("cooldown_minutes >= 0", name="cooldown"),
        Index("ix_rules_org_id_created_at", "org_id", "created_at"),
        {"schema": "alerts"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    cooldown_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    last_evaluated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)  # why the rule could not be evaluated, last time
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class RuleRecipient(Base):
    """A member a rule notifies personally, on the channels their preferences choose."""

    __tablename__ = "rule_recipients"
    __table_args__ = (
        PrimaryKeyConstraint("rule_id", "user_id", name="pk_rule_recipients"),
        tenant_fk("rule_id", "alerts.rules", name="fk_rule_recipients_rule"),
        _member_fk("rule_recipients"),
        {"schema": "alerts"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    rule_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class RuleChannel(Base):
    """A shared channel a rule posts to."""

    __tablename__ = "rule_channels"
    __table_args__ = (
        PrimaryKeyConstraint("rule_id", "channel_id", name="pk_rule_channels"),
        tenant_fk("rule_id", "alerts.rules", name="fk_rule_channels_rule"),
        tenant_fk("channel_id", "alerts.channels", name="fk_rule_channels_channel"),
        {"schema": "alerts"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    rule_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    channel_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class Preferences(Base):
    """How one member wants alerts: channels per rule kind, their time zone and quiet hours, a daily digest; and
    the state of their e-mail address as a channel (failing since, turned off)."""

    __tablename__ = "preferences"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "user_id", name="pk_preferences"),
        _member_fk("preferences"),
        CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour"),
        CheckConstraint("(quiet_start IS NULL) = (quiet_end IS NULL)", name="quiet_hours"),
        {"schema": "alerts"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # None: the organization's
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    digest: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    digest_hour: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="8")
    channels: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    email_failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    email_last_error: Mapped[str | None] = mapped_column(Text)
    email_disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at()


class Firing(Base):
    """A rule that fired: once per rule, day and subject (a metric, a goal, an integration, a report), whatever
    the number of evaluations. ``resolved_at`` is set once its condition no longer holds (an event is resolved as
    it fires)."""

    __tablename__ = "firings"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_firings_org_id_id"),
        UniqueConstraint("rule_id", "day", "subject", name="uq_firings_rule_id_day_subject"),
        tenant_fk("rule_id", "alerts.rules", name="fk_firings_rule"),
        Index("ix_firings_rule_subject", "org_id", "rule_id", "subject", "fired_at"),
        {"schema": "alerts"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    rule_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    subject: Mapped[str] = mapped_column(String(200), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """One firing sent on one channel: to a member (e-mail, in-app) or a shared Slack channel. A member's e-mails
    in digest mode wait ``in_digest`` until the daily digest carries them (``digest_id``); the digest is a delivery
    of its own, with no firing."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_deliveries_org_id_id"),
        tenant_fk("firing_id", "alerts.firings", name="fk_deliveries_firing"),
        tenant_fk("digest_id", "alerts.deliveries", name="fk_deliveries_digest"),
        tenant_fk("channel_id", "alerts.channels", name="fk_deliveries_channel"),
        _member_fk("deliveries"),
        CheckConstraint(_in("channel", DELIVERY_CHANNELS), name="channel"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint(
            "(channel = 'slack' AND channel_id IS NOT NULL AND user_id IS NULL)"
            " OR (channel <> 'slack' AND user_id IS NOT NULL AND channel_id IS NULL)",
            name="target",
        ),
        CheckConstraint("firing_id IS NOT NULL OR channel = 'email'", name="digest"),
        Index("ix_deliveries_org_id_created_at", "org_id", "created_at"),
        Index("ix_deliveries_status", "org_id", "status", "not_before"),
        {"schema": "alerts"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    firing_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    digest_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    in_digest: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # held until then
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class InboxMessage(Base):
    """An in-app notification for one member: an alert, or a notice to admins (a channel turned off)."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("delivery_id", name="uq_inbox_delivery_id"),  # a delivery retried writes it once
        _member_fk("inbox"),
        Index("ix_inbox_user", "org_id", "user_id", "created_at"),
        {"schema": "alerts"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)  # a rule kind, or "notice"
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str | None] = mapped_column(Text)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
