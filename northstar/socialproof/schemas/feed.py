"""The widget feed: what one page of a merchant's site should show now (``GET /api/v1/widget/{siteKey}/feed``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, WireModel
from northstar.socialproof.schemas.events import WidgetVisitor

FEED_VERSION = 1


class FeedItem(CamelModel):
    """Every text is plain text (never markup) and ``url`` a page of the site's domain, whoever renders it."""

    id: str = Field(description="the event shown (its id), or the notification's id for counters")
    parts: list[str] = Field(description="the text, split where the widget writes the relative time (timeAgo)")
    at: str | None = Field(None, description="when the event happened (ISO 8601), for timeAgo")
    url: str | None = Field(None, description="where a click on the popup leads")
    tag: int | None = Field(None, description="16-bit tag of the identified visitor who caused it (own events)")


class FeedNotification(CamelModel):
    id: str
    type: str
    display: dict[str, Any] = Field(description="the notification's display rules, applied by the widget")
    devices: list[str]
    visitors: Literal["all", "new", "returning"]
    audience: bool = Field(
        False, description="shown only to visitors whose profile matches: ask POST /api/v1/widget/audience which"
    )
    css: str = Field(description="the template's CSS, for the widget's shadow root")
    items: list[FeedItem]
    variant_id: str | None = Field(
        None, description="the A/B test variant shown to this visitor: send it back with impressions and clicks"
    )


class FeedSite(CamelModel):
    position: str
    theme: str
    locale: str
    persistent_visitor_id: bool


class Feed(CamelModel):
    v: int = Field(FEED_VERSION, description="version of this document's format")
    site: FeedSite
    notifications: list[FeedNotification]
    live: bool = Field(
        False,
        description="this page has notifications that new events change (even ones with "
        "nothing to show yet): follow /events/stream?siteKey=…&url=… for the feed as it changes",
    )


class FeedEnvelope(CamelModel):
    data: Feed


class AudienceRequest(WireModel):
    """Which of the page's audience notifications this visitor may see: the visitor as the widget names them in a
    collection batch (so the same profile is found)."""

    site_key: Annotated[str, Field(min_length=4, max_length=64)]
    visitor: WidgetVisitor = WidgetVisitor()


class AudienceMatch(CamelModel):
    notifications: list[uuid.UUID] = Field(description="ids of the notifications with an audience this visitor is in")


class AudienceEnvelope(CamelModel):
    data: AudienceMatch
