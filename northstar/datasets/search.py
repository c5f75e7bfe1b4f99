"""What of the data service one search finds: datasets (by name and by their columns) and stored files (core/search),
read under ``data``, the resource that guards reading them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.datasets.models import Dataset, StoredFile

_PARTS = re.compile(r"[^\W_]+")


def _column(column: dict[str, Any]) -> str:
    """A column as "name type", with the spelling of the file it came from when that differs."""
    label = column.get("label")
    named = column["name"] if label in (None, column["name"]) else f"{label} {column['name']}"
    return f"{named} {column['type']}"


def _dataset(row: Any, session: Session) -> Document:
    """A dataset's columns are known once its job built it (``tasks`` indexes it again then)."""
    return Document(
        doc_id=str(row.id),
        title=row.name,
        body=", ".join(_column(column) for column in row.columns),
        url=f"/app/datasets/{row.id}",
        facets={"source": row.source},
    )


def _file(row: Any, session: Session) -> Document:
    """A file by its name; its body spells the name's parts (so "q3-revenue.csv" is found by "csv") and its type."""
    parts = _PARTS.findall(row.original_name)
    return Document(
        doc_id=str(row.id),
        title=row.original_name,
        body=" ".join((*parts, row.kind, row.mime_type or "")).strip(),
        url=f"/app/jobs/{row.job_id}" if row.job_id else "/app/jobs",
        facets={"kind": row.kind},
    )


SOURCES = (
    SearchSource("dataset", "Datasets", Dataset, "data", _dataset),
    SearchSource("file", "Files", StoredFile, "data", _file),
)
