"""Data service tables (schema ``jobs``): jobs, stored files and datasets (seed 003).

Foreign keys between them are checked at commit, so a job and the rows created with it are inserted
in one flush, in any order.

A dataset's rows live in their own table ``datasets.d_<id>`` (typed columns, so ``COPY`` loads and exports
at full speed); it is created by the worker with the same forced row-level security as every tenant table.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from northstar.core.db import Base, created_at, org_fk, updated_at, uuid_pk

JobType = Literal["generation", "upload", "export"]
JobStatus = Literal["pending", "in-progress", "completed", "failed", "cancelled"]
JOB_TYPES: tuple[str, ...] = get_args(JobType)
JOB_STATUSES: tuple[str, ...] = get_args(JobStatus)
FILE_KINDS = ("upload", "export", "rejects")
FILE_STATUSES = ("pending", "completed", "failed")
DATASET_STATUSES = ("building", "ready", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Job(Base):
    """One unit of queued work; the row is the source of truth a client polls (``/status/{id}``)."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(_in("type", JOB_TYPES), name="type"),
        CheckConstraint(_in("status", JOB_STATUSES), name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        UniqueConstraint("org_id", "id", name="uq_jobs_org_id_id"),
        Index("ix_jobs_org_id_created_at", "org_id", "created_at"),
        Index("ix_jobs_org_id_status", "org_id", "status"),
        {"schema": "jobs"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    progress: Mapped[float] = mapped_column(Float, nullable=False, server_default="0")
    rows_done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    error_code: Mapped[str | None] = mapped_column(String(60))  # stable; ``error_message`` is for people
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    queue_job_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StoredFile(Base):
    """An uploaded file, an export or a rejects report; bytes live in object storage under ``stored_path``."""

    __tablename__ = "files"
    __table_args__ = (
        CheckConstraint(_in("kind", FILE_KINDS), name="kind"),
        CheckConstraint(_in("status", FILE_STATUSES), name="status"),
        ForeignKeyConstraint(
            ["org_id", "job_id"],
            ["jobs.jobs.org_id", "jobs.jobs.id"],
            ondelete="SET NULL (job_id)",
            name="fk_files_job",
            deferrable=True,
            initially="DEFERRED",
        ),
        UniqueConstraint("org_id", "id", name="uq_files_org_id_id"),
        Index("ix_files_org_id_checksum", "org_id", "checksum"),
        Index("ix_files_expires_at", "expires_at"),
        {"schema": "jobs"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    original_name: Mapped[str] = mapped_column(Text, nullable=False)
    stored_path: Mapped[str] = mapped_column(Text, nullable=False)
    mime_type: Mapped[str | None] = mapped_column(String(120))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    uploaded_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Dataset(Base):
    """Rows produced by a generation or an import, queryable through the API and exportable."""

    __tablename__ = "datasets"
    __table_args__ = (
        CheckConstraint(_in("status", DATASET_STATUSES), name="status"),
        ForeignKeyConstraint(
            ["org_id", "job_id"],
            ["jobs.jobs.org_id", "jobs.jobs.id"],
            ondelete="SET NULL (job_id)",
            name="fk_datasets_job",
            deferrable=True,
            initially="DEFERRED",
        ),
        ForeignKeyConstraint(
            ["org_id", "file_id"],
            ["jobs.files.org_id", "jobs.files.id"],
            ondelete="SET NULL (file_id)",
            name="fk_datasets_file",
            deferrable=True,
            initially="DEFERRED",
        ),
        UniqueConstraint("org_id", "id", name="uq_datasets_org_id_id"),
        Index("ix_datasets_org_id_created_at", "org_id", "created_at"),
        {"schema": "jobs"},
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = org_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    file_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    row_count: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="building")
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at()

    @property
    def table_name(self) -> str:
        return f"datasets.d_{self.id.hex}"
