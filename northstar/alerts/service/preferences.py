"""Each member's alert preferences: the channels they get each rule kind on, their time zone and quiet hours,
and the daily digest.

A member without stored preferences gets every kind by e-mail and in-app, in the organization's time zone, at
any hour. Quiet hours hold e-mail (and the digest) until they end; the in-app inbox is silent and is never held.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts.models import PERSONAL_CHANNELS, RULE_KINDS, Preferences
from northstar.metrics import service as metrics_service

DEFAULT_CHANNELS = list(PERSONAL_CHANNELS)
DEFAULT_DIGEST_HOUR = 8


def defaults(*, org_id: uuid.UUID, user_id: uuid.UUID) -> Preferences:
    """What a member who never chose anything gets (not stored)."""
    return Preferences(
        org_id=org_id,
        user_id=user_id,
        time_zone=None,
        quiet_start=None,
        quiet_end=None,
        digest=False,
        digest_hour=DEFAULT_DIGEST_HOUR,
        channels={},
        email_failing_since=None,
        email_last_error=None,
        email_disabled_at=None,
    )


async def preferences_of(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Preferences:
    """The member's stored preferences, or the defaults."""
    return await session.get(Preferences, (org_id, user_id)) or defaults(org_id=org_id, user_id=user_id)


async def preferences_of_members(
    session: AsyncSession, *, org_id: uuid.UUID, user_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Preferences]:
    """``preferences_of`` for many members in one query (an alert to a thousand of them)."""
    stored = await session.scalars(
        select(Preferences).where(Preferences.org_id == org_id, Preferences.user_id.in_(user_ids))
    )
    found = {preferences.user_id: preferences for preferences in stored}
    return {user_id: found.get(user_id) or defaults(org_id=org_id, user_id=user_id) for user_id in user_ids}


async def stored_preferences(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID) -> Preferences:
    """The member's preferences as a stored row, created with the defaults the first time they change."""
    found = await session.get(Preferences, (org_id, user_id))
    if found is None:
        found = defaults(org_id=org_id, user_id=user_id)
        session.add(found)
        await session.flush()
    return found


def channels_for(preferences: Preferences, kind: str) -> list[str]:
    return list(preferences.channels.get(kind, DEFAULT_CHANNELS))


def all_channels(preferences: Preferences) -> dict[str, list[str]]:
    return {kind: channels_for(preferences, kind) for kind in RULE_KINDS}


async def zone_of(session: AsyncSession, preferences: Preferences) -> str:
    """The member's time zone, else the organization's."""
    return preferences.time_zone or await metrics_service.time_zone_of(session, preferences.org_id)


def quiet_until(now: dt.datetime, zone: str, start: dt.time | None, end: dt.time | None) -> dt.datetime | None:
    """When the quiet hours ``now`` falls in end (in UTC), or None outside them (or without any)."""
    if start is None or end is None:
        return None
    tz = zoneinfo.ZoneInfo(zone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=tz).astimezone(dt.UTC)


def next_digest(now: dt.datetime, zone: str, hour: int) -> dt.datetime:
    """The next time (after ``now``) the clock in ``zone`` reads ``hour``:00, in UTC."""
    tz = zoneinfo.ZoneInfo(zone)
    local = now.astimezone(tz)
    at = dt.datetime.combine(local.date(), dt.time(hour), tzinfo=tz)
    if at <= local:
        at = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(hour), tzinfo=tz)
    return at.astimezone(dt.UTC)


async def update_preferences(
    session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, changes: dict[str, Any]
) -> Preferences:
    """Apply the fields the member sent (``changes``: only those, a ``None`` clears the time zone or quiet hours)."""
    preferences = await stored_preferences(session, org_id=org_id, user_id=user_id)
    if "time_zone" in changes:
        preferences.time_zone = changes["time_zone"]
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        preferences.quiet_start, preferences.quiet_end = (quiet["start"], quiet["end"]) if quiet else (None, None)
    for name in ("digest", "digest_hour"):
        if changes.get(name) is not None:
            setattr(preferences, name, changes[name])
    if changes.get("channels"):
        preferences.channels = {**preferences.channels, **changes["channels"]}
    if changes.get("email_enabled") is not None:
        enabled = changes["email_enabled"]
        preferences.email_disabled_at = None if enabled else dt.datetime.now(dt.UTC)
        preferences.email_failing_since = None
        if enabled:
            preferences.email_last_error = None
    await session.flush()
    await session.refresh(preferences)
    return preferences


async def stop_email(session: AsyncSession, *, org_id: uuid.UUID, user_id: uuid.UUID, kind: str) -> Preferences:
    """No more e-mail of one rule kind, or of any (``"all"``): what an unsubscribe link does."""
    preferences = await stored_preferences(session, org_id=org_id, user_id=user_id)
    kinds = RULE_KINDS if kind == "all" else (kind,)
    preferences.channels = {
        **preferences.channels,
        **{name: [channel for channel in channels_for(preferences, name) if channel != "email"] for name in kinds},
    }
    await session.flush()
    return preferences


def email_stopped(preferences: Preferences, kind: str) -> bool:
    kinds = RULE_KINDS if kind == "all" else (kind,)
    return all("email" not in channels_for(preferences, name) for name in kinds)
