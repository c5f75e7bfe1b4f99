"""Social proof tables (schema ``socialproof``), seed 001: sites, templates, notifications, rollups of events.

A site is a merchant's website: one domain (once per organization; a site whose domain overlaps another
organization's site proves control of it before it serves), display settings, a data region, and a public key
that the embed snippet carries. Raw events live in
``notification_events`` (partitioned by month and site hash, created by SQL functions, so not mapped here);
what dashboards read are the rollups below, kept current by ``socialproof.ingest_staged``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Double,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, updated_at, uuid_pk


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (
        UniqueConstraint("org_id", "domain", name="uq_sites_org_id_domain"),
        UniqueConstraint("site_key", name="uq_sites_site_key"),
        UniqueConstraint("org_id", "id", name="uq_sites_org_id_id"),
        Index("ix_sites_org_id_created_at", "org_id", "created_at"),
        Index("ix_sites_domain", "domain"),
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
    verification_token: Mapped[str] = mapped_column(String(64), nullable=False)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    domain_set_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("now()")
    )
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


# children of a domain: reverse(domain) LIKE reverse('.' || parent) || '%'
Index(
    "ix_sites_reversed_domain",
    func.reverse(Site.domain).label("reversed_domain"),
    postgresql_ops={"reversed_domain": "text_pattern_ops"},
)


class Template(Base):
    """Branding of a site's popups: a message with variables and the CSS of the widget's shadow root."""

    __tablename__ = "templates"
    __table_args__ = (
        ForeignKeyConstraint(
            ["org_id", "site_id"],
            ["socialproof.sites.org_id", "socialproof.sites.id"],
            ondelete="CASCADE",
            name="fk_templates_site",
        ),
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
        ForeignKeyConstraint(
            ["org_id", "site_id"],
            ["socialproof.sites.org_id", "socialproof.sites.id"],
            ondelete="CASCADE",
            name="fk_notifications_site",
        ),
        ForeignKeyConstraint(
            ["org_id", "template_id"],
            ["socialproof.templates.org_id", "socialproof.templates.id"],
            name="fk_notifications_template",
        ),
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
    goal: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("""'{"eventTypes": ["purchase", "signup"]}'::jsonb""")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


NO_NOTIFICATION = uuid.UUID(int=0)
_NO_NOTIFICATION_SQL = text("'00000000-0000-0000-0000-000000000000'::uuid")


def _site_fk(table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["org_id", "site_id"],
        ["socialproof.sites.org_id", "socialproof.sites.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_site",
    )


def _grain_check() -> CheckConstraint:
    return CheckConstraint("grain IN ('minute', 'hour', 'day')", name="grain")


class _Bucketed:
    """A rollup row's key: a site's bucket of a grain, for one notification (or ``NO_NOTIFICATION``)."""

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    grain: Mapped[str] = mapped_column(String(6), nullable=False)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), nullable=False, server_default=_NO_NOTIFICATION_SQL
    )


class EventCount(_Bucketed, Base):
    """Events per bucket (minute and hour in UTC, day in the site's time zone), notification and type.

    ``notification_id`` is ``NO_NOTIFICATION`` for events about no notification (page views, goals); a
    ``conversion`` row counts goal events attributed to a click on the notification.
    """

    __tablename__ = "event_counts"
    __table_args__ = (
        PrimaryKeyConstraint("site_id", "grain", "bucket", "notification_id", "event_type", name="pk_event_counts"),
        _grain_check(),
        _site_fk("event_counts"),
        {"schema": "socialproof"},
    )

    event_type: Mapped[str] = mapped_column(String(20), nullable=False)
    events: Mapped[int] = mapped_column(BigInteger, nullable=False)


class VisitorHashes(Base):
    """The visitor hashes one ingest added to a minute; folded into ``VisitorSketch`` rows by a periodic task."""

    __tablename__ = "visitor_hashes"
    __table_args__ = (
        _site_fk("visitor_hashes"),
        Index("ix_visitor_hashes_site_minute", "site_id", "minute"),
        Index("ix_visitor_hashes_org_id", "org_id", "id"),
        {"schema": "socialproof"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), nullable=False, server_default=_NO_NOTIFICATION_SQL
    )
    minute: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    day: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    hashes: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)


class VisitorSketch(_Bucketed, Base):
    """HyperLogLog registers of the visitors of a bucket (see ``sketch.py``): unique counts that merge."""

    __tablename__ = "visitor_sketches"
    __table_args__ = (
        PrimaryKeyConstraint("site_id", "grain", "bucket", "notification_id", name="pk_visitor_sketches"),
        _grain_check(),
        _site_fk("visitor_sketches"),
        {"schema": "socialproof"},
    )

    registers: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class Conversion(Base):
    """A goal event within 7 days after a click on a notification: one per visitor and notification."""

    __tablename__ = "conversions"
    __table_args__ = (
        PrimaryKeyConstraint("site_id", "notification_id", "visitor_id", name="pk_conversions"),
        _site_fk("conversions"),
        {"schema": "socialproof"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    visitor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    clicked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    converted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class VisitorSalt(Base):
    """The random salt of a UTC day's visitor hashes (platform-wide; deleted after two days)."""

    __tablename__ = "visitor_salts"
    __table_args__ = ({"schema": "socialproof"},)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class EventMonth(Base):
    """A month of raw events (platform-wide): when its rollups were complete, it was archived and dropped."""

    __tablename__ = "event_months"
    __table_args__ = ({"schema": "socialproof"},)

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    rolled_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dropped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


FIELD_TYPES = ("text", "number", "boolean", "date", "enum")


class CustomFieldDefinition(Base):
    """A custom field of an organization (seed 001 ``custom_field_definitions``): values of it ride on events and
    land on visitor profiles, checked against this definition at ingestion."""

    __tablename__ = "custom_field_definitions"
    __table_args__ = (
        UniqueConstraint("org_id", "key", name="uq_custom_field_definitions_org_id_key"),
        CheckConstraint("field_type IN ('text', 'number', 'boolean', 'date', 'enum')", name="field_type"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    key: Mapped[str] = mapped_column(String(40), nullable=False)
    field_type: Mapped[str] = mapped_column(String(10), nullable=False)
    options: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    default_value: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class VisitorProfile(Base):
    """What ingestion knows about one visitor of a site (seed 001 ``visitor_profiles``), kept by
    ``socialproof.ingest_profiled`` as events are stored; ``behavior_score`` is computed from ``engagement``."""

    __tablename__ = "visitor_profiles"
    __table_args__ = (
        UniqueConstraint("site_id", "visitor_id", name="uq_visitor_profiles_site_id_visitor_id"),
        _site_fk("visitor_profiles"),
        Index("ix_visitor_profiles_org_id_site_id_last_seen_at", "org_id", "site_id", "last_seen_at"),
        Index("ix_visitor_profiles_site_id_behavior_score", "site_id", "behavior_score"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    visitor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    session_count: Mapped[int] = mapped_column(Integer, nullable=False)
    page_views: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    clicks: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    conversions: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    engagement: Mapped[float] = mapped_column(Double, nullable=False, server_default="0")
    behavior_score: Mapped[float] = mapped_column(
        Double, Computed("round((100 * (1 - exp(-engagement / 25)))::numeric, 1)::double precision")
    )
    country: Mapped[str | None] = mapped_column(CHAR(2))
    device: Mapped[str | None] = mapped_column(String(10))
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
