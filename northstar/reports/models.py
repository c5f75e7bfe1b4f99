"""The coach's tables: how each organization wants to be coached."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, updated_at


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
    tone: Mapped[str] = mapped_column(String(10), nullable=False, server_default="upbeat")
    length: Mapped[str] = mapped_column(String(10), nullable=False, server_default="standard")
    updated_at: Mapped[datetime] = updated_at()
