"""Outbound webhook tables (schema ``webhooks``): merchants' endpoints, each message's delivery to an endpoint
(seed 001's ``webhook_deliveries``, a superset of its columns) and the history of every attempt.

An endpoint's signing secrets are encrypted with the row's id as associated data; during a rotation's grace period
the previous secret is kept (and signs too) until ``previous_secret_expires_at``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.crypto import EncryptedColumn, register_encrypted_column
from northstar.core.db import Base, created_at, org_fk, tenant_fk, updated_at, uuid_pk

EVENT_TYPES = (
    "event.received",
    "conversion.created",
    "notification.updated",
    "ab_test.completed",
    "subscription.changed",
    "quota.reached",
)
DELIVERY_STATUSES = ("pending", "retrying", "succeeded", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Endpoint(Base):
    """A merchant's receiver: its URL, the event types it subscribes to, its secrets and its health."""

    __tablename__ = "endpoints"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_endpoints_org_id_id"),
        CheckConstraint("status IN ('active', 'disabled')", name="status"),
        Index("ix_endpoints_org_id_created_at", "org_id", "created_at"),
        {"schema": "webhooks"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    description: Mapped[str] = mapped_column(String(500), nullable=False, server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


register_encrypted_column(EncryptedColumn("webhooks.endpoints", "secret_encrypted"))
register_encrypted_column(EncryptedColumn("webhooks.endpoints", "previous_secret_encrypted"))


class MessageDelivery(Base):
    """One message to one endpoint: the seed's ``webhook_deliveries`` (``integration_id`` is the seed's link to an
    integration, unused by merchant endpoints) plus the endpoint, the message id every attempt repeats
    (``webhook-id``), and the last attempt's outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_webhook_deliveries_org_id_id"),
        tenant_fk("endpoint_id", "webhooks.endpoints", name="fk_webhook_deliveries_endpoint"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_deliveries_endpoint", "org_id", "endpoint_id", "created_at"),
        {"schema": "webhooks"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    endpoint_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    integration_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    message_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str] = mapped_column(String(40), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pending")
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_response_code: Mapped[int | None] = mapped_column(Integer)
    last_response_ms: Mapped[int | None] = mapped_column(Integer)
    last_response_body: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class DeliveryAttempt(Base):
    """One try of a delivery: when, what the receiver answered (status, time, first bytes) or the error."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        tenant_fk("delivery_id", "webhooks.webhook_deliveries", name="fk_delivery_attempts_delivery"),
        Index("ix_delivery_attempts_delivery", "org_id", "delivery_id", "attempted_at"),
        {"schema": "webhooks"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    delivery_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    manual: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    response_code: Mapped[int | None] = mapped_column(Integer)
    response_ms: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
