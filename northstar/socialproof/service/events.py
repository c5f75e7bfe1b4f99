"""Events into storage: from the merchant's backend and from the widget, both through the group-commit writer.

Everything that is not stored is decided here, before a row exists: bots, spam referrers, pages that are not on
the site's domain, interactions with notifications the site does not have. Text fields are stored as plain text
and links only when they lead to the site (``sanitize.py``: the feed shows them to any renderer). Times are
corrected for the browser's clock (``sentAt``) and clamped to the last 7 days, whatever the dates sent; the place
comes from GeoIP unless the event names one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic.alias_generators import to_camel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from northstar.core.http import Unprocessable
from northstar.socialproof.customfields import FieldDefinition, check_values
from northstar.socialproof.ingest import MAX_EVENT_AGE, EventRejected, EventRow, EventWriter, WriteResult, clamp_time
from northstar.socialproof.sanitize import plain_text, site_link
from northstar.socialproof.schemas.events import CollectBatch, EventDetails, EventIn, WidgetEvent, WidgetVisitor
from northstar.socialproof.service.custom_fields import FieldDefinitions, load_definitions
from northstar.socialproof.service.sites import PublicSite, get_site
from northstar.socialproof.visitors import (
    GeoLocator,
    Place,
    SpamReferrers,
    VisitorIds,
    device_class,
    is_bot,
    visitor_tag,
)

DETAIL_FIELDS = tuple(EventDetails.model_fields)
TEXT_FIELDS = frozenset({"first_name", "city", "product"})
LINK_FIELDS = frozenset({"product_url"})


def _details(details: EventDetails | None, domain: str) -> dict[str, Any]:
    """The details as stored: text fields as plain text, links only to the site, empty ones left out."""
    if details is None:
        return {}
    stored = {}
    for key in DETAIL_FIELDS:
        value = getattr(details, key)
        if key in TEXT_FIELDS and value is not None:
            value = plain_text(value) or None
        elif key in LINK_FIELDS:
            value = site_link(value, domain)
        if value is not None:
            stored[to_camel(key)] = value
    return stored


def _event_name(name: str | None) -> str | None:
    """A custom event's name as plain text (None when it was nothing but markup)."""
    return None if name is None else plain_text(name) or None


async def record_events(
    session: AsyncSession,
    *,
    writer: EventWriter,
    visitors: VisitorIds,
    org_id: uuid.UUID,
    site_id: uuid.UUID,
    events: list[EventIn],
    received_at: datetime | None = None,
) -> WriteResult:
    """Events from the merchant's backend, stored before this returns (idempotent by event id).

    ``received_at`` is when they arrived: now, unless a replay of traffic received earlier says when (the demo
    seed's weeks of events); times are clamped against it as they were on arrival."""
    site = await get_site(session, org_id=org_id, site_id=site_id)
    now = received_at or datetime.now(UTC)
    definitions: Mapping[str, FieldDefinition] | None = None
    rows: list[EventRow] = []
    rejected: list[dict[str, str]] = []
    for position, event in enumerate(events):
        given: dict[str, Any] | None = None
        payload = _details(event, site.domain)
        name = _event_name(event.name)
        if event.name is not None and name is None:
            raise Unprocessable(
                "The events are not valid",
                details=[
                    {
                        "field": f"body.events.{position}.name",
                        "message": "the name must be plain text, not markup",
                        "type": "value_error",
                    }
                ],
            )
        if event.visitor_id is not None:
            payload["tag"] = visitor_tag(site.site_key, event.visitor_id)
        if event.custom is not None:
            if definitions is None:
                definitions = await load_definitions(session, org_id=org_id)
            checked = check_values(definitions, event.custom)
            rejected.extend(
                {
                    "field": f"body.events.{position}.custom.{problem.key}",
                    "message": str(problem),
                    "type": "custom_field",
                }
                for problem in checked.problems
            )
            if checked.stored:
                payload["custom"] = checked.stored
            given = checked.given
        rows.append(
            EventRow(
                id=event.id,
                org_id=org_id,
                site_id=site.id,
                event_type=event.type,
                event_name=name,
                occurred_at=clamp_time(event.occurred_at, now),
                url=site_link(event.url, site.domain),
                payload=payload,
                visitor_id=visitors.identified(site.id, event.visitor_id) if event.visitor_id is not None else None,
                custom=given,
            )
        )
    if rejected:  # nothing of the batch is stored: the caller fixes the values and sends it again
        raise EventRejected(
            "Custom values do not match their fields; no event of the batch was stored", details=rejected
        )
    return await writer.write(rows)


@dataclass(frozen=True)
class Collector:
    """What the public collection endpoint needs, built once per process."""

    writer: EventWriter
    visitors: VisitorIds
    geo: GeoLocator
    spam: SpamReferrers
    fields: FieldDefinitions


async def visitor_of(
    collector: Collector, site: PublicSite, visitor: WidgetVisitor, *, ip: str, user_agent: str
) -> str:
    """The visitor id of a widget request: identified, else the site's persistent first-party id, else cookieless."""
    if visitor.user_id is not None:
        return collector.visitors.identified(site.id, visitor.user_id)
    return await browser_visitor(collector, site, local_id=visitor.local_id, ip=ip, user_agent=user_agent)


@dataclass(frozen=True)
class Collected:
    """What became of a widget batch: the write, how many events were dropped before storage, and which of those
    were rejected for their custom values (with the reason)."""

    result: WriteResult
    dropped: int
    rejected: list[dict[str, str]]


def _occurred(event: WidgetEvent, *, sent_at: datetime | None, now: datetime) -> datetime:
    """The browser's time shifted by its clock's error (now - sentAt), then clamped: that is now less how long
    before sending it happened by the browser's own clock, which no date, however far off, can overflow."""
    if event.occurred_at is None:
        return now
    moment = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    if sent_at is None:
        return clamp_time(moment, now)
    age = (sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC)) - moment
    return now - min(max(age, timedelta(0)), MAX_EVENT_AGE)


async def browser_visitor(
    collector: Collector, site: PublicSite, *, local_id: str | None, ip: str, user_agent: str
) -> str:
    """The visitor id of a browser: its first-party id's hash where the site keeps one (stable across days),
    else the cookieless daily id. A/B assignment uses it too, so the feed and the events agree on the visitor."""
    if local_id is not None and site.persistent_visitor_id and 8 <= len(local_id) <= 64:
        return collector.visitors.device(site.id, local_id)
    return await collector.visitors.anonymous(site.id, ip, user_agent)


async def collect(
    collector: Collector,
    site: PublicSite,
    batch: CollectBatch,
    *,
    ip: str,
    user_agent: str,
    received_at: datetime | None = None,
) -> Collected:
    """Store a widget batch: its good events are stored even when others are rejected for their custom values.
    ``received_at`` as for ``record_events``."""
    if is_bot(user_agent) or not site.collecting:  # past the quota's grace nothing more is stored
        return Collected(WriteResult(0, 0), len(batch.events), [])
    kept = [
        event
        for event in batch.events
        if site_link(event.url, site.domain)
        and not collector.spam.is_spam(event.referrer)
        and (event.name is None or _event_name(event.name))
    ]
    if not kept:
        return Collected(WriteResult(0, 0), len(batch.events), [])
    visitor_id = await visitor_of(collector, site, batch.visitor, ip=ip, user_agent=user_agent)
    place = collector.geo.locate(ip) or Place(None, None)
    device = device_class(user_agent)
    now = received_at or datetime.now(UTC)
    definitions = await collector.fields.of(site.org_id) if any(event.custom for event in kept) else {}
    rows, rejected = [], []
    for event in kept:
        payload = _details(event.details, site.domain)
        given = None
        if event.custom:
            checked = check_values(definitions, event.custom)
            if checked.problems:
                reason = "; ".join(str(problem) for problem in checked.problems)
                rejected.append({"id": str(event.id), "reason": reason})
                continue
            if checked.stored:
                payload["custom"] = checked.stored
            given = checked.given
        if event.item_id is not None:
            payload["itemId"] = str(event.item_id)
        if "country" not in payload and "city" not in payload:  # a place the event names is kept whole
            payload.update(
                {key: value for key, value in (("country", place.country), ("city", place.city)) if value is not None}
            )
        notification = event.notification_id if event.notification_id in site.notification_ids else None
        rows.append(
            EventRow(
                id=event.id,
                org_id=site.org_id,
                site_id=site.id,
                event_type=event.type,
                event_name=_event_name(event.name),
                notification_id=notification,
                visitor_id=visitor_id,
                url=event.url,
                payload=payload,
                occurred_at=_occurred(event, sent_at=batch.sent_at, now=now),
                variant_id=event.variant_id if notification is not None else None,
                device=device,
                custom=given,
            )
        )
    return Collected(await collector.writer.write(rows), len(batch.events) - len(rows), rejected)


async def ensure_event_partitions(connection: AsyncConnection, *, months_ahead: int = 3) -> int:
    """Create the event partitions from last month to ``months_ahead`` (as the owner); returns how many."""
    created = await connection.scalar(
        text(
            "SELECT coalesce(sum(socialproof.ensure_event_partitions((now() + make_interval(months => m))::date)), 0)"
            " FROM generate_series(-1, :ahead) m"
        ),
        {"ahead": months_ahead},
    )
    return int(created or 0)
