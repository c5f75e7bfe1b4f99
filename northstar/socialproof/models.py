"""Social proof tables (schema ``socialproof``), seed 001: sites, templates, notifications; events follow.

A site is a merchant's website: one domain (unique across the platform, since the widget only runs on
it), display settings, a data region, and a public key that the embed snippet carries.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, updated_at, uuid_pk


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (
        UniqueConstraint("domain", name="uq_sites_domain"),
        UniqueConstraint("site_key", name="uq_sites_site_key"),
        UniqueConstraint("org_id", "id", name="uq_sites_org_id_id"),
        Index("ix_sites_org_id_created_at", "org_id", "created_at"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    domain: Mapped[str] = mapped_column(String(253), nullable=False)
    site_key: Mapped[str] = mapped_column(String(64), nullable=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    data_region: Mapped[str] = mapped_column(String(16), nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Template(Base):
    """Branding of a site's popups: a message with variables and the CSS of the widget's shadow root."""

    __tablename__ = "templates"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "site_id"], ["socialproof.sites.org_id", "socialproof.sites.id"],
                             ondelete="CASCADE", name="fk_templates_site"),
        UniqueConstraint("org_id", "id", name="uq_templates_org_id_id"),
        Index("ix_templates_org_id_site_id", "org_id", "site_id"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    css_content: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Notification(Base):
    """What a site shows and when: type, source events, targeting, display rules, anonymization (JSON documents
    validated by the API's models, so the widget reads them as they were accepted)."""

    __tablename__ = "notifications"
    __table_args__ = (
        ForeignKeyConstraint(["org_id", "site_id"], ["socialproof.sites.org_id", "socialproof.sites.id"],
                             ondelete="CASCADE", name="fk_notifications_site"),
        ForeignKeyConstraint(["org_id", "template_id"], ["socialproof.templates.org_id", "socialproof.templates.id"],
                             name="fk_notifications_template"),
        UniqueConstraint("org_id", "id", name="uq_notifications_org_id_id"),
        Index("ix_notifications_org_id_site_id", "org_id", "site_id"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    channels: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    source: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    targeting: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    display: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    anonymization: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
