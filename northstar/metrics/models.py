"""Metrics tables (schema ``metrics``): normalised billing data, movements, the KPI time series, cohorts, goals."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, tenant_fk, updated_at, uuid_pk


def _customer_fk(table: str) -> ForeignKeyConstraint:
    return tenant_fk("customer_id", "metrics.customers", name=f"fk_{table}_customer")


def _integration_fk(table: str) -> ForeignKeyConstraint:
    """The integration a row came from (a table of the integrations module): its rows go with it."""
    return tenant_fk("integration_id", "integrations.integrations", name=f"fk_{table}_integration")


class MetricsPolicy(Base):
    """How an organization counts (docs/metrics.md): reporting currency and time zone, discounts, investor view."""

    __tablename__ = "policies"
    __table_args__ = ({"schema": "metrics"},)

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    reporting_currency: Mapped[str] = mapped_column(String(3), nullable=False, server_default="USD")
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, server_default="UTC")
    deduct_discounts: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    investor_metrics: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    updated_at: Mapped[datetime] = updated_at()


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        _integration_fk("customers"),
        UniqueConstraint("integration_id", "external_id", name="uq_customers_integration_id"),
        UniqueConstraint("org_id", "id", name="uq_customers_org_id_id"),
        {"schema": "metrics"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    country: Mapped[str | None] = mapped_column(String(2))
    source_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        _customer_fk("subscriptions"),
        UniqueConstraint("integration_id", "external_id", name="uq_subscriptions_integration_id"),
        {"schema": "metrics"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    canceled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    trial_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# The invoice lines' table, without an ORM class: a line is ``inputs.InvoiceLine`` wherever code holds one (written
# with ``bulk_insert``, read straight into that dataclass by ``service.billed_lines``).
invoice_lines = Table(
    "invoice_lines",
    Base.metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")),
    Column("org_id", UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), nullable=False),
    Column("integration_id", UUID(as_uuid=True), nullable=False),
    Column("external_id", String(255), nullable=False),
    Column("invoice_external_id", String(255), nullable=False),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("subscription_external_id", String(255)),
    Column("item_external_id", String(255)),
    Column("kind", String(10), nullable=False),
    Column("proration", Boolean, nullable=False),
    Column("period_start", DateTime(timezone=True), nullable=False),
    Column("period_end", DateTime(timezone=True), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("amount_excluding_tax", BigInteger, nullable=False),
    Column("net_amount", BigInteger, nullable=False),
    Column("interval", String(5), nullable=False),
    Column("interval_count", Integer, nullable=False),
    Column("invoice_status", String(15), nullable=False),
    Column("issued_at", DateTime(timezone=True)),
    _customer_fk("invoice_lines"),
    UniqueConstraint("integration_id", "external_id", name="uq_invoice_lines_integration_id"),
    CheckConstraint("kind IN ('recurring', 'one_time', 'metered')", name="kind"),
    CheckConstraint("interval IN ('day', 'week', 'month', 'year')", name="interval"),
    Index("ix_invoice_lines_org_id_customer_id", "org_id", "customer_id"),
    schema="metrics",
)


class FxRate(Base):
    __tablename__ = "fx_rates"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "currency", "day", name="pk_fx_rates"),
        CheckConstraint("per_usd > 0", name="positive"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    per_usd: Mapped[Decimal] = mapped_column(Numeric(24, 10), nullable=False)


class Movement(Base):
    """A change of one customer's MRR on a day, with the invoice lines behind it (their external ids)."""

    __tablename__ = "movements"
    __table_args__ = (
        _customer_fk("movements"),
        Index("ix_movements_org_id_day", "org_id", "day"),
        Index("ix_movements_org_id_customer_id", "org_id", "customer_id"),
        {"schema": "metrics"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    kind: Mapped[str] = mapped_column(String(15), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    lines: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)


class Summary(Base):
    """An organization's additive totals (``engine.Totals``) and the policy they were computed under; ``problem``
    says why the last recompute could not finish (a missing exchange rate), while the totals stay as they were."""

    __tablename__ = "summaries"
    __table_args__ = {"schema": "metrics"}

    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), primary_key=True
    )
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    totals: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    problem: Mapped[str | None] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class SourceProblem(Base):
    """Why one source's metrics are stale (a rebuild that could not finish); gone once it finishes again."""

    __tablename__ = "source_problems"
    __table_args__ = (PrimaryKeyConstraint("org_id", "source", name="pk_source_problems"), {"schema": "metrics"})

    org_id: Mapped[uuid.UUID] = org_fk()
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    problem: Mapped[str] = mapped_column(Text, nullable=False)
    noted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Kpi(Base):
    """The seed's KPIs table: a metric's value at a time (a day, or a month's first day), from a source."""

    __tablename__ = "kpis"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "metric", "grain", "source", "dims", "day", name="pk_kpis"),
        CheckConstraint("grain IN ('day', 'month')", name="grain"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    metric: Mapped[str] = mapped_column(String(60), nullable=False)
    grain: Mapped[str] = mapped_column(String(5), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    source: Mapped[str] = mapped_column(String(30), nullable=False)
    dims: Mapped[str] = mapped_column(String(200), nullable=False, server_default="")
    value: Mapped[Decimal] = mapped_column(Numeric, nullable=False)


class Cohort(Base):
    __tablename__ = "cohorts"
    __table_args__ = (PrimaryKeyConstraint("org_id", "cohort", "k", name="pk_cohorts"), {"schema": "metrics"})

    org_id: Mapped[uuid.UUID] = org_fk()
    cohort: Mapped[date] = mapped_column(Date, nullable=False)
    k: Mapped[int] = mapped_column(Integer, nullable=False)
    customers: Mapped[int] = mapped_column(Integer, nullable=False)
    mrr: Mapped[int] = mapped_column(BigInteger, nullable=False)
    nrr: Mapped[Decimal | None] = mapped_column(Numeric)
    grr: Mapped[Decimal | None] = mapped_column(Numeric)


class Spend(Base):
    """Acquisition spend entered per month and channel (reporting currency cents), for CAC."""

    __tablename__ = "spend"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "month", "channel", name="pk_spend"),
        CheckConstraint("amount >= 0", name="amount"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    month: Mapped[date] = mapped_column(Date, nullable=False)
    channel: Mapped[str] = mapped_column(String(60), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Goal(Base):
    __tablename__ = "goals"
    __table_args__ = (Index("ix_goals_org_id_metric", "org_id", "metric"), {"schema": "metrics"})

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    metric: Mapped[str] = mapped_column(String(60), nullable=False)
    target: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    target_date: Mapped[date] = mapped_column(Date, nullable=False)
    start_date: Mapped[date] = mapped_column(Date, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Order(Base):
    """A store order (``inputs.CommerceOrder``)."""

    __tablename__ = "orders"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "external_id", name="pk_orders"),
        _integration_fk("orders"),
        Index("ix_orders_org_id_placed_at", "org_id", "placed_at"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    customer: Mapped[str | None] = mapped_column(String(255))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    subtotal: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shipping: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tax: Mapped[int] = mapped_column(BigInteger, nullable=False)
    total: Mapped[int] = mapped_column(BigInteger, nullable=False)
    financial_status: Mapped[str] = mapped_column(String(30), nullable=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    test: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))


class OrderRefund(Base):
    """Money given back on an order (``inputs.CommerceRefund``)."""

    __tablename__ = "order_refunds"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "external_id", name="pk_order_refunds"),
        _integration_fk("order_refunds"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    order: Mapped[str] = mapped_column(String(255), nullable=False)
    refunded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)


class Traffic(Base):
    """Web analytics per day and channel (``inputs.TrafficDay``)."""

    __tablename__ = "traffic"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "day", "channel", name="pk_traffic"),
        _integration_fk("traffic"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    channel: Mapped[str] = mapped_column(String(100), nullable=False)
    sessions: Mapped[int] = mapped_column(BigInteger, nullable=False)
    users: Mapped[int] = mapped_column(BigInteger, nullable=False)
    new_users: Mapped[int] = mapped_column(BigInteger, nullable=False)
    conversions: Mapped[Decimal] = mapped_column(Numeric, nullable=False)


class ProductEvent(Base):
    """One product analytics event, once per ``insert_id`` (``inputs.ProductEvent``)."""

    __tablename__ = "product_events"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "insert_id", name="pk_product_events"),
        _integration_fk("product_events"),
        Index("ix_product_events_org_id_occurred_at", "org_id", "occurred_at"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    insert_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    distinct_id: Mapped[str] = mapped_column(String(255), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Deal(Base):
    """A sales deal as last synced (``inputs.PipelineDeal``)."""

    __tablename__ = "deals"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "external_id", name="pk_deals"),
        _integration_fk("deals"),
        {"schema": "metrics"},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(500))
    pipeline: Mapped[str] = mapped_column(String(255), nullable=False)
    stage: Mapped[str] = mapped_column(String(255), nullable=False)
    amount: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    close_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed: Mapped[bool] = mapped_column(Boolean, nullable=False)
    won: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
