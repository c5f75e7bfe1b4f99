"""The social proof module's per-process state: the event writer, the widget caches and who keeps them fresh.

Caches (all in-process, all short-lived, all dropped at once when a site, template or notification changes
anywhere, which every process hears through ``socialproof.changed``):

* site key → site (``site_cache_seconds``), so a beacon costs no lookup;
* site → feed state (``feed_cache_seconds``): notifications, recent events, counters;
* (site, page, country) → rendered feed bytes and their ETag, which is what ``/widget/{key}/feed`` serves.

While the database is down, the site and rendered-feed caches serve their last values, stale, rather than fail:
a page keeps its popups through an outage.

New events reach the merchant's live dashboard (``socialproof.events`` on ``/events/stream``) after they commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from northstar.core.cache import SharedCache
from northstar.core.db import Database, set_tenant_context, to_libpq_url
from northstar.core.dbguard import database_problem
from northstar.core.pubsub import MAX_PAYLOAD, Event, EventHub
from northstar.settings import Settings
from northstar.socialproof.customfields import with_defaults
from northstar.socialproof.ingest import EventRow, EventWriter
from northstar.socialproof.live import RedisVisitors
from northstar.socialproof.service.custom_fields import FieldDefinitions
from northstar.socialproof.service.events import Collector
from northstar.socialproof.service.feed import (
    FeedState,
    load_feed_state,
    page_count,
    page_of,
    render_feed,
    silent_feed,
)
from northstar.socialproof.service.profiles import audience_matches, profile_facts
from northstar.socialproof.service.sites import PublicSite, load_public_site
from northstar.socialproof.visitors import GeoLocator, SpamReferrers, VisitorIds
from northstar.socialproof.webhook_events import storing_hook

LIVE_EVENTS_TOPIC = "socialproof.events"
CHANGED_TOPIC = "socialproof.changed"
LIVE_EVENTS_PER_MESSAGE = 20
Choices = tuple[tuple[uuid.UUID, uuid.UUID], ...]  # (notification, variant shown) of a visitor's A/B tests
VisitorOf = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class RenderedFeed:
    etag: str
    body: bytes


class SocialProofRuntime:
    def __init__(self, *, database: Database, settings: Settings, hub: EventHub, redis: Any) -> None:
        config = settings.socialproof
        self.database = database
        self.config = config
        self.hub = hub
        self.sites: SharedCache[str, PublicSite | None] = SharedCache(
            maxsize=50_000, ttl_seconds=config.site_cache_seconds, stale_if=database_down
        )
        self.states: SharedCache[uuid.UUID, FeedState] = SharedCache(
            maxsize=20_000, ttl_seconds=config.feed_cache_seconds, stale_if=database_down
        )
        self.pages: SharedCache[tuple[uuid.UUID, uuid.UUID, str], int] = SharedCache(
            maxsize=100_000, ttl_seconds=config.feed_cache_seconds
        )
        self.feeds: SharedCache[tuple[str, str, str | None, Choices], RenderedFeed] = SharedCache(
            maxsize=100_000, ttl_seconds=config.feed_cache_seconds, stale_if=database_down
        )
        self.writer = EventWriter(to_libpq_url(database.url), config, watch=database.watch)
        self.live = RedisVisitors(redis) if redis is not None else None
        self.collector = Collector(
            writer=self.writer,
            visitors=VisitorIds(database, settings.resolved_secret_key()),
            geo=GeoLocator(config.geoip_database),
            spam=SpamReferrers.load(config.spam_referrers_file),
            fields=FieldDefinitions(database, ttl_seconds=config.site_cache_seconds),
        )
        hub.add_listener(self._on_event)
        self.writer.add_listener(self._on_stored)
        self.writer.add_hook(storing_hook(settings.webhooks))

    async def close(self) -> None:
        await self.writer.close()
        self.collector.geo.close()

    def _on_event(self, event: Event) -> None:
        if event.topic == CHANGED_TOPIC:
            for cache in (self.sites, self.states, self.pages, self.feeds):
                cache.invalidate()
            self.collector.fields.invalidate()

    async def _on_stored(self, org_id: uuid.UUID, site_id: uuid.UUID, rows: list[EventRow]) -> None:
        if self.live is not None:
            await self.live.record(site_id, rows)
        await self.hub.publish(org_id, LIVE_EVENTS_TOPIC, live_summary(site_id, rows))

    async def site(self, site_key: str) -> PublicSite | None:
        async def load() -> PublicSite | None:
            async with self.database.sessionmaker() as session, session.begin():
                return await load_public_site(session, site_key=site_key)

        return await self.sites.get(site_key, load)

    async def feed(
        self, site: PublicSite, *, url: str, country: str | None, visitor: VisitorOf | None = None
    ) -> RenderedFeed:
        """The rendered feed of one page for one visitor, from cache (concurrent misses share one computation).

        Where a notification has a running A/B test, ``visitor()`` (the browser's visitor id, asked only then)
        picks its variant; the cache keeps one rendering per page and combination of variants."""
        page = page_of(url)
        state = await self._state(site, dt.datetime.now(dt.UTC))
        choices: Choices = ()
        tested = [notification for notification in state.notifications if notification.test_id is not None]
        if tested and visitor is not None:
            visitor_id = await visitor()
            choices = tuple(
                (notification.id, chosen)
                for notification in tested
                if (chosen := notification.choose(visitor_id)) is not None
            )

        async def render() -> RenderedFeed:
            if not site.showing:  # over the visitor quota: the widget stays silent
                return rendered(silent_feed(site).model_dump(mode="json", by_alias=True))
            now = dt.datetime.now(dt.UTC)
            counts = {
                notification.id: await self._page_count(state, notification.id, page, now)
                for notification in state.notifications
                if notification.page_scoped
            }
            feed = render_feed(state, url=url, country=country, page_counts=counts, now=now, choices=dict(choices))
            return rendered(feed.model_dump(mode="json", by_alias=True))

        return await self.feeds.get((site.site_key, url, country, choices), render)

    async def audience(self, site: PublicSite, visitor_id: str) -> list[uuid.UUID]:
        """The site's active notifications with an audience that this visitor's profile matches (one indexed read,
        none when no notification has an audience)."""
        state = await self._state(site, dt.datetime.now(dt.UTC))
        targeted = [notification for notification in state.notifications if notification.targeting.get("audience")]
        if not targeted:
            return []
        async with self.database.sessionmaker() as session, session.begin():
            await set_tenant_context(session, org_id=site.org_id)
            facts = await profile_facts(session, site_id=site.id, visitor_id=visitor_id)
        definitions = await self.collector.fields.of(site.org_id)
        facts = replace(facts, custom=with_defaults(definitions, facts.custom))
        return [item.id for item in targeted if audience_matches(item.targeting["audience"], facts)]

    async def _state(self, site: PublicSite, now: dt.datetime) -> FeedState:
        async def load() -> FeedState:
            async with self.database.sessionmaker() as session, session.begin():
                await set_tenant_context(session, org_id=site.org_id)
                state = await load_feed_state(session, site=site, items=self.config.feed_items, now=now)
            if self.live is not None:
                for notification in state.notifications:
                    if notification.type == "live_visitors" and not notification.page_scoped:
                        since = now - dt.timedelta(minutes=int(notification.source.get("windowMinutes", 5)))
                        live = await self.live.count(site.id, None, since)
                        notification.count = notification.count if live is None else live
            return state

        return await self.states.get(site.id, load)

    async def _page_count(self, state: FeedState, notification_id: uuid.UUID, page: str, now: dt.datetime) -> int:
        notification = next(item for item in state.notifications if item.id == notification_id)

        async def count() -> int:
            if self.live is not None and notification.type == "live_visitors":
                since = now - dt.timedelta(minutes=int(notification.source.get("windowMinutes", 5)))
                live = await self.live.count(state.site.id, page, since)
                if live is not None:
                    return live
            async with self.database.sessionmaker() as session, session.begin():
                await set_tenant_context(session, org_id=state.site.org_id)
                return await page_count(session, notification, site=state.site, page=page, now=now)

        return await self.pages.get((state.site.id, notification_id, page), count)


def rendered(feed: dict[str, Any]) -> RenderedFeed:
    body = orjson.dumps({"data": feed})
    return RenderedFeed(etag=f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"', body=body)


def database_down(exc: BaseException) -> bool:
    return database_problem(exc) is not None


def live_summary(site_id: uuid.UUID, rows: list[EventRow]) -> dict[str, Any]:
    """What the merchant's live dashboard hears about new events: counts by type and the latest few."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.event_type] = counts.get(row.event_type, 0) + 1
    latest = sorted(rows, key=lambda row: row.occurred_at, reverse=True)[:LIVE_EVENTS_PER_MESSAGE]
    events = [
        {
            "id": str(row.id),
            "type": row.event_type,
            "name": row.event_name,
            "notificationId": str(row.notification_id) if row.notification_id else None,
            "occurredAt": row.occurred_at.isoformat(),
            "page": page_of(row.url)[:200] if row.url else None,
            "country": row.payload.get("country"),
            "city": row.payload.get("city"),
            "product": str(row.payload.get("product"))[:80] if row.payload.get("product") else None,
        }
        for row in latest
    ]
    summary = {"siteId": str(site_id), "total": len(rows), "counts": counts, "events": events}
    while len(orjson.dumps(summary)) > MAX_PAYLOAD - 200 and events:
        events.pop()
    return summary
