"""``GET /api/v1/search`` (any signed-in reader: what their role may read), the org's search language, and a
reindex of the org (founders and admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from procrastinate.exceptions import AlreadyEnqueued
from pydantic import Field
from sqlalchemy import text

from northstar.core.context import CurrentPrincipal, DbSession, require
from northstar.core.http import ERROR_RESPONSES, CamelModel, Envelope, Page, PageMeta, RequestModel
from northstar.core.permissions import Principal
from northstar.core.queue import enqueue_named
from northstar.core.search import query as search_query
from northstar.core.search.documents import Language

router = APIRouter(tags=["search"], responses=ERROR_RESPONSES)
OrgUpdate = Annotated[Principal, Depends(require("organization", "update"))]


class SearchHitOut(CamelModel):
    type: str
    id: str
    title: str
    title_highlight: str = Field(description="the title, HTML-escaped, matches in <mark>")
    snippet: str = Field(description="a window of the text around the first match, HTML-escaped, matches in <mark>")
    url: str = Field(description="the console page that shows it")
    facets: dict[str, Any]
    updated_at: datetime
    score: float


class SearchMeta(PageMeta):
    counts: dict[str, int] = Field(description="matches per type, before the type filter")
    corrections: dict[str, list[str]] = Field(description="the org's words each query word was also matched as")


class SearchEnvelope(CamelModel):
    data: list[SearchHitOut]
    meta: SearchMeta


class SearchSettingsOut(CamelModel):
    language: Language
    reindex_total: int | None
    reindex_done: int
    reindex_started_at: datetime | None
    reindexed_at: datetime | None


class SearchSettingsUpdate(RequestModel):
    language: Language = Field(description="stemming of the org's documents; a change reindexes them")


@router.get("/search", response_model=SearchEnvelope, name="search.query")
async def search(
    principal: CurrentPrincipal,
    session: DbSession,
    page: Page,
    q: Annotated[str, Query(max_length=10_000, description='words, "phrases", -exclusions, type:kind')] = "",
    type: Annotated[list[str] | None, Query(max_length=20, description="only these kinds")] = None,
) -> SearchEnvelope:
    """Everything of the org the caller may read, ranked; as-you-type (prefixes) and typo-tolerant."""
    answer = await search_query.search(
        session, principal=principal, query=q, types=type or [], offset=page.offset, limit=page.limit
    )
    hits = [
        SearchHitOut(
            type=hit.doc_type,
            id=hit.doc_id,
            title=hit.title,
            title_highlight=hit.title_highlight,
            snippet=hit.snippet,
            url=hit.url,
            facets=hit.facets,
            updated_at=hit.updated_at,
            score=hit.score,
        )
        for hit in answer.hits
    ]
    meta = SearchMeta(
        page=page.page, limit=page.limit, total=answer.total, counts=answer.counts, corrections=answer.corrections
    )
    return SearchEnvelope(data=hits, meta=meta)


async def _settings(session: DbSession, principal: Principal) -> SearchSettingsOut:
    row = (
        await session.execute(
            text("SELECT * FROM core.search_settings WHERE org_id = :org_id"), {"org_id": principal.org_id}
        )
    ).first()
    if row is None:
        return SearchSettingsOut(
            language="english", reindex_total=None, reindex_done=0, reindex_started_at=None, reindexed_at=None
        )
    return SearchSettingsOut.model_validate(row._mapping, from_attributes=False)


@router.get("/search/settings", response_model=Envelope[SearchSettingsOut], name="search.settings")
async def search_settings(principal: OrgUpdate, session: DbSession) -> Envelope[SearchSettingsOut]:
    """The org's search language and its last reindex's progress."""
    return Envelope(data=await _settings(session, principal))


@router.put("/search/settings", response_model=Envelope[SearchSettingsOut], name="search.update_settings")
async def update_search_settings(
    body: SearchSettingsUpdate, principal: OrgUpdate, session: DbSession
) -> Envelope[SearchSettingsOut]:
    """Change the org's search language: its documents are reindexed in the background (searches go on)."""
    changed = await session.scalar(
        text("""
            INSERT INTO core.search_settings (org_id, language) VALUES (:org_id, :language)
            ON CONFLICT (org_id) DO UPDATE SET language = excluded.language, updated_at = now()
              WHERE core.search_settings.language <> excluded.language
            RETURNING true
        """),
        {"org_id": principal.org_id, "language": body.language},
    )
    if changed:
        await queue_reindex(session, principal)
    return Envelope(data=await _settings(session, principal))


async def queue_reindex(session: DbSession, principal: Principal) -> int | None:
    """The reindex job queued, or ``None`` when one is already waiting to run (it will see every change)."""
    try:
        async with session.begin_nested():  # a refused job must not abort the request's transaction
            return await enqueue_named(
                session,
                "core.search_reindex",
                org_id=principal.org_id,
                queueing_lock=f"core.search_reindex:{principal.org_id}",
            )
    except AlreadyEnqueued:
        return None


@router.post(
    "/search/reindex",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[dict[str, int | None]],
    name="search.reindex",
)
async def reindex(principal: OrgUpdate, session: DbSession) -> Envelope[dict[str, int | None]]:
    """Rebuild the org's index in the background; follow it on ``GET /search/settings``."""
    return Envelope(data={"queueJobId": await queue_reindex(session, principal)})
