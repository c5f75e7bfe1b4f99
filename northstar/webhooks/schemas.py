"""Requests and answers of the webhooks API: endpoints (the secret only on creation and rotation), deliveries and
their attempts."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, RequestModel

EventType = Literal[
    "event.received",
    "conversion.created",
    "notification.updated",
    "ab_test.completed",
    "subscription.changed",
    "quota.reached",
]
DeliveryStatus = Literal["pending", "retrying", "succeeded", "failed"]
Url = Annotated[str, Field(min_length=8, max_length=2048, description="https:// address of your receiver")]
Description = Annotated[str, Field(max_length=500)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=6)]


class EndpointCreate(RequestModel):
    url: Url
    description: Description = ""
    event_types: EventTypes


class EndpointUpdate(RequestModel):
    url: Url | None = None
    description: Description | None = None
    event_types: EventTypes | None = None
    enabled: bool | None = Field(None, description="false turns the endpoint off; true turns it on afresh")


class EndpointOut(CamelModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    status: Literal["active", "disabled"]
    failing_since: dt.datetime | None
    last_error: str | None
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    previous_secret_expires_at: dt.datetime | None = Field(
        description="until then the secret replaced by the last rotation signs too"
    )
    created_at: dt.datetime
    updated_at: dt.datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_… signing secret: shown only now, store it")


class AttemptOut(CamelModel):
    number: int
    manual: bool
    attempted_at: dt.datetime
    response_code: int | None
    response_ms: int | None
    response_body: str | None = Field(description="the first bytes of the answer")
    error: str | None


class DeliveryOut(CamelModel):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    message_id: str = Field(description="the webhook-id header, the same at every attempt")
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_response_code: int | None
    last_response_ms: int | None
    last_error: str | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any]
    last_response_body: str | None
    attempts: list[AttemptOut]
