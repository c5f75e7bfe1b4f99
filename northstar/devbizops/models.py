"""DevBizOps tables (schema ``devbizops``): the unified engineering model every engineering source maps into.

Repositories, changes (pull or merge requests) and their reviews, deployments, incidents, work items and people,
each keyed by the integration it came from and the source's id, so a sync that reads an object again updates it,
and a disconnected integration takes its rows with it. A repository may belong to one of the organization's teams
(``team_id``, a platform team), which is how the DORA metrics are reported per team.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
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

SCHEMA = "devbizops"


def _integration_fk(table: str) -> ForeignKeyConstraint:
    """The integration a row came from (a table of the integrations module): its rows go with it."""
    return tenant_fk("integration_id", "integrations.integrations", name=f"fk_{table}_integration")


def _source_key(table: str) -> UniqueConstraint:
    return UniqueConstraint("integration_id", "external_id", name=f"uq_{table}_integration_id")


def _when(nullable: bool = True) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=nullable)


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (
        _integration_fk("repositories"),
        _source_key("repositories"),
        UniqueConstraint("org_id", "id", name="uq_repositories_org_id_id"),
        tenant_fk("team_id", "core.teams", name="fk_repositories_team", ondelete="SET NULL (team_id)"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    url: Mapped[str | None] = mapped_column(String(2048))
    default_branch: Mapped[str | None] = mapped_column(String(255))
    archived: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source_created_at: Mapped[datetime | None] = _when()
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


class Change(Base):
    """A pull or merge request."""

    __tablename__ = "changes"
    __table_args__ = (
        _integration_fk("changes"),
        _source_key("changes"),
        CheckConstraint("state IN ('open', 'closed', 'merged')", name="state"),
        UniqueConstraint("org_id", "id", name="uq_changes_org_id_id"),
        Index("ix_changes_org_id_merged_at", "org_id", "merged_at"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    repository: Mapped[str] = mapped_column(String(255), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    author: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = _when(nullable=False)
    first_commit_at: Mapped[datetime | None] = _when()
    merged_at: Mapped[datetime | None] = _when()
    closed_at: Mapped[datetime | None] = _when()
    merge_sha: Mapped[str | None] = mapped_column(String(64))
    additions: Mapped[int | None] = mapped_column(Integer)
    deletions: Mapped[int | None] = mapped_column(Integer)
    source_updated_at: Mapped[datetime | None] = _when()


class Review(Base):
    """A review of a change; a change's reviews are replaced whole whenever it is read again."""

    __tablename__ = "reviews"
    __table_args__ = (
        PrimaryKeyConstraint("integration_id", "change_external_id", "position", name="pk_reviews"),
        _integration_fk("reviews"),
        {"schema": SCHEMA},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    change_external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    reviewer: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(30), nullable=False)
    submitted_at: Mapped[datetime] = _when(nullable=False)


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        _integration_fk("deployments"),
        _source_key("deployments"),
        CheckConstraint("status IN ('pending', 'success', 'failure')", name="status"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    repository: Mapped[str] = mapped_column(String(255), nullable=False)
    environment: Mapped[str] = mapped_column(String(255), nullable=False)
    production: Mapped[bool] = mapped_column(Boolean, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = _when(nullable=False)
    finished_at: Mapped[datetime | None] = _when()
    sha: Mapped[str | None] = mapped_column(String(64))
    ref: Mapped[str | None] = mapped_column(String(255))


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (_integration_fk("incidents"), _source_key("incidents"), {"schema": SCHEMA})

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    repository: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str | None] = mapped_column(String(2048))
    started_at: Mapped[datetime] = _when(nullable=False)
    resolved_at: Mapped[datetime | None] = _when()


class WorkItem(Base):
    __tablename__ = "work_items"
    __table_args__ = (
        _integration_fk("work_items"),
        _source_key("work_items"),
        CheckConstraint("status IN ('todo', 'in_progress', 'done', 'canceled')", name="status"),
        UniqueConstraint("org_id", "id", name="uq_work_items_org_id_id"),
        Index("ix_work_items_org_id_key", "org_id", "key"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(2048))
    repository: Mapped[str | None] = mapped_column(String(255))
    assignee: Mapped[str | None] = mapped_column(String(255))
    labels: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    created_at: Mapped[datetime] = _when(nullable=False)
    started_at: Mapped[datetime | None] = _when()
    completed_at: Mapped[datetime | None] = _when()
    source_updated_at: Mapped[datetime | None] = _when()


class Person(Base):
    __tablename__ = "people"
    __table_args__ = (_integration_fk("people"), _source_key("people"), {"schema": SCHEMA})

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    external_id: Mapped[str] = mapped_column(String(255), nullable=False)
    login: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(300))


class Link(Base):
    """A work item tied to the business: a billing customer or a CRM deal who asked for it or waits on it.

    ``source`` says how it was found: ``manual`` (someone linked it), ``mention`` (the deal's notes name the work
    item's key or URL; found again at every recompute) or ``agent`` (an approved proposal)."""

    __tablename__ = "links"
    __table_args__ = (
        tenant_fk("work_item_id", "devbizops.work_items", name="fk_links_work_item"),
        CheckConstraint("source IN ('manual', 'mention', 'agent')", name="source"),
        CheckConstraint("(customer_id IS NULL) <> (deal_external_id IS NULL)", name="one_target"),
        CheckConstraint("(deal_external_id IS NULL) = (deal_integration_id IS NULL)", name="deal_key"),
        Index(
            "uq_links_customer",
            "work_item_id",
            "customer_id",
            unique=True,
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index(
            "uq_links_deal",
            "work_item_id",
            "deal_integration_id",
            "deal_external_id",
            unique=True,
            postgresql_where=text("deal_external_id IS NOT NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    work_item_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deal_integration_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deal_external_id: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    evidence: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()


class ChangeWorkItem(Base):
    """A change that names a work item in its title or body ("Fixes ENG-12"): the change ships it."""

    __tablename__ = "change_work_items"
    __table_args__ = (
        PrimaryKeyConstraint("change_id", "work_item_id", name="pk_change_work_items"),
        tenant_fk("change_id", "devbizops.changes", name="fk_change_work_items_change"),
        tenant_fk("work_item_id", "devbizops.work_items", name="fk_change_work_items_work_item"),
        Index("ix_change_work_items_work_item", "org_id", "work_item_id"),
        {"schema": SCHEMA},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    change_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    work_item_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)


class AgentRun(Base):
    """One run of an agent (TechTranslator so far): what it was given, what it answered, what it cost, its trace."""

    __tablename__ = "agent_runs"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_agent_runs_org_id_id"),
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        CheckConstraint("mode IN ('deterministic', 'llm')", name="mode"),
        Index("ix_agent_runs_org_id_created_at", "org_id", "created_at"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    agent: Mapped[str] = mapped_column(String(40), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    mode: Mapped[str] = mapped_column(String(15), nullable=False)
    input: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    generator: Mapped[str | None] = mapped_column(String(120))
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    cost_micros: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    replay_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    started_at: Mapped[datetime | None] = _when()
    finished_at: Mapped[datetime | None] = _when()


class AgentStep(Base):
    """A step of a run, in order, with what it found and its span."""

    __tablename__ = "agent_steps"
    __table_args__ = (
        PrimaryKeyConstraint("run_id", "position", name="pk_agent_steps"),
        tenant_fk("run_id", "devbizops.agent_runs", name="fk_agent_steps_run"),
        {"schema": SCHEMA},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    span_id: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = _when(nullable=False)
    finished_at: Mapped[datetime] = _when(nullable=False)


class Proposal(Base):
    """What an agent proposes; nothing outside changes until someone who may approve it does (``status``)."""

    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_proposals_org_id_id"),
        tenant_fk("run_id", "devbizops.agent_runs", name="fk_proposals_run"),
        UniqueConstraint("run_id", "position", name="uq_proposals_run_id_position"),
        CheckConstraint(
            "kind IN ('create_ticket', 'add_to_work_item', 'roadmap_status', 'roadmap_slip', 'roadmap_rank')",
            name="kind",
        ),
        CheckConstraint("status IN ('proposed', 'approved', 'filing', 'rejected', 'applied', 'failed')", name="status"),
        Index("ix_proposals_org_id_status", "org_id", "status"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    work_item_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the existing one, or the one made
    target_integration_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    external_key: Mapped[str | None] = mapped_column(String(255))
    external_url: Mapped[str | None] = mapped_column(String(2048))
    decided_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    decided_at: Mapped[datetime | None] = _when()
    reason: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()


class EngineeringSource(Base):
    """An engineering integration DevBizOps has synced from, with its provider and name as the integration has them:
    the trackers approved tickets can be filed in."""

    __tablename__ = "sources"
    __table_args__ = (_integration_fk("sources"), {"schema": SCHEMA})

    integration_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = org_fk()
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    files_tickets: Mapped[bool] = mapped_column(Boolean, nullable=False)
    synced_at: Mapped[datetime] = created_at()


class RoadmapItem(Base):
    """A roadmap item: what the company plans to ship, its status, the quarter it is for and its rank."""

    __tablename__ = "roadmap_items"
    __table_args__ = (
        UniqueConstraint("org_id", "id", name="uq_roadmap_items_org_id_id"),
        CheckConstraint("status IN ('planned', 'in_progress', 'shipped', 'dropped')", name="status"),
        Index("ix_roadmap_items_org_id_rank", "org_id", "rank"),
        {"schema": SCHEMA},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    status: Mapped[str] = mapped_column(String(12), nullable=False)
    target_quarter: Mapped[str] = mapped_column(String(7), nullable=False)  # 2027-Q1
    rank: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class RoadmapWorkItem(Base):
    """A work item that delivers a roadmap item (its demand and progress come from these)."""

    __tablename__ = "roadmap_work_items"
    __table_args__ = (
        PrimaryKeyConstraint("roadmap_item_id", "work_item_id", name="pk_roadmap_work_items"),
        tenant_fk("roadmap_item_id", "devbizops.roadmap_items", name="fk_roadmap_work_items_item"),
        tenant_fk("work_item_id", "devbizops.work_items", name="fk_roadmap_work_items_work_item"),
        {"schema": SCHEMA},
    )

    org_id: Mapped[uuid.UUID] = org_fk()
    roadmap_item_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    work_item_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
