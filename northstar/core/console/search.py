"""Search in the console: the results page (``/app/search``) and the suggestions under the header's search box
(``/app/search/suggest``), both answered by the API's own service function, so a reader finds in a page exactly what
``GET /api/v1/search`` would give them.

The header's box asks for an HTML fragment rather than the API's JSON: the API takes a bearer token, and the
console's session is a cookie the browser's scripts cannot read (and which is not sent outside ``/app``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from northstar.core.console.pages import ConsolePrincipal, console_router, render
from northstar.core.context import DbSession
from northstar.core.http import Page, Unprocessable
from northstar.core.search import query as search_query
from northstar.core.search.documents import SOURCES

router = console_router()
SUGGESTIONS = 8  # what fits under the box; the rest is one "See all results" away
Types = Annotated[list[str] | None, Query(max_length=20, description="only these kinds")]


@dataclass(frozen=True)
class ShownHit:
    """A hit as a page shows it. The two highlighted fields are HTML the service escaped before adding ``<mark>``
    (``query.highlight``), so they alone are trusted as markup; every other field is escaped by the template."""

    hit: search_query.Hit
    label: str
    title_html: Markup
    snippet_html: Markup

    @property
    def snippet_adds(self) -> bool:
        """A document without a body is snippeted from its title: showing that again says nothing new."""
        return self.hit.snippet != self.hit.title_highlight


def label_of(doc_type: str) -> str:
    """A kind as people read it ("Projects"), from its source; a kind whose module is not installed any more keeps
    its name."""
    source = SOURCES.get(doc_type)
    return source.label if source is not None else doc_type.capitalize()


def _shown(hits: Sequence[search_query.Hit]) -> list[ShownHit]:
    return [
        ShownHit(hit, label_of(hit.doc_type), Markup(hit.title_highlight), Markup(hit.snippet))  # noqa: S704 - escaped by the service
        for hit in hits
    ]


def results_url(q: str, types: Sequence[str] = ()) -> str:
    """The results page of a query, kept to the given kinds."""
    params = [("q", q), *(("type", kind) for kind in types)]
    return "/app/search?" + urlencode(params)


@router.get("/search", name="console.search")
async def search_page(
    request: Request,
    principal: ConsolePrincipal,
    session: DbSession,
    page: Page,
    q: str = "",
    type: Types = None,
) -> Response:
    """Everything of the org the reader may read that matches, a page at a time, with the count of each kind as
    filter links. A query the service refuses (too long, a NUL, an unknown kind) is shown beside the box: 422."""
    types = type or []
    try:
        answer = await search_query.search(
            session, principal=principal, query=q, types=types, offset=page.offset, limit=page.limit
        )
    except Unprocessable as exc:
        refused: dict[str, Any] = {"q": q, "types": types, "error": exc.message, "answer": None}
        return render(request, "console/search.html", refused, status=422)
    facets = [
        (label_of(kind), count, results_url(q, [kind]), kind in types)
        for kind, count in sorted(answer.counts.items(), key=lambda item: (-item[1], label_of(item[0])))
    ]
    context: dict[str, Any] = {
        "q": q,
        "types": types,
        "error": None,
        "answer": answer,
        "hits": _shown(answer.hits),
        "page": page,
        "facets": facets,
        "all_url": results_url(q),
        "all_count": sum(answer.counts.values()),
        "pager_url": results_url(q, types),
        "kinds": sorted(source.label for source in SOURCES.values()),
    }
    return render(request, "console/search.html", context)


@router.get("/search/suggest", name="console.search_suggest")
async def suggest(request: Request, principal: ConsolePrincipal, session: DbSession, q: str = "") -> Response:
    """The header box's popup: the best few hits grouped by kind (in the order of each kind's best hit, so the
    arrow keys follow what the eye sees) and the link to every result. A query the service refuses answers 200
    with the reason in place: while typing, a half-written query (``type:pro``) is the normal case, not an error."""
    error = None
    hits: list[ShownHit] = []
    total = 0
    try:
        answer = await search_query.search(session, principal=principal, query=q, types=[], offset=0, limit=SUGGESTIONS)
        hits, total = _shown(answer.hits), answer.total
    except Unprocessable as exc:
        error = exc.message
    groups: dict[str, list[ShownHit]] = {}
    for shown in hits:
        groups.setdefault(shown.label, []).append(shown)
    context = {"q": q, "groups": groups, "count": len(hits), "total": total, "error": error, "all_url": results_url(q)}
    return render(request, "console/search_suggest.html", context)
