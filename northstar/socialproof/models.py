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
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.crypto import EncryptedColumn, register_encrypted_column
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
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the variant of the click


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


def _test_fk(table: str) -> ForeignKeyConstraint:
    """A row of an A/B test goes with its test (and so with its notification and site)."""
    return ForeignKeyConstraint(
        ["org_id", "test_id"],
        ["socialproof.ab_tests.org_id", "socialproof.ab_tests.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_test",
    )


class AbTest(Base):
    """An A/B test of a notification (seed 001 ``ab_tests``): variants split its traffic until a winner is chosen.

    ``status`` runs draft → running → stopped or completed; a completed test has a ``winner_variant_id``, which
    the notification shows from then on. ``srm_flagged`` is set when the exposures do not match the split
    (sample-ratio mismatch), which blocks an automatic winner.
    """

    __tablename__ = "ab_tests"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_ab_tests_org_id_id"),
        CheckConstraint("status IN ('draft', 'running', 'stopped', 'completed')", name="status"),
        CheckConstraint("primary_metric IN ('ctr', 'conversion_rate')", name="primary_metric"),
        CheckConstraint("min_sample >= 1", name="min_sample"),
        _site_fk("ab_tests"),
        ForeignKeyConstraint(
            ["org_id", "notification_id"],
            ["socialproof.notifications.org_id", "socialproof.notifications.id"],
            ondelete="CASCADE",
            name="fk_ab_tests_notification",
        ),
        ForeignKeyConstraint(
            ["org_id", "winner_variant_id"],
            ["socialproof.ab_test_variants.org_id", "socialproof.ab_test_variants.id"],
            name="fk_ab_tests_winner",
            use_alter=True,
            deferrable=True,
            initially="DEFERRED",
        ),
        Index("ix_ab_tests_org_id_site_id", "org_id", "site_id", "created_at"),
        Index(
            "uq_ab_tests_running_notification",
            "notification_id",
            unique=True,
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_ab_tests_running", "status", postgresql_where=text("status = 'running'")),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="draft")
    primary_metric: Mapped[str] = mapped_column(String(20), nullable=False, server_default="ctr")
    min_sample: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1000")
    auto_winner: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    winner_variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    winner_selected_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    srm_flagged: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    srm_p_value: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class AbTestVariant(Base):
    """One arm of a test: what it changes (message, template, display rules) and its share of the traffic."""

    __tablename__ = "ab_test_variants"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_ab_test_variants_org_id_id"),
        UniqueConstraint("test_id", "position", name="uq_ab_test_variants_test_id_position"),
        CheckConstraint("weight BETWEEN 1 AND 100", name="weight"),
        _test_fk("ab_test_variants"),
        ForeignKeyConstraint(
            ["org_id", "template_id"],
            ["socialproof.templates.org_id", "socialproof.templates.id"],
            name="fk_ab_test_variants_template",
        ),
        Index("ix_ab_test_variants_org_id_test_id", "org_id", "test_id"),
        Index(
            "ix_ab_test_variants_template",
            "org_id",
            "template_id",
            postgresql_where=text("template_id IS NOT NULL"),
        ),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    test_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    notification_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    is_control: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    weight: Mapped[int] = mapped_column(Integer, nullable=False)
    message: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    display: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = created_at()


class AbTestVisitor(Base):
    """A visitor of a running test (the unit of analysis): the variant they saw first, and when they clicked.

    Written by ingestion only, to count each visitor once in ``AbTestCount``; results never scan it."""

    __tablename__ = "ab_test_visitors"
    __table_args__ = (
        PrimaryKeyConstraint("test_id", "visitor_id", name="pk_ab_test_visitors"),
        _test_fk("ab_test_visitors"),
        Index("ix_ab_test_visitors_org_id", "org_id", "test_id"),
        {"schema": "socialproof"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    test_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    visitor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    exposed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    clicked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AbTestCount(Base):
    """The rollup results come from: visitors exposed, clicking and converting per test, variant and UTC day."""

    __tablename__ = "ab_test_counts"
    __table_args__ = (
        PrimaryKeyConstraint("test_id", "variant_id", "day", name="pk_ab_test_counts"),
        _test_fk("ab_test_counts"),
        Index("ix_ab_test_counts_org_id", "org_id", "test_id"),
        {"schema": "socialproof"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    test_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    variant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    exposures: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    clicks: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    conversions: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


ARCHIVE_STATUSES = ("writing", "written", "verified", "failed")
RESTORE_STATUSES = ("pending", "running", "ready", "failed", "expired")


class Archive(Base):
    """A raw event month written to object storage (platform-wide: partitions hold every org's events).

    The manifest of the file: rows, sha256, time range, schema version, key; ``verified`` once read back and
    compared, which is what allows its partition to be dropped.
    """

    __tablename__ = "archives"
    __table_args__ = (
        CheckConstraint(f"status IN {ARCHIVE_STATUSES!r}", name="status"),
        Index("ix_archives_month", "month"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    month: Mapped[date] = mapped_column(Date, nullable=False)
    object_key: Mapped[str] = mapped_column(String(1024), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    schema_version: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    range_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    range_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    rows: Mapped[int | None] = mapped_column(BigInteger)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    first_occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    written_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ArchiveOrg(Base):
    """One org's share of an archive (its rows and time range): what that org sees of the platform's archives."""

    __tablename__ = "archive_orgs"
    __table_args__ = (
        PrimaryKeyConstraint("archive_id", "org_id", name="pk_archive_orgs"),
        ForeignKeyConstraint(
            ["archive_id"], ["socialproof.archives.id"], ondelete="CASCADE", name="fk_archive_orgs_archive"
        ),
        Index("ix_archive_orgs_org_id_archive_id", "org_id", "archive_id"),
        {"schema": "socialproof"},
    )

    archive_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    org_id: Mapped[uuid.UUID] = org_fk()
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ArchiveRestore(Base):
    """An org's request to bring a period of an archive back into ``restored_events`` until ``expires_at``."""

    __tablename__ = "archive_restores"
    __table_args__ = (
        CheckConstraint(f"status IN {RESTORE_STATUSES!r}", name="status"),
        UniqueConstraint("org_id", "id", name="uq_archive_restores_org_id_id"),
        ForeignKeyConstraint(
            ["archive_id"], ["socialproof.archives.id"], ondelete="CASCADE", name="fk_archive_restores_archive"
        ),
        ForeignKeyConstraint(
            ["org_id", "site_id"],
            ["socialproof.sites.org_id", "socialproof.sites.id"],
            ondelete="CASCADE",
            name="fk_archive_restores_site",
        ),
        Index("ix_archive_restores_org_id_created_at", "org_id", "created_at"),
        Index("ix_archive_restores_expires_at", "expires_at"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    archive_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    keep_days: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RestoredEvent(Base):
    """A raw event brought back from an archive for one org, queryable until its restore expires."""

    __tablename__ = "restored_events"
    __table_args__ = (
        PrimaryKeyConstraint("restore_id", "occurred_at", "site_id", "id", name="pk_restored_events"),
        ForeignKeyConstraint(
            ["org_id", "restore_id"],
            ["socialproof.archive_restores.org_id", "socialproof.archive_restores.id"],
            ondelete="CASCADE",
            name="fk_restored_events_restore",
        ),
        {"schema": "socialproof"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    restore_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    event_type: Mapped[str] = mapped_column(String(20), nullable=False)
    event_name: Mapped[str | None] = mapped_column(String(100))
    notification_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    visitor_id: Mapped[str | None] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    variant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class InboundHook(Base):
    """A site's hook for a store or automation (Shopify ``orders/create``, WooCommerce ``order.created``, a generic
    or Zapier catch hook): its secret (encrypted, the row's id as associated data) verifies what arrives, and
    ``share_details`` is the site's opt-in to show more than a first name and a city."""

    __tablename__ = "inbound_hooks"
    __table_args__ = (
        _site_fk("inbound_hooks"),
        UniqueConstraint("org_id", "id", name="uq_inbound_hooks_org_id_id"),
        CheckConstraint("provider IN ('shopify', 'woocommerce', 'generic')", name="provider"),
        Index("ix_inbound_hooks_org_id_site_id", "org_id", "site_id"),
        {"schema": "socialproof"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    site_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_encrypted: Mapped[str] = mapped_column(Text, nullable=False)
    share_details: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


register_encrypted_column(EncryptedColumn("socialproof.inbound_hooks", "secret_encrypted"))


class Subscription(Base):
    """An organization's plan (one row per org; none: the configured default plan) and where its quota stands.

    The plan covers every site of the organization. ``provider`` says who bills it (``manual``: nobody, ``stripe``:
    Stripe Billing, whose customer and subscription ids are kept with the last event applied, so a late,
    out-of-order webhook cannot undo a newer one). ``alerted_percent`` is the highest usage alert sent in the period
    that starts at ``alert_period_start`` (so each alert goes once per period); ``quota_reached_at`` is when usage
    reached the quota, and until ``quota_until`` (the period's end) the widget is silent; events are stored for
    ``grace_days`` after it."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("provider IN ('manual', 'stripe')", name="provider"),
        CheckConstraint("alerted_percent BETWEEN 0 AND 100", name="alerted_percent"),
        {"schema": "socialproof"},
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    plan: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="active")
    provider: Mapped[str] = mapped_column(String(20), nullable=False, server_default="manual")
    customer_id: Mapped[str | None] = mapped_column(String(255))
    provider_subscription_id: Mapped[str | None] = mapped_column(String(255))
    provider_event_created: Mapped[int | None] = mapped_column(BigInteger)
    pending_plan: Mapped[str | None] = mapped_column(String(40))
    period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    usage_visitors: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    usage_measured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    alert_period_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    alerted_percent: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    quota_reached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quota_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


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
        # the exponent bounded: past ~18,600 points exp() underflows, which PostgreSQL raises (migration 0027)
        Double,
        Computed("round((100 * (1 - exp(-least(engagement, 2500) / 25)))::numeric, 1)::double precision"),
    )
    country: Mapped[str | None] = mapped_column(CHAR(2))
    device: Mapped[str | None] = mapped_column(String(10))
    custom: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
