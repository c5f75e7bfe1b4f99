"""Requests and responses of the integrations API; credentials go in and never come out."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from northstar.core.http import CamelModel, Name, RequestModel
from northstar.integrations.connectors import CONNECTORS


def _known_provider(name: str) -> str:
    if name not in CONNECTORS:
        raise ValueError(f"not a provider; one of {', '.join(sorted(CONNECTORS))}")
    return name


Provider = Annotated[str, AfterValidator(_known_provider), Field(json_schema_extra={"enum": sorted(CONNECTORS)})]
Secret = Annotated[str, Field(min_length=1, max_length=4096)]


class IntegrationCreate(RequestModel):
    provider: Provider
    name: Name = Field(min_length=1, max_length=200)
    credentials: dict[Annotated[str, Field(max_length=60)], Secret] = Field(
        description="the provider's secrets (e.g. Stripe: apiKey, webhookSecret); stored encrypted, never returned"
    )
    config: dict[Annotated[str, Field(max_length=60)], Any] = Field(
        default_factory=dict, description="settings that are not secret (e.g. baseUrl, requestsPerSecond)"
    )
    test: bool = Field(True, description="check the credentials with one request before saving")


class IntegrationUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=200)
    credentials: dict[Annotated[str, Field(max_length=60)], Secret] | None = Field(
        None, description="replaces the stored secrets"
    )
    config: dict[Annotated[str, Field(max_length=60)], Any] | None = None


class IntegrationOut(CamelModel):
    id: uuid.UUID
    provider: str
    name: str
    status: str = Field(
        description="active, paused, error (see lastError), or reconnect (its OAuth grant no longer refreshes)"
    )
    config: dict[str, Any]
    credentials: list[str] = Field(description="which secrets are stored (their values never leave the server)")
    webhook_path: str = Field(description="where the provider should send webhooks")
    last_sync_at: dt.datetime | None
    last_success_at: dt.datetime | None
    lag_seconds: float | None = Field(description="since the last successful sync")
    last_error: str | None
    last_error_at: dt.datetime | None
    streams: dict[str, Any] = Field(description="each stream's sync position")
    created_at: dt.datetime


class SyncRunOut(CamelModel):
    id: uuid.UUID
    integration_id: uuid.UUID
    trigger: str
    status: str
    queued_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    fetched: dict[str, int]
    error: str | None


class WebhookAccepted(CamelModel):
    received: bool = True
    duplicate: bool = Field(description="this delivery was received before: nothing more is done")


class OAuthProviderOut(CamelModel):
    provider: str
    title: str
    scopes: list[str] = Field(description="what the platform asks the provider for (read-only)")
    needs: list[str] = Field(description="settings to give before the consent screen (GA4: propertyId; Shopify: shop)")
    redirect_uri: str = Field(description="the callback registered with the provider")


class OAuthStart(RequestModel):
    name: Name | None = Field(
        None, min_length=1, max_length=200, description="the new integration's (default: the provider's name)"
    )
    config: dict[Annotated[str, Field(max_length=60)], Any] = Field(
        default_factory=dict, description="the new integration's settings, as for POST /integrations"
    )
    integration_id: uuid.UUID | None = Field(
        None, description="reconnect this integration instead (its tokens are replaced)"
    )


class OAuthStarted(CamelModel):
    authorization_url: str = Field(description="the provider's consent screen: send the person there")
    expires_at: dt.datetime = Field(description="come back with the provider's answer before this")


Param = Annotated[str, Field(max_length=2048)]


class OAuthCallback(RequestModel):
    """What the provider sent to the redirect URI, as it sent it."""

    state: Annotated[str, Field(min_length=1, max_length=200)]
    code: Param | None = None
    error: Param | None = Field(None, description="the provider's refusal, e.g. access_denied")
    error_description: Param | None = None
    scope: Param | None = Field(None, description="the scopes granted, as Google and Stripe say them")
    shop: Param | None = Field(None, description="Shopify: the store")
    hmac: Param | None = Field(None, description="Shopify: the redirect's signature")
    timestamp: Param | None = Field(None, description="Shopify")
    host: Param | None = Field(None, description="Shopify")


class OAuthConsentOut(CamelModel):
    id: uuid.UUID
    integration_id: uuid.UUID = Field(description="the integration it was given for (gone once disconnected)")
    provider: str
    user_id: uuid.UUID = Field(description="who went through the consent screen")
    account: str | None = Field(description="the provider's account: Stripe's acct_…, HubSpot's hub id, the store")
    scopes: list[str] = Field(description="the scopes the provider granted")
    granted_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="when the current access token stops working (refreshed before)")
    refreshed_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_by: uuid.UUID | None
    revocation: str | None = Field(description="disconnected, or reconnected (replaced by a newer consent)")
    provider_revocation: str | None = Field(description="what the provider answered the revocation at disconnect")
