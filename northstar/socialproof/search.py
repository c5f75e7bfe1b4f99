"""What of social proof one search finds: sites, their notifications and their templates (core/search). Each is
read under ``sites``, the resource that guards reading them in the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.socialproof.models import Notification, Site, Template


def _site(row: Any, session: Session) -> Document:
    return Document(doc_id=str(row.id), title=row.name, body=row.domain, url=f"/app/sites/{row.id}")


def _notification(row: Any, session: Session) -> Document:
    """A notification by name, found by what it shows (its type) and where (its channels)."""
    return Document(
        doc_id=str(row.id),
        title=row.name,
        body=" ".join((row.type.replace("_", " "), *row.channels)),
        url=f"/app/sites/{row.site_id}/notifications/{row.id}",
        facets={"type": row.type, "status": row.status},
    )


def _template(row: Any, session: Session) -> Document:
    return Document(
        doc_id=str(row.id), title=row.name, body=row.message, url=f"/app/sites/{row.site_id}/templates/{row.id}"
    )


SOURCES = (
    SearchSource("site", "Sites", Site, "sites", _site),
    SearchSource("notification", "Notifications", Notification, "sites", _notification),
    SearchSource("template", "Templates", Template, "sites", _template),
)
