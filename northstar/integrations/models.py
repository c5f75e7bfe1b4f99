"""Integration tables (schema ``integrations``): connected accounts, sync runs, source records, webhook deliveries,
and the OAuth trips and consents of accounts connected through a provider's consent screen."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.crypto import EncryptedColumn, register_encrypted_column
from northstar.core.db import Base, created_at, org_fk, tenant_fk, updated_at, uuid_pk

_EMPTY = text("'{}'::jsonb")


def integration_fk(table: str) -> ForeignKeyConstraint:
    """The composite key to the integration a row came from (same org, same id); its rows go with it."""
    return tenant_fk("integration_id", "integrations.integrations", name=f"fk_{table}_integration")


class Integration(Base):
    """One connected account of a provider; ``state`` holds each stream's cursor. ``reconnect``: its OAuth grant
    could not be refreshed, and someone must go through the provider's consent again."""

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_integrations_org_id_id"),
        CheckConstraint("status IN ('active', 'paused', 'error', 'reconnect')", name="status"),
        Index("ix_integrations_org_id_created_at", "org_id", "created_at"),
        {"schema": "integrations"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    credentials_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=_EMPTY)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


register_encrypted_column(EncryptedColumn("integrations.integrations", "credentials_encrypted"))


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        integration_fk("sync_runs"),
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        Index("ix_sync_runs_integration", "org_id", "integration_id", "queued_at"),
        {"schema": "integrations"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    trigger: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fetched: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=_EMPTY)
    error: Mapped[str | None] = mapped_column(Text)


class Record(Base):
    """A source object as fetched, by stream (``customers``, ``invoices``, …) and its id at the source."""

    __tablename__ = "records"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "stream", "external_id", name="pk_records"),
        integration_fk("records"),
        {"schema": "integrations"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    stream: Mapped[str] = mapped_column(String(40), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        integration_fk("webhook_deliveries"),
        UniqueConstraint("integration_id", "event_id", name="uq_webhook_deliveries_integration_id"),
        CheckConstraint("status IN ('queued', 'processed', 'failed')", name="status"),
        {"schema": "integrations"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    topic: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class OAuthState(Base):
    """One trip to a provider's consent screen: the SHA-256 of its ``state``, who started it in which org, what to
    connect (a new integration's name and settings, or the integration to reconnect), the PKCE verifier; used once,
    before it expires."""

    __tablename__ = "oauth_states"
    __table_args__ = (
        integration_fk("oauth_states"),
        Index("ix_oauth_states_expires_at", "expires_at"),
        {"schema": "integrations"},
    )

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[uuid.UUID] = org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("auth.users.id", ondelete="CASCADE"), nullable=False
    )
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    integration_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    code_verifier: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthConsent(Base):
    """Who connected which provider account through its consent screen, the scopes it granted, when, until when the
    access token works, and its revocation. Kept after the integration is disconnected (``integration_id`` then
    names an integration that is gone): the record of who gave the platform access, and when that ended."""

    __tablename__ = "oauth_consents"
    __table_args__ = (
        Index("ix_oauth_consents_org_id_granted_at", "org_id", "granted_at"),
        Index(
            "uq_oauth_consents_integration_id",
            "integration_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
        CheckConstraint("revocation IN ('disconnected', 'reconnected')", name="revocation"),
        {"schema": "integrations"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    account: Mapped[str | None] = mapped_column(String(255))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    revocation: Mapped[str | None] = mapped_column(String(20))
    provider_revocation: Mapped[str | None] = mapped_column(String(300))
