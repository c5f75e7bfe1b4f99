"""Shared Slack channels: an incoming webhook, or a bot token and the channel it posts to.

The secret (the webhook URL, the token) is one ``FieldCipher`` token with the channel's id as associated data,
never returned. A channel is ``active`` or ``disabled``: turned off by an admin, or by the platform after it failed
for ``disable_after_hours`` (``delivery.py``); an admin turns it back on with ``enabled: true``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts.models import Channel
from northstar.alerts.senders import SENDERS, Alert, DeliveryError, slack_message
from northstar.core.db import fetch_page, get_in_org, settings_of
from northstar.core.http import AppError, Unprocessable
from northstar.core.outbound import outbound_policy
from northstar.core.permissions import Principal
from northstar.core.security import auth_keys
from northstar.settings import Settings


class ChannelFailed(AppError):
    status, code = 422, "channel_failed"


def _seal(settings: Settings, channel_id: uuid.UUID, secret: str) -> str:
    return auth_keys(settings).cipher.encrypt(secret, associated_data=str(channel_id))


def _secret_of(settings: Settings, channel: Channel) -> str:
    return auth_keys(settings).cipher.decrypt(channel.secret_encrypted, associated_data=str(channel.id))


def _check_webhook_url(settings: Settings, url: str) -> None:
    """An address the outbound guard could reach at all: https (http only where plain http is allowed)."""
    parts = urlsplit(url)
    schemes = ("https", "http") if settings.outbound.allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise Unprocessable(
            "The webhook URL must be an https address (https://hooks.slack.com/services/…)",
            details=[{"field": "body.webhookUrl", "message": "an https URL", "type": "value_error"}],
        )


def _wrong_kind(field: str, kind: str) -> Unprocessable:
    return Unprocessable(
        f"A {kind} channel has no {field}",
        details=[{"field": f"body.{field}", "message": f"not a field of {kind}", "type": "extra"}],
    )


async def create_channel(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    kind: str,
    webhook_url: str | None,
    token: str | None,
    channel: str | None,
) -> Channel:
    settings = settings_of(session)
    secret = webhook_url if kind == "slack_webhook" else token
    assert secret is not None  # the request model requires it
    if webhook_url is not None:
        _check_webhook_url(settings, webhook_url)
    channel_id = uuid.uuid4()
    found = Channel(
        id=channel_id,
        org_id=principal.org_id,
        name=name,
        kind=kind,
        target=channel or "",
        secret_encrypted=_seal(settings, channel_id, secret),
        status="active",
        created_by=principal.user_id,
    )
    session.add(found)
    await session.flush()
    await session.refresh(found)
    return found


async def list_channels(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Channel], int]:
    query = select(Channel).where(Channel.org_id == org_id).order_by(Channel.created_at, Channel.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_channel(session: AsyncSession, *, org_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    return await get_in_org(session, Channel, channel_id, org_id=org_id, missing="No such channel")


async def update_channel(
    session: AsyncSession, *, org_id: uuid.UUID, channel_id: uuid.UUID, changes: dict[str, Any]
) -> Channel:
    """Rename, replace the secret or the bot's channel, turn on or off (on again: its failures are forgotten)."""
    found = await get_channel(session, org_id=org_id, channel_id=channel_id)
    settings = settings_of(session)
    webhook = found.kind == "slack_webhook"
    if changes.get("name") is not None:
        found.name = changes["name"]
    if changes.get("webhook_url") is not None:
        if not webhook:
            raise _wrong_kind("webhookUrl", found.kind)
        _check_webhook_url(settings, changes["webhook_url"])
        found.secret_encrypted = _seal(settings, found.id, changes["webhook_url"])
    for field in ("token", "channel"):
        if changes.get(field) is not None and webhook:
            raise _wrong_kind(field, found.kind)
    if changes.get("token") is not None:
        found.secret_encrypted = _seal(settings, found.id, changes["token"])
    if changes.get("channel") is not None:
        found.target = changes["channel"]
    if changes.get("enabled") is True:
        found.status, found.failing_since, found.disabled_at, found.last_error = "active", None, None, None
    elif changes.get("enabled") is False and found.status == "active":
        found.status, found.disabled_at = "disabled", dt.datetime.now(dt.UTC)
    await session.flush()
    await session.refresh(found)
    return found


async def delete_channel(session: AsyncSession, *, org_id: uuid.UUID, channel_id: uuid.UUID) -> None:
    """The channel, its place in rules and its deliveries."""
    await session.delete(await get_channel(session, org_id=org_id, channel_id=channel_id))
    await session.flush()


async def send_to_channel(settings: Settings, channel: Channel, alert: Alert) -> None:
    """Post ``alert`` to the channel through its sender; ``DeliveryError`` when Slack refuses or cannot be reached."""
    await SENDERS[channel.kind].send(
        slack_message(alert),
        secret=_secret_of(settings, channel),
        target=channel.target,
        policy=outbound_policy(settings.outbound),
        api_url=settings.alerts.slack_api_url,
    )


async def test_channel(session: AsyncSession, *, org_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    """Post a test message now (not through the queue), so whoever sets a channel up sees at once that it works."""
    found = await get_channel(session, org_id=org_id, channel_id=channel_id)
    alert = Alert(
        title="Northstar alerts are connected",
        body=f"Alerts of rules that post to “{found.name}” will appear here.",
        url=None,
        context="A test message, sent from the channel's settings",
    )
    try:
        await send_to_channel(settings_of(session), found, alert)
    except DeliveryError as exc:
        raise ChannelFailed(f"Slack did not take the test message: {exc}") from None
    return found
