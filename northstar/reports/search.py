"""What of the reports one search finds: made reports, by title and narrative, read under ``reports`` (core/search).
A report being made (or that failed) has nothing to find yet; investors find only the kinds they read (investor
updates and dashboards: ``generation.visible_kinds``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.reports.models import Report
from northstar.reports.service.generation import INVESTOR_KINDS, KIND_NAMES


def _report(row: Any, session: Session) -> Document | None:
    if row.status != "completed":
        return None
    covers = f"{KIND_NAMES[row.kind]}, {row.period_start.isoformat()} to {row.period_end.isoformat()}"
    return Document(
        doc_id=str(row.id),
        title=row.title or covers,
        body=f"{covers}\n\n{row.narrative or ''}".strip(),
        url=f"/app/reports/{row.id}",
        facets={"kind": row.kind},
        hidden_from=() if row.kind in INVESTOR_KINDS else ("investor",),
    )


SOURCES = (SearchSource("report", "Reports", Report, "reports", _report),)
