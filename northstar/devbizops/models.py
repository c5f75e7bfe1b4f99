"""DevBizOps tables (schema ``devbizops``): the unified engineering model every engineering source maps into.

Repositories, changes (pull or merge requests) and their reviews, deployments, incidents, work items and people,
each keyed by the integration it came from and the source's id, so a sync that reads an object again updates it,
and a disconnected integration takes its rows with it. A repository may belong to one of the organization's teams
(``team_id``, a platform team), which is how the DORA metrics are reported per team.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
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
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, org_fk, tenant_fk, uuid_pk

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
