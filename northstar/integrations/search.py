"""What of the integrations one search finds: each connected account, by its name and its provider (core/search)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from northstar.core.search.documents import Document, SearchSource
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.models import Integration


def _integration(row: Any, session: Session) -> Document:
    connector = CONNECTORS.get(row.provider)
    return Document(
        doc_id=str(row.id),
        title=row.name,
        body=connector.title if connector else row.provider,
        url=f"/app/integrations/{row.id}",
        facets={"provider": row.provider, "status": row.status},
    )


SOURCES = (SearchSource("integration", "Integrations", Integration, "integrations", _integration),)
