"""Inbound hooks of a site: their configuration (the secret only when it is set) and what a delivery did."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from northstar.core.http import CamelModel, Name, RequestModel

Provider = Literal["shopify", "woocommerce", "generic"]
Secret = Annotated[str, Field(min_length=8, max_length=200)]
HookName = Annotated[Name, Field(min_length=1, max_length=200)]
SHARE = (
    "show product, link, country and amount in popups too; otherwise only a first name and a city reach them "
    "(surnames, e-mails and addresses are never stored)"
)


class InboundHookCreate(RequestModel):
    provider: Provider
    name: HookName
    secret: Secret | None = Field(
        None, description="the secret the store signs with (Shopify, WooCommerce); a generic hook gets one if unset"
    )
    share_details: bool = Field(False, description=SHARE)


class InboundHookUpdate(RequestModel):
    name: HookName | None = None
    secret: Secret | None = Field(None, description="replaces the secret at once")
    share_details: bool | None = Field(None, description=SHARE)


class InboundHookOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID
    provider: Provider
    name: str
    share_details: bool
    last_received_at: datetime | None
    receive_url: str = Field("", description="where the store or automation posts")
    created_at: datetime
    updated_at: datetime


class InboundHookWithSecret(InboundHookOut):
    secret: str = Field(description="shown only now")


class HookReceived(CamelModel):
    accepted: int = Field(description="events stored now")
    duplicates: int = Field(description="already stored (the source's id was seen): a retry, ignored")
    ignored: int = Field(description="deliveries that hold no event (a ping, another topic)")
