"""What of DevBizOps one search finds: the trackers' work items and the roadmap, read under ``engineering``
(core/search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.devbizops.models import RoadmapItem, WorkItem


def _work_item(row: Any, session: Session) -> Document:
    """By key and title, its description and labels; stored by a sync's upsert, which indexes them
    (``service.store_batch``)."""
    facets = {"status": row.status, **({"repository": row.repository} if row.repository else {})}
    return Document(
        doc_id=str(row.id),
        title=f"{row.key} {row.title}",
        body="\n\n".join(part for part in (row.body, " ".join(row.labels)) if part),
        url=f"/app/engineering/work-items/{row.id}",
        facets=facets,
    )


def _roadmap_item(row: Any, session: Session) -> Document:
    """The roadmap page shows every item (there is no page of one)."""
    return Document(
        doc_id=str(row.id),
        title=row.title,
        body=row.description,
        url="/app/engineering/roadmap",
        facets={"status": row.status, "quarter": row.target_quarter},
    )


SOURCES = (
    SearchSource("work_item", "Work items", WorkItem, "engineering", _work_item),
    SearchSource("roadmap_item", "Roadmap", RoadmapItem, "engineering", _roadmap_item),
)
