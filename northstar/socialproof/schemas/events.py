"""Events: from the merchant's backend (``POST /sites/{id}/events``) and from the widget (``POST /collect``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from northstar.core.http import CamelModel, Name, RequestModel, WireModel
from northstar.socialproof.schemas.profiles import CustomValues
from northstar.socialproof.schemas.sites import EventType

WidgetEventType = Literal[
    "page_view", "impression", "hover", "click", "close", "purchase", "signup", "custom", "review"
]
INTERACTIONS = frozenset({"impression", "hover", "click", "close"})
Text100 = Annotated[str, Field(max_length=100)]
Url = Annotated[str, Field(max_length=2048)]


class EventDetails(WireModel):
    """What a popup may say about an event; names and places are anonymised when shown, never when stored."""

    first_name: Text100 | None = None
    city: Text100 | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    product: Annotated[str, Field(max_length=200)] | None = None
    product_url: Url | None = None
    amount: Annotated[float, Field(ge=0, le=1e12)] | None = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    rating: Annotated[float, Field(ge=0, le=5)] | None = None


class EventIn(RequestModel, EventDetails):
    """One event from the merchant's backend (a purchase, a signup, a review, a custom event)."""

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="send your own id to make retries harmless")
    type: EventType
    name: Annotated[Name, Field(min_length=1, max_length=100)] | None = Field(None, description="for custom events")
    occurred_at: datetime | None = Field(None, description="default now; clamped to the last 7 days, never future")
    visitor_id: Annotated[str, Field(max_length=200)] | None = Field(
        None,
        description="your id for the customer (stored only as a keyed hash); the same id given to the widget "
        "with identify() hides their own events from them and attributes their conversions",
    )
    url: Url | None = None
    custom: CustomValues | None = None

    @model_validator(mode="after")
    def _named_when_custom(self) -> EventIn:
        if (self.type == "custom") != (self.name is not None):
            raise ValueError("name is given exactly for custom events")
        return self


class EventBatch(RequestModel):
    events: list[EventIn] = Field(min_length=1, max_length=500)


class EventsAccepted(CamelModel):
    accepted: int = Field(description="stored now")
    duplicates: int = Field(description="already stored (same event id): a retry, ignored")


class RejectedEvent(CamelModel):
    id: uuid.UUID
    reason: str = Field(description="which custom values do not match their fields, and why")


class CollectAccepted(EventsAccepted):
    dropped: int = Field(
        description="not stored: from a bot, a spam referrer, or a page of another site, or rejected (below)"
    )
    rejected: list[RejectedEvent] | None = Field(
        None, description="present when events were refused for their custom values; the others were stored"
    )


class WidgetEvent(WireModel):
    """One event from the embed snippet: a page view, what a visitor did with a popup, or a tagged goal."""

    id: uuid.UUID
    type: WidgetEventType
    name: Annotated[Name, Field(min_length=1, max_length=100)] | None = None
    occurred_at: datetime | None = Field(None, description="the browser's clock; corrected with the batch's sentAt")
    url: Url
    referrer: Url | None = None
    notification_id: uuid.UUID | None = None
    item_id: uuid.UUID | None = Field(None, description="the event a popup showed")
    variant_id: uuid.UUID | None = Field(
        None, description="the A/B test variant the popup showed (the feed's variantId), with notificationId"
    )
    details: EventDetails | None = None
    custom: CustomValues | None = None

    @model_validator(mode="after")
    def _consistent(self) -> WidgetEvent:
        if (self.type == "custom") != (self.name is not None):
            raise ValueError("name is given exactly for custom events")
        if (self.type in INTERACTIONS) != (self.notification_id is not None):
            raise ValueError("notificationId is given exactly for impression, hover, click and close")
        if self.variant_id is not None and self.notification_id is None:
            raise ValueError("variantId is given only with notificationId")
        return self


class WidgetVisitor(WireModel):
    local_id: Annotated[str, Field(min_length=8, max_length=64)] | None = Field(
        None, description="the first-party id, when the site keeps one (persistentVisitorId)"
    )
    user_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(None, description="from identify()")


class CollectBatch(WireModel):
    """A batch from the widget (``sendBeacon`` posts it as text/plain, which is accepted); its body is checked for NUL
    as a whole before validation."""

    site_key: Annotated[str, Field(min_length=4, max_length=64)]
    sent_at: datetime | None = Field(None, description="the browser's clock when sent, to correct its skew")
    visitor: WidgetVisitor = WidgetVisitor()
    events: list[WidgetEvent] = Field(min_length=1, max_length=50)
