"""The audit trail: append-only (the app role may only INSERT and SELECT) and hash-chained per org."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, org_fk, uuid_pk


class AuditEvent(Base):
    """``seq``, ``prev_hash`` and ``hash`` are filled by a database trigger that serialises per org."""

    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("org_id", "seq", name="uq_audit_events_org_id_seq"),
        Index("ix_audit_events_org_id_occurred_at", "org_id", "occurred_at"),
        {"schema": "core"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor_type: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    action: Mapped[str] = mapped_column(String(120), nullable=False)
    target_type: Mapped[str] = mapped_column(String(60), nullable=False, server_default="")
    target_id: Mapped[str] = mapped_column(String(120), nullable=False, server_default="")
    ip: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    user_agent: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    request_id: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    prev_hash: Mapped[str] = mapped_column(Text, nullable=False)
    hash: Mapped[str] = mapped_column(Text, nullable=False)
    # The chain covers the personal fields through this hash (with a per-row salt), so erasure can overwrite them.
    personal_salt: Mapped[str | None] = mapped_column(Text)
    personal_hash: Mapped[str] = mapped_column(Text, nullable=False)
    pseudonymised_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditChainHead(Base):
    """The latest ``seq``/``hash`` per org; only the chaining trigger (SECURITY DEFINER) writes it."""

    __tablename__ = "audit_chain_heads"
    __table_args__ = {"schema": "core"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(Text, nullable=False)


class AuditCheckpoint(Base):
    """Where retention cut an org's chain: the last removed entry's ``seq`` and ``hash`` (the next one links to it)."""

    __tablename__ = "audit_checkpoints"
    __table_args__ = {"schema": "core"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hash: Mapped[str] = mapped_column(Text, nullable=False)
    pruned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
