"""``/app/events``: the live event stream for console pages, signed in by the session cookie.

A browser's ``EventSource`` cannot send an Authorization header, so console pages cannot open ``/events/stream``;
this route serves that very stream (``events.stream``: same topics, same role filtering, same replay) to the
console's principal.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Header, Query, Request
from fastapi.responses import Response

from northstar.core.console.pages import ConsolePrincipal, console_router
from northstar.core.context import DbSession
from northstar.platform import events

router = console_router()


@router.get("/events", name="console.platform_events")
async def console_events(
    request: Request,
    principal: ConsolePrincipal,
    session: DbSession,
    topics: Annotated[str | None, Query(max_length=500)] = None,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Response:
    return await events.stream(request, principal, session, topics=topics, site_id=site_id, last_event_id=last_event_id)
