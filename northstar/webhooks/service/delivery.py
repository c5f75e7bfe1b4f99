"""Sending deliveries (the queue task ``webhooks.deliver``), the retry schedule, turning off failing endpoints,
manual replay and the delivery log.

A job (the first attempts of up to 50 deliveries of one emission, or one retry) reads and marks its deliveries in
one transaction, posts them together with no transaction open (through the SSRF-guarded posting session of
``core.outbound``, shared per process), and records the outcomes in another, each with a row in
``delivery_attempts``. A 2xx answer is a success;
anything else (another status, a timeout, a refused connection, a blocked address) is a failure, tried again after
the next wait of ``retry_delays_seconds`` with jitter (7 attempts over about 1.5 days), each attempt queued as a job
scheduled for its time. A manual replay is one attempt now.

An endpoint that has failed for ``disable_after_hours`` (3 days) with no success in between is turned off, its
organization's founders and admins are told in-app and by e-mail, and its waiting deliveries fail when their turn
comes.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.alerts.service import inbox
from northstar.core.db import Database, fetch_page, settings_of
from northstar.core.http import Conflict, NotFound
from northstar.core.mailer import send_email
from northstar.core.outbound import (
    BlockedDestination,
    OutboundPolicy,
    checked_destination,
    outbound_policy,
    posting_session,
)
from northstar.core.queue import enqueue_named
from northstar.settings import Settings, WebhooksSettings
from northstar.webhooks.models import DeliveryAttempt, Endpoint, MessageDelivery
from northstar.webhooks.service.emission import DELIVER, forget
from northstar.webhooks.service.endpoints import get_endpoint, signing_keys
from northstar.webhooks.signing import sign

NOTIFY_DISABLED = "webhooks.notify_disabled"
ERROR_LIMIT = 1000
USER_AGENT = "Northstar-Webhooks/1.0"


def max_attempts(config: WebhooksSettings) -> int:
    return len(config.retry_delays_seconds) + 1


def retry_delay(config: WebhooksSettings, attempt: int) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based), spread by ± ``jitter`` so endpoints that failed
    together are not all tried again at the same second."""
    base = config.retry_delays_seconds[attempt - 1]
    spread = random.uniform(1 - config.jitter, 1 + config.jitter)  # noqa: S311 - jitter, not a secret
    return timedelta(seconds=base * spread)


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends, read in the first transaction."""

    url: str
    body: bytes
    keys: list[bytes]
    message_id: str


@dataclass(frozen=True)
class Outcome:
    code: int | None
    milliseconds: int
    body: str | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


async def deliver(
    database: Database, *, org_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID], manual: bool = False
) -> None:
    """One attempt of each delivery (the task ``webhooks.deliver``): one transaction marks them all, the posts go
    out together, one transaction records them all, so a fan-out costs a few statements, not a few per delivery."""
    attempted_at = datetime.now(UTC)
    async with database.tenant_transaction(org_id=org_id) as session:
        requests = await _prepare(session, delivery_ids=delivery_ids, now=attempted_at)
        settings = settings_of(session)
    if not requests:
        return
    outcomes = await asyncio.gather(*(send(settings, request) for request in requests.values()))
    async with database.tenant_transaction(org_id=org_id) as session:
        await _record(
            session, outcomes=dict(zip(requests, outcomes, strict=True)), manual=manual, attempted_at=attempted_at
        )


async def _locked(session: AsyncSession, delivery_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, MessageDelivery]:
    query = select(MessageDelivery).where(MessageDelivery.id.in_(list(delivery_ids))).order_by(MessageDelivery.id)
    query = query.with_for_update()
    return {delivery.id: delivery for delivery in (await session.scalars(query)).all()}


async def _endpoints(
    session: AsyncSession, endpoint_ids: Iterable[uuid.UUID], *, lock: bool = False
) -> dict[uuid.UUID, Endpoint]:
    query = select(Endpoint).where(Endpoint.id.in_(set(endpoint_ids))).order_by(Endpoint.id)
    found = (await session.scalars(query.with_for_update() if lock else query)).all()
    return {endpoint.id: endpoint for endpoint in found}


async def _prepare(
    session: AsyncSession, *, delivery_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, Outgoing]:
    """Count an attempt of each delivery still to send and say what to send; a delivery finished already sends
    nothing, one whose endpoint is off fails."""
    deliveries = await _locked(session, delivery_ids)
    endpoints = await _endpoints(session, (delivery.endpoint_id for delivery in deliveries.values()))
    keys: dict[uuid.UUID, list[bytes]] = {}
    requests = {}
    for delivery in deliveries.values():
        if delivery.status in ("succeeded", "failed"):
            continue
        endpoint = endpoints.get(delivery.endpoint_id)
        if endpoint is None or endpoint.status != "active":
            delivery.status, delivery.next_attempt_at = "failed", None
            delivery.last_error = "The endpoint is turned off"
            continue
        if endpoint.id not in keys:
            keys[endpoint.id] = signing_keys(session, endpoint, now=now)
        delivery.attempt_count += 1
        delivery.last_attempt_at, delivery.next_attempt_at = now, None
        requests[delivery.id] = Outgoing(
            url=endpoint.url,
            body=orjson.dumps(delivery.payload),
            keys=keys[endpoint.id],
            message_id=delivery.message_id,
        )
    return requests


def delivery_policy(settings: Settings) -> OutboundPolicy:
    """The configured outbound guard with the webhook timeout; answers are read only as far as is kept."""
    policy = outbound_policy(settings.outbound)
    return OutboundPolicy(
        allow_private_networks=policy.allow_private_networks,
        allow_http=policy.allow_http,
        timeout_seconds=settings.webhooks.timeout_seconds,
        max_response_bytes=policy.max_response_bytes,
    )


# Posts in flight per worker process (a job sends its deliveries together, and a worker runs several jobs).
SENDS_AT_ONCE = 64


async def send(settings: Settings, request: Outgoing) -> Outcome:
    """Post the signed message; the outcome, never an exception (a failure is an outcome to record)."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **sign(request.keys, message_id=request.message_id, body=request.body),
    }
    policy = delivery_policy(settings)
    keep = settings.webhooks.response_bytes
    started = time.perf_counter()
    try:
        url = await checked_destination(request.url, policy)
        session = posting_session(policy, connections=SENDS_AT_ONCE)
        async with session.post(url, data=request.body, headers=headers, allow_redirects=False) as response:
            kept = b""
            while len(kept) < keep and (chunk := await response.content.read(keep - len(kept))):
                kept += chunk
            return Outcome(response.status, _since(started), kept.decode("utf-8", errors="replace"), None)
    except BlockedDestination as exc:
        return Outcome(None, _since(started), None, f"blocked: {exc.message}")
    except TimeoutError:
        return Outcome(None, _since(started), None, f"timed out after {settings.webhooks.timeout_seconds:g} s")
    except aiohttp.ClientError as exc:
        return Outcome(None, _since(started), None, f"{exc.__class__.__name__}: {exc}"[:ERROR_LIMIT])


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


async def _record(
    session: AsyncSession, *, outcomes: dict[uuid.UUID, Outcome], manual: bool, attempted_at: datetime
) -> None:
    """Each attempt in the history and on its delivery; the endpoints' health; the next attempts, if any."""
    deliveries = await _locked(session, outcomes)
    failing = any(not outcome.succeeded for outcome in outcomes.values())  # a failure counts against its endpoint
    endpoints = await _endpoints(session, (delivery.endpoint_id for delivery in deliveries.values()), lock=failing)
    config = settings_of(session).webhooks
    now = datetime.now(UTC)
    for delivery_id, outcome in outcomes.items():
        delivery = deliveries.get(delivery_id)
        if delivery is None:
            continue
        session.add(
            DeliveryAttempt(
                org_id=delivery.org_id,
                delivery_id=delivery.id,
                number=delivery.attempt_count,
                manual=manual,
                attempted_at=attempted_at,
                response_code=outcome.code,
                response_ms=outcome.milliseconds,
                response_body=outcome.body,
                error=outcome.error,
            )
        )
        delivery.last_response_code, delivery.last_response_ms = outcome.code, outcome.milliseconds
        delivery.last_response_body = outcome.body
        endpoint = endpoints.get(delivery.endpoint_id)
        if outcome.succeeded:
            delivery.status, delivery.delivered_at, delivery.last_error = "succeeded", now, None
            if endpoint is not None and endpoint.failing_since is not None:  # no write when it was healthy
                endpoint.failing_since, endpoint.last_error = None, None
            continue
        error = outcome.error or f"HTTP {outcome.code}"
        delivery.last_error = error
        turned_off = endpoint is not None and await _failed(session, endpoint, error=error, now=now)
        if (
            manual
            or turned_off
            or endpoint is None
            or endpoint.status != "active"
            or delivery.attempt_count >= max_attempts(config)
        ):
            delivery.status, delivery.next_attempt_at = "failed", None
        else:
            delivery.status = "retrying"
            delivery.next_attempt_at = now + retry_delay(config, delivery.attempt_count)
            await enqueue_named(
                session,
                DELIVER,
                org_id=delivery.org_id,
                schedule_at=delivery.next_attempt_at,
                delivery_ids=[str(delivery.id)],
            )


async def _failed(session: AsyncSession, endpoint: Endpoint, *, error: str, now: datetime) -> bool:
    """Count a failure against the endpoint; True when it has failed long enough to be turned off (it now is)."""
    endpoint.last_error = error[:ERROR_LIMIT]
    endpoint.failing_since = endpoint.failing_since or now
    limit = timedelta(hours=settings_of(session).webhooks.disable_after_hours)
    if endpoint.status != "active" or now - endpoint.failing_since < limit:
        return False
    endpoint.status, endpoint.disabled_at = "disabled", now
    endpoint.disabled_reason = f"failing since {endpoint.failing_since:%d %B %Y %H:%M} UTC"
    forget(endpoint.org_id)
    await inbox.notify_admins(
        session, org_id=endpoint.org_id, title=_disabled_title(endpoint), body=_disabled_body(endpoint)
    )
    await enqueue_named(session, NOTIFY_DISABLED, org_id=endpoint.org_id, endpoint_id=str(endpoint.id))
    return True


def _disabled_title(endpoint: Endpoint) -> str:
    return f"Webhook endpoint {endpoint.url} was turned off"


def _disabled_body(endpoint: Endpoint) -> str:
    return (
        f"Deliveries to it have failed since {endpoint.failing_since:%d %B %Y %H:%M} UTC "
        f"(last error: {endpoint.last_error}). Fix the receiver, then turn the endpoint back on and replay "
        "the deliveries it missed from the webhooks page."
    )


async def email_admins_disabled(session: AsyncSession, *, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> int:
    """E-mail the founders and admins that an endpoint was turned off (the task ``webhooks.notify_disabled``)."""
    endpoint = await session.get(Endpoint, endpoint_id)
    if endpoint is None or endpoint.status != "disabled":
        return 0
    settings = settings_of(session)
    admins = await accounts.members_of(session, org_id=org_id, roles=inbox.ADMIN_ROLES)
    link = f"{settings.public_url}/app/webhooks"
    for admin in admins:
        await send_email(
            settings.smtp,
            to=admin.email,
            subject=_disabled_title(endpoint),
            body=f"{_disabled_body(endpoint)}\n\n{link}\n",
            headers={"Auto-Submitted": "auto-generated"},
        )
    return len(admins)


async def replay(session: AsyncSession, *, org_id: uuid.UUID, delivery_id: uuid.UUID) -> MessageDelivery:
    """Send a finished delivery again now (one attempt, the same message id, so receivers can deduplicate)."""
    delivery = await get_delivery(session, org_id=org_id, delivery_id=delivery_id, for_update=True)
    if delivery.status not in ("succeeded", "failed"):
        raise Conflict("This delivery is still being tried; replay it once it has succeeded or failed")
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=delivery.endpoint_id)
    if endpoint.status != "active":
        raise Conflict("The endpoint is turned off; turn it on before replaying its deliveries", code="disabled")
    delivery.status, delivery.next_attempt_at = "pending", datetime.now(UTC)
    await enqueue_named(session, DELIVER, org_id=org_id, delivery_ids=[str(delivery.id)], manual=True)
    await session.flush()
    await session.refresh(delivery)
    return delivery


async def get_delivery(
    session: AsyncSession, *, org_id: uuid.UUID, delivery_id: uuid.UUID, for_update: bool = False
) -> MessageDelivery:
    delivery = await session.get(MessageDelivery, delivery_id, with_for_update=for_update)
    if delivery is None or delivery.org_id != org_id:
        raise NotFound("No such webhook delivery")
    return delivery


async def attempts_of(session: AsyncSession, *, delivery: MessageDelivery) -> list[DeliveryAttempt]:
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.org_id == delivery.org_id, DeliveryAttempt.delivery_id == delivery.id)
        .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.number)
    )
    return list((await session.scalars(query)).all())


def _deliveries_query(
    org_id: uuid.UUID, *, endpoint_id: uuid.UUID | None, status: str | None, event_type: str | None
) -> Select[MessageDelivery]:
    query = select(MessageDelivery).where(MessageDelivery.org_id == org_id)
    if endpoint_id is not None:
        query = query.where(MessageDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(MessageDelivery.status == status)
    if event_type is not None:
        query = query.where(MessageDelivery.event_type == event_type)
    return query.order_by(MessageDelivery.created_at.desc(), MessageDelivery.id)


async def list_deliveries(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID | None = None,
    status: str | None = None,
    event_type: str | None = None,
    offset: int,
    limit: int,
) -> tuple[list[MessageDelivery], int]:
    """The delivery log, newest first, filtered by endpoint, status and event type."""
    query = _deliveries_query(org_id, endpoint_id=endpoint_id, status=status, event_type=event_type)
    return await fetch_page(session, query, offset=offset, limit=limit)
