"""``/events/stream``: server-sent events of the caller's org, each topic only to the roles that may read it.

Which role receives a topic comes from the manifests (``event_topics``: topic prefix -> resource to read), so a
module's events reach exactly those who may read what they are about; an event addressed to one user (an inbox
message) reaches that user's streams alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from northstar.core.context import CurrentPrincipal, DbSession
from northstar.core.http import ERROR_RESPONSES, Forbidden
from northstar.core.pubsub import Event, EventHub, may_receive
from northstar.socialproof.service.sites import get_site

SSE_KEEPALIVE_SECONDS = 15

router = APIRouter(tags=["events"], responses=ERROR_RESPONSES)


@router.get(
    "/events/stream",
    name="events.stream",
    response_class=Response,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    topics: Annotated[
        str | None, Query(max_length=500, description="comma-separated, e.g. `job.status,job.progress`; all when empty")
    ] = None,
    site_id: Annotated[
        uuid.UUID | None, Query(alias="siteId", description="only this site's social proof events")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Response:
    """Server-sent events of the caller's org that their role may read: job status and progress (who reads
    data), social proof events and changes (who reads sites), and your own alerts inbox (``alerts.inbox``,
    ``alerts.inbox.read``).

    Every event has an id; a client that reconnects with ``Last-Event-ID`` first gets what it missed. When that
    is no longer known, it gets a ``reset`` event: reload the state, then carry on.
    """
    wanted = {topic.strip() for topic in (topics or "").split(",") if topic.strip()}
    if site_id is not None:
        if not principal.can("read", "sites"):
            raise Forbidden("Your role cannot read sites")
        await get_site(session, org_id=principal.org_id, site_id=site_id)
    await session.commit()  # the stream holds no transaction open
    hub: EventHub = request.app.state.events

    def relevant(event: Event) -> bool:
        if (wanted and event.topic not in wanted) or not may_receive(principal, event):
            return False
        return site_id is None or event.data.get("siteId") == str(site_id)

    async def events() -> AsyncIterator[dict[str, str]]:
        async with hub.subscribe(principal.org_id, last_event_id=last_event_id) as subscription:
            yield {"event": "reset" if subscription.lost else "ready", "data": "{}"}
            for event in subscription.replay:
                if relevant(event):
                    yield {"id": event.id, "event": event.topic, "data": orjson.dumps(event.data).decode()}
            while True:
                event = await subscription.queue.get()
                if relevant(event):
                    yield {"id": event.id, "event": event.topic, "data": orjson.dumps(event.data).decode()}

    return EventSourceResponse(events(), ping=SSE_KEEPALIVE_SECONDS)
