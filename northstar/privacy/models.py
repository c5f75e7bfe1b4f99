"""Data-subject requests, consent logs and each org's privacy settings (schema ``privacy``, forced RLS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, uuid_pk


class PrivacyRequest(Base):
    """An export or an erasure. The subject is kept as a keyed digest (so the request outlives the erasure without
    naming the person); an export's subject is also kept encrypted until its job has run."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_requests_org_id_id"),
        CheckConstraint("kind IN ('export', 'erasure')", name="kind"),
        CheckConstraint("subject_type IN ('user', 'visitor', 'visitor_hash')", name="subject_type"),
        CheckConstraint("status IN ('pending', 'running', 'completed', 'failed')", name="status"),
        Index("ix_requests_org_id_created_at", "org_id", "created_at"),
        {"schema": "privacy"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    subject_type: Mapped[str] = mapped_column(String(20), nullable=False)
    subject_digest: Mapped[str] = mapped_column(String(64), nullable=False)
    subject_encrypted: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), nullable=False, server_default="pending")
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    file_key: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsentLog(Base):
    """One consent event: a widget visitor's opt-in or opt-out, or a merchant's change of privacy settings."""

    __tablename__ = "consent_logs"
    __table_args__ = (
        CheckConstraint("source IN ('widget', 'merchant')", name="source"),
        CheckConstraint("action IN ('opt_in', 'opt_out', 'settings_changed')", name="action"),
        Index("ix_consent_logs_org_id_occurred_at", "org_id", "occurred_at"),
        {"schema": "privacy"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    site_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    action: Mapped[str] = mapped_column(String(20), nullable=False)
    subject_digest: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class PrivacySettings(Base):
    """How long the org's audit trail is kept: 30 days to 7 years (2,557 days, the default)."""

    __tablename__ = "settings"
    __table_args__ = (
        CheckConstraint("audit_retention_days BETWEEN 30 AND 2557", name="audit_retention_days"),
        {"schema": "privacy"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    audit_retention_days: Mapped[int] = mapped_column(Integer, nullable=False, server_default="2557")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
