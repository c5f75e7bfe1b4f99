"""The reports module's tables: the coach's voice, reports and their schedules, and share links."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, tenant_fk, updated_at, uuid_pk

Tone = Literal["upbeat", "neutral"]
Length = Literal["short", "standard", "detailed"]


class CoachSettings(Base):
    """The coach's voice for one organization: its tone and how long its narratives are."""

    __tablename__ = "coach_settings"
    __table_args__ = (
        CheckConstraint("tone IN ('upbeat', 'neutral')", name="tone"),
        CheckConstraint("length IN ('short', 'standard', 'detailed')", name="length"),
        {"schema": "reports"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    tone: Mapped[Tone] = mapped_column(String(10), nullable=False, server_default="upbeat")
    length: Mapped[Length] = mapped_column(String(10), nullable=False, server_default="standard")
    updated_at: Mapped[datetime] = updated_at()


class Report(Base):
    """One generated report (the seed's ``Reports``): what it covers, the facts it was written from, its
    narrative, and its files in the object store. An ``investor_dashboard`` is published whole by another module
    (``service.publishing``), never queued here."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('weekly_digest', 'monthly_report', 'investor_update', 'investor_dashboard')", name="kind"
        ),
        CheckConstraint("status IN ('queued', 'running', 'completed', 'failed')", name="status"),
        UniqueConstraint("org_id", "id", name="uq_reports_org_id_id"),
        Index("ix_reports_org_id_created_at", "org_id", "created_at"),
        {"schema": "reports"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    formats: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="queued")
    title: Mapped[str | None] = mapped_column(Text)
    narrative: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    recommendations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    generator: Mapped[str | None] = mapped_column(String(120))
    checks: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default=text("'[]'"))
    files: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))
    error: Mapped[str | None] = mapped_column(Text)
    scheduled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReportSchedule(Base):
    """When an organization's reports of one kind are made, in its own time zone; ``last_period`` is the start of
    the last period made on schedule, so a period is made once however often the scheduler looks."""

    __tablename__ = "schedules"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "kind", name="pk_schedules"),
        CheckConstraint("kind IN ('weekly_digest', 'monthly_report', 'investor_update')", name="kind"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("day BETWEEN 1 AND 28", name="day"),
        CheckConstraint("hour BETWEEN 0 AND 23", name="hour"),
        {"schema": "reports"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    weekday: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))  # Monday, for weekly
    day: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))  # of the month, for monthly
    hour: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("8"))
    formats: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{html,pdf}'"))
    last_period: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = updated_at()


class ShareLink(Base):
    """A link that shows a report, or the live investor dashboard, to whoever holds it: the token is kept only as
    its hash, and so is the optional passcode."""

    __tablename__ = "share_links"
    __table_args__ = (
        tenant_fk("report_id", "reports.reports", name="fk_share_links_report"),
        Index("ix_share_links_org_id", "org_id"),
        {"schema": "reports"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    report_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # none: the live investor dashboard
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    passcode_hash: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(200), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    views: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    last_viewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
