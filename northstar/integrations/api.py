"""Integration routes (seed 000 ``/api/integrations``): connect (with keys, or through the provider's consent screen),
list, test, sync now, pause, disconnect, webhooks, and the consents given."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, Request, status
from pydantic.alias_generators import to_camel

from northstar.core.context import DbSession, audit_target
from northstar.core.db import settings_of
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope, read_body
from northstar.core.idempotency import Idempotent
from northstar.integrations import service
from northstar.integrations.auth import IntegrationsCreate, IntegrationsDelete, IntegrationsRead, IntegrationsUpdate
from northstar.integrations.authorization import SERVERS
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.models import Integration, SyncRun
from northstar.integrations.schemas import (
    IntegrationCreate,
    IntegrationOut,
    IntegrationUpdate,
    OAuthCallback,
    OAuthConsentOut,
    OAuthProviderOut,
    OAuthStart,
    OAuthStarted,
    Provider,
    SyncRunOut,
    WebhookAccepted,
)
from northstar.integrations.service import oauth
from northstar.settings import Settings

router = APIRouter(tags=["integrations"], responses=ERROR_RESPONSES)
log = structlog.get_logger("northstar.integrations")

ONE = "/integrations/{integration_id}"
MAX_WEBHOOK_BYTES = 1024 * 1024


def _out(integration: Integration, settings: Settings) -> IntegrationOut:
    lag = (
        (dt.datetime.now(dt.UTC) - integration.last_success_at).total_seconds() if integration.last_success_at else None
    )
    return IntegrationOut(
        id=integration.id,
        provider=integration.provider,
        name=integration.name,
        status=integration.status,
        config=_camel(integration.config),
        credentials=[to_camel(name) for name in service.credential_names(settings, integration)],
        webhook_path=f"/api/v1/integrations/{integration.id}/webhooks/{integration.provider}",
        last_sync_at=integration.last_sync_at,
        last_success_at=integration.last_success_at,
        lag_seconds=lag,
        last_error=integration.last_error,
        last_error_at=integration.last_error_at,
        streams=integration.state,
        created_at=integration.created_at,
    )


@router.get("/integrations", response_model=PageEnvelope[IntegrationOut], name="integrations.list")
async def list_integrations(
    principal: IntegrationsRead, session: DbSession, page: Page
) -> PageEnvelope[IntegrationOut]:
    found, total = await service.list_integrations(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[_out(integration, settings_of(session)) for integration in found], meta=page.meta(total))


@router.post(
    "/integrations",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[IntegrationOut],
    name="integrations.create",
    dependencies=[Idempotent],
)
async def connect(
    body: IntegrationCreate, request: Request, principal: IntegrationsCreate, session: DbSession
) -> Envelope[IntegrationOut]:
    """Connect a provider account: the credentials are checked (unless ``test`` is false), stored encrypted, and a
    first sync is queued."""
    integration = await service.connect(
        session,
        principal=principal,
        provider=body.provider,
        name=body.name,
        credentials=_snake(body.credentials),
        config=_snake(body.config),
        test=body.test,
    )
    audit_target(request, "integration", integration.id, provider=integration.provider)
    return Envelope(data=_out(integration, settings_of(session)))


def _snake(fields: dict[str, Any]) -> dict[str, Any]:
    """Credentials and config are named in camelCase on the wire (``apiKey``), in snake_case inside (``api_key``)."""
    return {
        "".join(f"_{char.lower()}" if char.isupper() else char for char in name): value
        for name, value in fields.items()
    }


def _camel(fields: dict[str, Any]) -> dict[str, Any]:
    return {to_camel(name): value for name, value in fields.items()}


@router.get(ONE, response_model=Envelope[IntegrationOut], name="integrations.get")
async def get_integration(
    integration_id: uuid.UUID, principal: IntegrationsRead, session: DbSession
) -> Envelope[IntegrationOut]:
    integration = await service.get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    return Envelope(data=_out(integration, settings_of(session)))


@router.patch(ONE, response_model=Envelope[IntegrationOut], name="integrations.update")
async def update_integration(
    integration_id: uuid.UUID,
    body: IntegrationUpdate,
    request: Request,
    principal: IntegrationsUpdate,
    session: DbSession,
) -> Envelope[IntegrationOut]:
    integration = await service.update_integration(
        session,
        principal=principal,
        integration_id=integration_id,
        name=body.name,
        config=_snake(body.config) if body.config is not None else None,
        credentials=_snake(body.credentials) if body.credentials is not None else None,
    )
    audit_target(request, "integration", integration.id, credentials=body.credentials is not None)
    return Envelope(data=_out(integration, settings_of(session)))


@router.delete(ONE, status_code=status.HTTP_204_NO_CONTENT, name="integrations.delete")
async def disconnect(
    integration_id: uuid.UUID, request: Request, principal: IntegrationsDelete, session: DbSession
) -> None:
    """Disconnect: the integration, its records and the billing data it brought are deleted."""
    await service.disconnect(session, principal=principal, integration_id=integration_id)
    audit_target(request, "integration", integration_id)


@router.post(f"{ONE}/test", response_model=Envelope[IntegrationOut], name="integrations.test")
async def test_integration(
    integration_id: uuid.UUID, request: Request, principal: IntegrationsUpdate, session: DbSession
) -> Envelope[IntegrationOut]:
    """One request with the stored credentials; 422 ``connection_failed`` says what the provider answered."""
    integration = await service.test_integration(session, principal=principal, integration_id=integration_id)
    audit_target(request, "integration", integration.id)
    return Envelope(data=_out(integration, settings_of(session)))


def _run_out(run: SyncRun) -> SyncRunOut:
    return SyncRunOut.model_validate(run)


@router.post(
    f"{ONE}/sync", status_code=status.HTTP_202_ACCEPTED, response_model=Envelope[SyncRunOut], name="integrations.sync"
)
async def sync_now(
    integration_id: uuid.UUID, request: Request, principal: IntegrationsUpdate, session: DbSession
) -> Envelope[SyncRunOut]:
    """Queue a sync now (or answer the one already waiting or running)."""
    run = await service.sync_now(session, principal=principal, integration_id=integration_id)
    audit_target(request, "integration", integration_id, run=str(run.id))
    return Envelope(data=_run_out(run))


@router.get(f"{ONE}/runs", response_model=PageEnvelope[SyncRunOut], name="integrations.runs")
async def list_runs(
    integration_id: uuid.UUID, principal: IntegrationsRead, session: DbSession, page: Page
) -> PageEnvelope[SyncRunOut]:
    runs, total = await service.list_runs(
        session, org_id=principal.org_id, integration_id=integration_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[_run_out(run) for run in runs], meta=page.meta(total))


@router.post(f"{ONE}/pause", response_model=Envelope[IntegrationOut], name="integrations.pause")
async def pause(
    integration_id: uuid.UUID, request: Request, principal: IntegrationsUpdate, session: DbSession
) -> Envelope[IntegrationOut]:
    integration = await service.set_paused(session, principal=principal, integration_id=integration_id, paused=True)
    audit_target(request, "integration", integration.id)
    return Envelope(data=_out(integration, settings_of(session)))


@router.post(f"{ONE}/resume", response_model=Envelope[IntegrationOut], name="integrations.resume")
async def resume(
    integration_id: uuid.UUID, request: Request, principal: IntegrationsUpdate, session: DbSession
) -> Envelope[IntegrationOut]:
    integration = await service.set_paused(session, principal=principal, integration_id=integration_id, paused=False)
    audit_target(request, "integration", integration.id)
    return Envelope(data=_out(integration, settings_of(session)))


@router.post(
    f"{ONE}/webhooks/{{provider}}",
    response_model=Envelope[WebhookAccepted],
    name="integrations.webhook",
    openapi_extra={"security": []},
)
async def receive_webhook(
    integration_id: uuid.UUID, provider: Annotated[Provider, Path()], request: Request, session: DbSession
) -> Envelope[WebhookAccepted]:
    """Deliveries from the provider, authenticated by their signature (401 ``invalid_signature`` otherwise):
    stored, queued, and acknowledged at once; a delivery received before is acknowledged and not processed again."""
    body = await read_body(request, MAX_WEBHOOK_BYTES)
    integration = await service.integration_for_webhook(session, integration_id=integration_id, provider=provider)
    accepted = await service.accept_webhook(session, integration=integration, body=body, headers=request.headers)
    return Envelope(data=WebhookAccepted(duplicate=not accepted))


OAUTH = "/integrations/oauth"


@router.get(f"{OAUTH}/providers", response_model=Envelope[list[OAuthProviderOut]], name="integrations.oauth_providers")
async def oauth_providers(principal: IntegrationsRead, session: DbSession) -> Envelope[list[OAuthProviderOut]]:
    """The providers this installation connects through their consent screen (the others take pasted keys)."""
    settings = settings_of(session)
    return Envelope(
        data=[
            OAuthProviderOut(
                provider=provider,
                title=CONNECTORS[provider].title,
                scopes=list(oauth.server_for(settings, provider).requested_scopes),
                needs=[to_camel(name) for name in SERVERS[provider].needs],
                redirect_uri=oauth.callback_url(settings, provider),
            )
            for provider in oauth.connectable(settings)
        ]
    )


@router.post(f"{OAUTH}/{{provider}}/start", response_model=Envelope[OAuthStarted], name="integrations.oauth_start")
async def oauth_start(
    provider: Annotated[Provider, Path()],
    body: OAuthStart,
    request: Request,
    principal: IntegrationsCreate,
    session: DbSession,
) -> Envelope[OAuthStarted]:
    """Begin connecting through the provider's consent screen (or reconnecting ``integrationId``): send the person to
    ``authorizationUrl``; the provider sends them back to the console's callback, which finishes. 404
    ``oauth_not_configured`` when the installation has no OAuth client for the provider."""
    started = await oauth.start(
        session,
        principal=principal,
        provider=provider,
        name=body.name,
        config=_snake(body.config),
        integration_id=body.integration_id,
    )
    audit_target(request, "integration", body.integration_id or provider, oauth="start")
    return Envelope(data=OAuthStarted(authorization_url=started.url, expires_at=started.expires_at))


@router.post(f"{OAUTH}/{{provider}}/finish", response_model=Envelope[IntegrationOut], name="integrations.oauth_finish")
async def oauth_finish(
    provider: Annotated[Provider, Path()],
    body: OAuthCallback,
    request: Request,
    principal: IntegrationsCreate,
    session: DbSession,
) -> Envelope[IntegrationOut]:
    """Finish with what the provider sent to the redirect URI, for a client that receives it itself: the state must be
    one this org and person started, unexpired and unused (400 ``invalid_state``); a refusal at the provider is 400
    ``consent_denied``, a refused code 400 ``oauth_refused``. The integration is made (or reconnected) and synced."""
    finished = await oauth.finish(
        session, principal=principal, provider=provider, callback=body.model_dump(exclude_none=True)
    )
    audit_target(
        request, "integration", finished.integration.id, oauth="reconnect" if finished.reconnected else "connect"
    )
    return Envelope(data=_out(finished.integration, settings_of(session)))


@router.get(f"{OAUTH}/consents", response_model=PageEnvelope[OAuthConsentOut], name="integrations.oauth_consents")
async def oauth_consents(
    principal: IntegrationsRead,
    session: DbSession,
    page: Page,
    integration_id: Annotated[uuid.UUID | None, Query(alias="integrationId")] = None,
    provider: Annotated[Provider | None, Query()] = None,
) -> PageEnvelope[OAuthConsentOut]:
    """Who connected which provider account through its consent screen, the scopes granted, when, and revocations
    (those of disconnected integrations too), newest first."""
    found, total = await oauth.list_consents(
        session,
        org_id=principal.org_id,
        integration_id=integration_id,
        provider=provider,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[OAuthConsentOut.model_validate(consent) for consent in found], meta=page.meta(total))
