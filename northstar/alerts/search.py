"""What of the alerts one search finds: the rules, by name and by what they watch, read under ``alerts``
(core/search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.alerts.console import KINDS
from northstar.alerts.models import Rule
from northstar.core.search.documents import Document, SearchSource

_WHEN = dict(KINDS)


def _rule(row: Any, session: Session) -> Document:
    """Found by its name and by what it watches ("A metric crosses a value"); rules have no page of their own, the
    rules page lists them."""
    metric = row.params.get("metric")
    return Document(
        doc_id=str(row.id),
        title=row.name,
        body=f"{_WHEN[row.kind]} ({metric})" if metric else _WHEN[row.kind],
        url="/app/alerts",
        facets={"kind": row.kind},
    )


SOURCES = (SearchSource("alert_rule", "Alert rules", Rule, "alerts", _rule),)
