"""The widget feed: what one page of a merchant's site should show now (``GET /api/v1/widget/{siteKey}/feed``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel

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
