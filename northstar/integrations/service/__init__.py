"""Integrations: connect, list, test, sync now, pause, disconnect, and inbound webhooks' acceptance.

Credentials are a JSON object encrypted as one ``FieldCipher`` token (``grants.seal``); the API reports which secrets
are stored, never their values. Syncs and webhook processing run on the queue (``tasks.py``, ``sync.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import fetch_page, get_in_org, set_tenant_context, settings_of
from northstar.core.http import AppError, BadRequest, Forbidden, Unauthorized, Unprocessable
from northstar.core.permissions import Principal
from northstar.core.queue import enqueue_named
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.connectors.base import ConnectorError, Signature, settings_problems
from northstar.integrations.connectors.stripe import verify_signature
from northstar.integrations.grants import credentials_of, open_connector, revoke_grant, seal, usable_credentials
from northstar.integrations.models import Integration, SyncRun, WebhookDelivery
from northstar.integrations.sync import request_sync
from northstar.metrics import service as metrics_service
from northstar.settings import Settings

log = structlog.get_logger("northstar.integrations")


class ConnectionFailed(AppError):
    status, code = 422, "connection_failed"


def credential_names(settings: Settings, integration: Integration) -> list[str]:
    return sorted(credentials_of(settings, integration))


def _check_fields(
    provider: str, part: str, given: Mapping[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    """``credentials`` name only what the provider takes, and everything it needs."""
    missing = [name for name in required if name not in given]
    if missing:
        raise Unprocessable(
            f"{provider} needs {part}.{to_camel(missing[0])}",
            details=[
                {"field": f"body.{part}.{to_camel(name)}", "message": "required", "type": "missing"} for name in missing
            ],
        )
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise Unprocessable(
            f"{provider} takes no {part} {', '.join(to_camel(name) for name in unknown)}",
            details=[
                {"field": f"body.{part}.{to_camel(name)}", "message": f"not in {provider}'s {part}", "type": "extra"}
                for name in unknown
            ],
        )


def _check_credentials(provider: str, credentials: Mapping[str, str]) -> None:
    connector = CONNECTORS[provider]
    _check_fields(provider, "credentials", credentials, connector.credential_fields, connector.credential_fields[:1])


def check_config(provider: str, config: Mapping[str, Any]) -> None:
    try:
        CONNECTORS[provider].settings_model.model_validate(config)
    except ValidationError as exc:
        problems = settings_problems(exc)
        raise Unprocessable(
            f"{provider} config.{problems[0][0]}: {problems[0][1]}",
            details=[
                {"field": f"body.config.{field}", "message": message, "type": kind} for field, message, kind in problems
            ],
        ) from None


async def _test(settings: Settings, provider: str, credentials: Mapping[str, str], config: Mapping[str, Any]) -> None:
    connector = open_connector(provider, credentials=credentials, config=config, settings=settings)
    try:
        await connector.test()
    except ConnectorError as exc:
        raise ConnectionFailed(f"{provider} did not accept the connection: {exc}") from None
    finally:
        await connector.close()


async def connect(
    session: AsyncSession,
    *,
    principal: Principal,
    provider: str,
    name: str,
    credentials: dict[str, str],
    config: dict[str, Any],
    test: bool,
    queue_sync: bool = True,
) -> Integration:
    """A new integration and its first sync (queued, unless ``queue_sync`` is false: see ``request_sync``)."""
    _check_credentials(provider, credentials)
    check_config(provider, config)
    if test:
        await _test(settings_of(session), provider, credentials, config)
    return await create(
        session,
        principal=principal,
        provider=provider,
        name=name,
        credentials=credentials,
        config=config,
        queue_sync=queue_sync,
    )


async def create(
    session: AsyncSession,
    *,
    principal: Principal,
    provider: str,
    name: str,
    credentials: Mapping[str, str],
    config: dict[str, Any],
    queue_sync: bool = True,
) -> Integration:
    """The integration row with its sealed credentials, and its first sync; the caller checked what it stores."""
    integration_id = uuid.uuid4()
    integration = Integration(
        id=integration_id,
        org_id=principal.org_id,
        provider=provider,
        name=name,
        status="active",
        config=config,
        credentials_encrypted=seal(settings_of(session), integration_id, credentials),
        state={},
        created_by=principal.user_id,
    )
    session.add(integration)
    await session.flush()
    await request_sync(session, integration=integration, trigger="connect", queue=queue_sync)
    await session.refresh(integration)
    return integration


async def list_integrations(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Integration], int]:
    query = select(Integration).where(Integration.org_id == org_id).order_by(Integration.created_at, Integration.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_integration(session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID) -> Integration:
    return await get_in_org(session, Integration, integration_id, org_id=org_id, missing="No such integration")


def may_change(principal: Principal, integration: Integration) -> None:
    if not principal.can("update", "integrations", owner_id=integration.created_by):
        raise Forbidden("Your role cannot change this integration")


async def update_integration(
    session: AsyncSession,
    *,
    principal: Principal,
    integration_id: uuid.UUID,
    name: str | None,
    credentials: dict[str, str] | None,
    config: dict[str, Any] | None,
) -> Integration:
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    may_change(principal, integration)
    if name is not None:
        integration.name = name
    if config is not None:
        check_config(integration.provider, config)
        integration.config = config
    if credentials is not None:
        _check_credentials(integration.provider, credentials)
        await _test(settings_of(session), integration.provider, credentials, integration.config)
        integration.credentials_encrypted = seal(settings_of(session), integration.id, credentials)
        if integration.status == "error":
            integration.status = "active"
    await session.flush()
    await session.refresh(integration)
    return integration


async def test_integration(session: AsyncSession, *, principal: Principal, integration_id: uuid.UUID) -> Integration:
    """One request with the stored credentials (an expiring OAuth access token refreshed first)."""
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    try:
        credentials = await usable_credentials(session, integration)
    except ConnectorError as exc:
        raise ConnectionFailed(f"{integration.provider} did not accept the connection: {exc}") from None
    await _test(settings_of(session), integration.provider, credentials, integration.config)
    return integration


async def sync_now(session: AsyncSession, *, principal: Principal, integration_id: uuid.UUID) -> SyncRun:
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    if integration.status == "paused":
        raise AppError("The integration is paused; resume it first", code="integration_paused", status=409)
    return await request_sync(session, integration=integration, trigger="manual")


async def set_paused(
    session: AsyncSession, *, principal: Principal, integration_id: uuid.UUID, paused: bool
) -> Integration:
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    may_change(principal, integration)
    integration.status = "paused" if paused else "active"
    await session.flush()
    await session.refresh(integration)
    return integration


async def disconnect(session: AsyncSession, *, principal: Principal, integration_id: uuid.UUID) -> None:
    """Remove the integration, its records and the billing data it brought; the metrics are rebuilt at once. A grant
    made through the provider's consent screen is revoked at the provider first (``grants.revoke_grant``)."""
    integration = await get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    may_change(principal, integration)
    await revoke_grant(session, integration=integration, revoked_by=principal.user_id)
    await session.delete(integration)
    await session.flush()
    await metrics_service.refresh(session, org_id=principal.org_id)


async def list_runs(
    session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[SyncRun], int]:
    await get_integration(session, org_id=org_id, integration_id=integration_id)
    query = (
        select(SyncRun)
        .where(SyncRun.org_id == org_id, SyncRun.integration_id == integration_id)
        .order_by(SyncRun.queued_at.desc(), SyncRun.id)
    )
    return await fetch_page(session, query, offset=offset, limit=limit)


async def integration_for_webhook(session: AsyncSession, *, integration_id: uuid.UUID, provider: str) -> Integration:
    """The integration a webhook URL names, found before its org is known (the credential-id policy)."""
    rows = await set_tenant_context(
        session,
        credential_id=integration_id,
        then=("SELECT org_id FROM integrations.integrations WHERE id = {id} AND provider = {provider}"),
        params={"id": str(integration_id), "provider": provider},
    )
    if not rows:  # answered like a bad signature: an endpoint's existence is not revealed
        raise Unauthorized("The signature does not match", code="invalid_signature")
    await set_tenant_context(session, org_id=rows[0].org_id)
    return await get_integration(session, org_id=rows[0].org_id, integration_id=integration_id)


async def accept_webhook(
    session: AsyncSession, *, integration: Integration, body: bytes, headers: Mapping[str, str]
) -> bool:
    """Verify a delivery's signature, store it and queue its processing; False when it was received before."""
    connector = CONNECTORS[integration.provider]
    verdict = connector.verify_webhook(body, headers, credentials_of(settings_of(session), integration))
    if verdict is not Signature.VALID:
        log.warning(
            "webhook_signature_rejected",
            integration=str(integration.id),
            provider=integration.provider,
            reason=verdict.value,
        )
        if verdict is Signature.EXPIRED:
            raise Unauthorized(
                "The signature has expired: it was made too long ago (a replayed or late delivery) "
                "or the sender's clock is wrong",
                code="signature_expired",
            )
        raise Unauthorized("The signature does not match", code="invalid_signature")
    try:
        payload = orjson.loads(body)
        event_id, topic = connector.webhook_event(payload, headers)
    except (orjson.JSONDecodeError, ConnectorError) as exc:
        raise BadRequest(f"The delivery cannot be read: {exc}", code="invalid_delivery") from None
    inserted = await session.scalar(
        pg_insert(WebhookDelivery)
        .values(
            org_id=integration.org_id,
            integration_id=integration.id,
            event_id=event_id,
            topic=topic,
            status="queued",
            payload=payload,
        )
        .on_conflict_do_nothing(constraint="uq_webhook_deliveries_integration_id")
        .returning(WebhookDelivery.id)
    )
    if inserted is None:
        return False
    await enqueue_named(session, "integrations.webhook", org_id=integration.org_id, delivery_id=str(inserted))
    return True


def verify_stripe_signature(body: bytes, header: str, secret: str) -> str:
    """Stripe's ``Stripe-Signature`` scheme, for other modules that receive Stripe's deliveries (billing):
    ``valid``, ``invalid`` or ``expired``."""
    return verify_signature(body, header, secret).value
