"""Requests and responses of the data service: jobs, generation, export, datasets, files."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from northstar.core.http import CamelModel, Name, RequestModel
from northstar.core.manifest import EXPORT_SOURCES
from northstar.datasets.formats import file_name_problem
from northstar.datasets.generation import GenerationSpec

FileFormat = Literal["csv", "json", "ndjson", "parquet"]
COLUMN_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"  # a dataset's column, or a platform resource's API field


class UploadAccepted(CamelModel):
    job_id: uuid.UUID
    file_id: uuid.UUID
    duplicate_of: uuid.UUID | None = Field(None, description="an earlier upload with the same bytes")


class FileOutput(RequestModel):
    format: FileFormat = "parquet"
    gzip: bool = False


class GenerationOutput(RequestModel):
    """Where generated rows go: a dataset (queryable, exportable), a file, or both."""

    dataset: bool = True
    file: FileOutput | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> GenerationOutput:
        if not self.dataset and self.file is None:
            raise ValueError("choose a dataset, a file, or both")
        return self


class GenerateRequest(GenerationSpec):
    name: Name | None = Field(None, min_length=1, max_length=200, description="dataset name")
    output: GenerationOutput = GenerationOutput()


class ExportFilter(RequestModel):
    column: str = Field(pattern=COLUMN_NAME)
    op: Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "isNull", "notNull"]
    value: Any = None

    @model_validator(mode="after")
    def _value_fits(self) -> ExportFilter:
        if self.op in ("isNull", "notNull"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list) or not 1 <= len(self.value) <= 1000:
                raise ValueError("in takes a list of 1 to 1000 values")
        elif self.value is None or isinstance(self.value, dict | list):
            raise ValueError(f"{self.op} takes one scalar value")
        return self


class ExportSource(RequestModel):
    type: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="`dataset`, `file`, or a platform table a module makes exportable: `jobs`, `audit`, `kpis`",
    )
    id: uuid.UUID | None = Field(None, description="the dataset or uploaded file (for those types)")

    @model_validator(mode="after")
    def _id_when_needed(self) -> ExportSource:
        if self.type in ("dataset", "file"):
            if self.id is None:
                raise ValueError(f"an export of a {self.type} needs its id")
        elif self.type not in EXPORT_SOURCES:
            raise ValueError(f"no export source {self.type!r}")
        elif self.id is not None:
            raise ValueError(f"an export of {self.type} takes no id")
        return self


class ExportRequest(RequestModel):
    source: ExportSource
    format: FileFormat = "csv"
    gzip: bool = False
    columns: list[str] | None = Field(None, min_length=1, max_length=1000)
    filters: list[ExportFilter] = Field(default_factory=list, max_length=50)
    name: Name | None = Field(None, min_length=1, max_length=200, description="file name, without extension")

    @field_validator("name")
    @classmethod
    def _file_name(cls, name: str | None) -> str | None:
        problem = None if name is None else file_name_problem(name)
        if problem:
            raise ValueError(problem)
        return name


class JobOut(CamelModel):
    id: uuid.UUID
    type: str
    status: str
    progress: float
    rows_done: int
    rows_total: int | None
    result_uri: str | None = None
    result: dict[str, Any]
    error_code: str | None = Field(description="stable code of the last failure (``errorMessage`` says it in words)")
    error_message: str | None
    attempts: int
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class DatasetColumnOut(CamelModel):
    name: str
    type: str
    nullable: bool = True
    precision: int | None = None  # decimal only
    scale: int | None = None  # decimal only
    label: str | None = Field(None, description="the column's header in the uploaded file")


class DatasetOut(CamelModel):
    id: uuid.UUID
    name: str
    source: str
    status: str
    row_count: int
    columns: list[DatasetColumnOut]
    job_id: uuid.UUID | None
    file_id: uuid.UUID | None
    created_at: datetime


class FileOut(CamelModel):
    id: uuid.UUID
    kind: str
    original_name: str
    mime_type: str | None
    size_bytes: int | None
    checksum: str | None
    status: str
    job_id: uuid.UUID | None
    uploaded_at: datetime
    expires_at: datetime | None


class QueueOverview(CamelModel):
    by_status: dict[str, int]
    running: list[JobOut]
    failed: list[JobOut]
