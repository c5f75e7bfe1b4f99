"""What a page of a merchant's site should show now: the widget feed.

``load_feed_state`` reads, per site, everything that does not depend on the page: the active notifications with
their templates, the recent events they show (already anonymised and rendered), site-wide counters, the review
average. ``page_counts`` adds the few numbers that depend on the page (visitors on this page, purchases of this
product). ``render_feed`` then applies targeting (URL rules in RE2, countries, the schedule in the site's time
zone) and returns the JSON the widget reads. Device and new-versus-returning targeting, seen and own events, and
the display rules are applied in the browser, which alone knows them. A notification with an ``audience`` (rules
on the visitor's profile) is marked so; the widget asks ``POST /api/v1/widget/audience`` which of those this
visitor may see (``service/profiles.py``), so the feed itself stays one cached document per page.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import re2
from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.socialproof.models import NO_NOTIFICATION
from northstar.socialproof.sanitize import plain_text, site_link
from northstar.socialproof.schemas.feed import Feed, FeedItem, FeedNotification, FeedSite
from northstar.socialproof.service.abtests import ServedVariant, Serving, assign, load_serving
from northstar.socialproof.service.sites import PublicSite
from northstar.socialproof.sketch import Sketch
from northstar.socialproof.templating import SAMPLE, render_parts

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERIOD_PHRASES = {"hour": "in the last hour", "today": "today", "week": "this week"}
ACTIVITY_VERBS = {"purchase": "bought", "signup": "signed up", "review": "reviewed"}
PAYLOAD_TEXTS = frozenset({"firstName", "city", "product"})
COUNTER_VERBS = {
    "purchase": ("made a purchase", "bought this"),
    "signup": ("signed up", "signed up here"),
    "review": ("left a review", "reviewed this"),
}


def page_of(url: str) -> str:
    """The page a URL is on, for counting: scheme, host and path, without query, fragment or trailing slash."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, (parts.hostname or "").lower(), parts.path.rstrip("/") or "/", "", ""))


@dataclass
class NotificationState:
    id: uuid.UUID
    type: str
    message: str | None
    css: str
    name: str
    source: dict[str, Any]
    targeting: dict[str, Any]
    display: dict[str, Any]
    anonymization: dict[str, Any]
    items: list[FeedItem] = field(default_factory=list)
    count: int = 0
    rating: float | None = None
    review_count: int = 0
    variant_id: uuid.UUID | None = None  # the A/B test variant this state renders
    test_id: uuid.UUID | None = None  # a running test splits the notification among ``variants``
    variants: list[tuple[int, NotificationState]] = field(default_factory=list)  # (weight, state of the variant)

    def choose(self, visitor_id: str) -> uuid.UUID | None:
        """The variant a visitor sees (sticky, stateless: ``abtests.assign``); None without a running test."""
        if self.test_id is None:
            return None
        return assign(visitor_id, self.test_id, [(variant.variant_id or self.id, w) for w, variant in self.variants])

    @property
    def page_scoped(self) -> bool:
        return self.type in ("live_visitors", "period_counter") and self.source.get("scope") == "page"


@dataclass
class FeedState:
    site: PublicSite
    notifications: list[NotificationState]
    loaded_at: dt.datetime


_ACTIVE = text("""
    SELECT n.id, n.type, n.name, n.source, n.targeting, n.display, n.anonymization, t.message, t.css_content
    FROM socialproof.notifications n
    LEFT JOIN socialproof.templates t ON t.org_id = n.org_id AND t.id = n.template_id
    WHERE n.org_id = :org AND n.site_id = :site AND n.status = 'active' AND 'popup' = ANY (n.channels)
    ORDER BY n.created_at, n.id""")
_RECENT = text("""
    SELECT id, event_type, event_name, url, payload, occurred_at FROM socialproof.notification_events
    WHERE site_id = :site AND event_type = ANY (:types) AND occurred_at BETWEEN :oldest AND :newest
      AND (CAST(:custom AS text) IS NULL OR event_type <> 'custom' OR event_name = :custom)
    ORDER BY occurred_at DESC LIMIT :limit""")
_COUNTED = text("""
    SELECT coalesce(sum(events), 0) FROM socialproof.event_counts
    WHERE site_id = :site AND grain = :grain AND bucket >= :since AND event_type = ANY (:types)
      AND notification_id = :none""")
_CUSTOM_COUNTED = text("""
    SELECT count(*) FROM socialproof.notification_events
    WHERE site_id = :site AND event_type = ANY (:types) AND occurred_at >= :since
      AND (event_type <> 'custom' OR event_name = :custom)""")
_PAGE_COUNTED = text("""
    SELECT count(*) FROM socialproof.notification_events
    WHERE site_id = :site AND event_type = ANY (:types) AND occurred_at >= :since
      AND (CAST(:custom AS text) IS NULL OR event_type <> 'custom' OR event_name = :custom)
      AND (regexp_replace(url, '[?#].*$', '') IN (:page, :page || '/')
           OR regexp_replace(payload ->> 'productUrl', '[?#].*$', '') IN (:page, :page || '/'))""")
_PAGE_VISITORS = text("""
    SELECT count(DISTINCT visitor_id) FROM socialproof.notification_events
    WHERE site_id = :site AND event_type = 'page_view' AND occurred_at >= :since
      AND regexp_replace(url, '[?#].*$', '') IN (:page, :page || '/')""")
_REVIEWS = text("""
    SELECT count(*), avg((payload ->> 'rating')::float) FROM socialproof.notification_events
    WHERE site_id = :site AND event_type = 'review' AND occurred_at >= :since AND payload ? 'rating'""")
_SKETCHES = text("""
    SELECT registers FROM socialproof.visitor_sketches
    WHERE site_id = :site AND grain = 'minute' AND bucket >= :since AND notification_id = :none""")
_PENDING_HASHES = text("""
    SELECT coalesce(array_agg(hash), '{}') FROM socialproof.visitor_hashes, unnest(hashes) AS hash
    WHERE site_id = :site AND minute >= :since AND notification_id = :none""")


def period_start(period: str, *, now: dt.datetime, timezone: str) -> tuple[str, dt.datetime]:
    """The rollup grain and first bucket of a counter's period: the last hour, today or this week, locally."""
    if period == "hour":
        return "minute", (now - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        midnight -= dt.timedelta(days=6)
    return "day", midnight.astimezone(dt.UTC)


async def active_visitors(session: AsyncSession, *, site_id: uuid.UUID, since: dt.datetime) -> int:
    """Visitors with any event since ``since``: minute sketches merged with what is not folded in yet."""
    visitors = Sketch()
    params = {"site": site_id, "since": since, "none": NO_NOTIFICATION}
    for data in (await session.scalars(_SKETCHES, params)).all():
        visitors.merge(Sketch.decode(data))
    visitors.merge(Sketch.of(await session.scalar(_PENDING_HASHES, params) or []))
    return visitors.estimate()


def _as_variant(state: NotificationState, variant: ServedVariant) -> NotificationState:
    """The notification as a variant shows it: its message or template, CSS, and display rules over the base."""
    return replace(
        state,
        message=variant.message if variant.message is not None else state.message,
        css=variant.css if variant.css is not None else state.css,
        display={**state.display, **variant.display},
        variant_id=variant.id,
        items=[],
        variants=[],
    )


async def _tested(
    session: AsyncSession, state: NotificationState, serving: Serving, *, site: PublicSite, items: int, now: dt.datetime
) -> NotificationState:
    """A completed test's winner replaces the notification; a running test renders each of its variants."""
    if serving.test_id is None:
        state = _as_variant(state, serving.variants[0])
        state.variant_id = None  # the winner is the notification now: no test to credit
        await _fill(session, state, site=site, items=items, now=now)
        return state
    await _fill(session, state, site=site, items=items, now=now)
    state.test_id = serving.test_id
    for variant in serving.variants:
        shown = _as_variant(state, variant)
        await _fill(session, shown, site=site, items=items, now=now)
        state.variants.append((variant.weight, shown))
    return state


async def load_feed_state(session: AsyncSession, *, site: PublicSite, items: int, now: dt.datetime) -> FeedState:
    """Everything of the feed that does not depend on the page (the session is bound to the site's org)."""
    notifications = []
    servings = await load_serving(session, org_id=site.org_id, site_id=site.id)
    for row in (await session.execute(_ACTIVE, {"org": site.org_id, "site": site.id})).all():
        state = NotificationState(
            id=row.id,
            type=row.type,
            name=row.name,
            source=row.source,
            targeting=row.targeting,
            display=row.display,
            anonymization=row.anonymization,
            message=row.message,
            css=row.css_content or "",
        )
        serving = servings.get(row.id)
        if serving is not None:
            state = await _tested(session, state, serving, site=site, items=items, now=now)
        else:
            await _fill(session, state, site=site, items=items, now=now)
        notifications.append(state)
    return FeedState(site=site, notifications=notifications, loaded_at=now)


async def _fill(
    session: AsyncSession, state: NotificationState, *, site: PublicSite, items: int, now: dt.datetime
) -> None:
    source = state.source
    types = list(source.get("eventTypes") or [])
    custom = source.get("customEvent")
    if state.type == "recent_activity":
        rows = (
            await session.execute(
                _RECENT,
                {
                    "site": site.id,
                    "types": types,
                    "custom": custom,
                    "limit": items,
                    "oldest": now - dt.timedelta(seconds=int(source.get("maxAgeSeconds", 7 * 86400))),
                    "newest": now - dt.timedelta(seconds=int(source.get("minAgeSeconds", 0))),
                },
            )
        ).all()
        state.items = [activity_item(state, row, locale=site.locale, domain=site.domain) for row in rows]
    elif state.type == "period_counter" and not state.page_scoped:
        grain, since = period_start(str(source.get("period")), now=now, timezone=site.timezone)
        if custom:
            state.count = int(
                await session.scalar(
                    _CUSTOM_COUNTED, {"site": site.id, "types": types, "since": since, "custom": custom}
                )
                or 0
            )
        else:
            state.count = int(
                await session.scalar(
                    _COUNTED, {"site": site.id, "grain": grain, "since": since, "types": types, "none": NO_NOTIFICATION}
                )
                or 0
            )
    elif state.type == "live_visitors" and not state.page_scoped:
        since = now - dt.timedelta(minutes=int(source.get("windowMinutes", 5)))
        state.count = await active_visitors(session, site_id=site.id, since=since)
    elif state.type == "review_highlight":
        since = now - dt.timedelta(seconds=int(source.get("maxAgeSeconds", 7 * 86400)))
        count, average = (await session.execute(_REVIEWS, {"site": site.id, "since": since})).one()
        state.review_count, state.rating = int(count), (round(float(average), 1) if average is not None else None)


async def page_count(
    session: AsyncSession, state: NotificationState, *, site: PublicSite, page: str, now: dt.datetime
) -> int:
    """The page-scoped number of a live-visitors or period-counter notification."""
    source = state.source
    if state.type == "live_visitors":
        since = now - dt.timedelta(minutes=int(source.get("windowMinutes", 5)))
        return int(await session.scalar(_PAGE_VISITORS, {"site": site.id, "since": since, "page": page}) or 0)
    _, since = period_start(str(source.get("period")), now=now, timezone=site.timezone)
    return int(
        await session.scalar(
            _PAGE_COUNTED,
            {
                "site": site.id,
                "types": list(source.get("eventTypes") or []),
                "since": since,
                "page": page,
                "custom": source.get("customEvent"),
            },
        )
        or 0
    )


@lru_cache(maxsize=256)
def _territories(locale: str) -> Mapping[str, str]:
    try:
        return Locale.parse(locale.replace("-", "_")).territories
    except (UnknownLocaleError, ValueError):
        return Locale("en").territories


def _first_name(value: str | None, anonymization: Mapping[str, Any]) -> str | None:
    if not value:
        return None
    excluded = {name.strip().lower() for name in anonymization.get("excluded", [])}
    if value.strip().lower() in excluded or value.split()[0].lower() in excluded:
        return None
    if not anonymization.get("enabled", True):
        return value.strip()
    if anonymization.get("name") == "someone":
        return None
    first = value.split()[0]
    return first[:1].upper() + first[1:]


def _place(payload: Mapping[str, Any], anonymization: Mapping[str, Any], locale: str) -> tuple[str | None, str | None]:
    """(city, country name in the site's language) as far as anonymisation lets them show."""
    location = anonymization.get("location", "city") if anonymization.get("enabled", True) else "city"
    country = payload.get("country")
    country_name = _territories(locale).get(country, country) if isinstance(country, str) else None
    if location == "none":
        return None, None
    return (payload.get("city") if location == "city" else None), country_name


def _texts(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload with its text fields as plain text: what was stored before ingestion made them so, too."""
    return {
        key: plain_text(value) if key in PAYLOAD_TEXTS and isinstance(value, str) else value
        for key, value in payload.items()
    }


def custom_values(custom: Any) -> dict[str, Any]:
    """An event's custom values as ``custom.<key>`` template variables, text as plain text (as stored)."""
    if not isinstance(custom, Mapping):
        return {}
    return {
        f"custom.{key}": plain_text(value) if isinstance(value, str) else value
        for key, value in custom.items()
        if isinstance(value, str | int | float | bool)
    }


def activity_item(state: NotificationState, row: Any, *, locale: str, domain: str) -> FeedItem:
    """One recent event as the widget shows it, anonymised and rendered (``timeAgo`` left to the widget); its
    text is plain text and its link, if any, a page of the site."""
    payload = _texts(row.payload or {})
    anonymization = state.anonymization
    first_name = _first_name(payload.get("firstName"), anonymization)
    city, country = _place(payload, anonymization, locale)
    place = city or country
    event_name = plain_text(row.event_name or "").replace("_", " ")
    link = site_link(payload.get("productUrl"), domain) or site_link(row.url, domain)
    values = {
        "firstName": first_name,
        "city": city,
        "country": country,
        "product": payload.get("product"),
        "productUrl": link,
        "eventName": event_name,
        **custom_values(payload.get("custom")),
    }
    if state.message is not None:
        parts = render_parts(state.message, values, locale=locale)
    else:
        who = (first_name or "Someone") + (f" from {place}" if place else "")
        if row.event_type == "custom":
            what = event_name
        else:
            product = payload.get("product")
            what = ACTIVITY_VERBS[row.event_type] + (f" {product}" if product else "")
        parts = [f"{who} {what} · ", ""]
    return FeedItem(id=str(row.id), parts=parts, at=row.occurred_at.isoformat(), url=link, tag=payload.get("tag"))


def _counter_parts(state: NotificationState, count: int, locale: str) -> list[str]:
    number = format_decimal(count, locale=locale.replace("-", "_"))
    source = state.source
    period = PERIOD_PHRASES.get(str(source.get("period")), "")
    values = {
        "count": count,
        "period": period,
        "rating": state.rating,
        "reviewCount": state.review_count,
        "eventName": (source.get("customEvent") or "").replace("_", " "),
    }
    if state.message is not None:
        return render_parts(state.message, values, locale=locale)
    people = "person" if count == 1 else "people"
    if state.type == "live_visitors":
        verb = "is" if count == 1 else "are"
        where = "viewing this page" if state.page_scoped else "on this site right now"
        return [f"{number} {people} {verb} {where}"]
    if state.type == "review_highlight":
        reviews = "review" if state.review_count == 1 else "reviews"
        rating = format_decimal(state.rating or 0, locale=locale.replace("-", "_"))
        return [f"{rating}★ from {format_decimal(state.review_count, locale=locale.replace('-', '_'))} {reviews}"]
    kind = (source.get("eventTypes") or ["purchase"])[0]
    site_verb, page_verb = COUNTER_VERBS.get(kind, (values["eventName"], values["eventName"]))
    return [f"{number} {people} {page_verb if state.page_scoped else site_verb} {period}".rstrip()]


def _url_matches(rules: list[Mapping[str, Any]], url: str) -> bool:
    includes = [rule for rule in rules if not rule.get("exclude")]
    if any(_rule_matches(rule, url) for rule in rules if rule.get("exclude")):
        return False
    return not includes or any(_rule_matches(rule, url) for rule in includes)


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> Any:
    return re2.compile(pattern)


def _rule_matches(rule: Mapping[str, Any], url: str) -> bool:
    """A rule names a full URL or a path: ``/checkout``, ``https://shop.example.com/checkout`` and ``^/cart`` work."""
    value = str(rule.get("value", ""))
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if rule.get("match") == "exact":
        if value.startswith("/"):
            return parts.path.rstrip("/") == value.rstrip("/") or path == value
        return url.rstrip("/") == value.rstrip("/") or page_of(url) == page_of(value)
    if rule.get("match") == "contains":
        return value in url
    pattern = _compiled(value)
    return pattern.search(url) is not None or pattern.search(path) is not None


def _in_schedule(schedule: Mapping[str, Any] | None, *, now: dt.datetime, timezone: str) -> bool:
    if not schedule:
        return True
    local = now.astimezone(zoneinfo.ZoneInfo(timezone))
    if WEEKDAYS[local.weekday()] not in schedule.get("weekdays", WEEKDAYS):
        return False
    start, end = schedule.get("start"), schedule.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        return True
    clock = local.strftime("%H:%M")
    return start <= clock < end if start <= end else clock >= start or clock < end  # overnight windows


def targeted(state: NotificationState, *, url: str, country: str | None, now: dt.datetime, timezone: str) -> bool:
    targeting = state.targeting
    countries = targeting.get("countries") or []
    if countries and country not in countries:
        return False
    return _url_matches(targeting.get("urls") or [], url) and _in_schedule(
        targeting.get("schedule"), now=now, timezone=timezone
    )


def render_feed(
    state: FeedState,
    *,
    url: str,
    country: str | None,
    page_counts: Mapping[uuid.UUID, int],
    now: dt.datetime,
    choices: Mapping[uuid.UUID, uuid.UUID] | None = None,
) -> Feed:
    """The feed document for one page; ``choices`` names the variant of each tested notification this visitor
    sees (the first variant without a choice)."""
    site = state.site
    shown = []
    live = False
    for tested in state.notifications:
        if not targeted(tested, url=url, country=country, now=now, timezone=site.timezone):
            continue
        notification = _variant_shown(tested, (choices or {}).get(tested.id))
        live = live or notification.type != "announcement"
        items = _items(notification, page_counts.get(notification.id), site.locale)
        if not items:
            continue
        shown.append(
            FeedNotification(
                id=str(notification.id),
                type=notification.type,
                display=notification.display,
                devices=notification.targeting.get("devices") or ["desktop", "mobile", "tablet"],
                visitors=notification.targeting.get("visitors", "all"),
                audience=bool(notification.targeting.get("audience")),
                css=notification.css,
                items=items,
                variant_id=str(notification.variant_id) if notification.variant_id else None,
            )
        )
    return Feed(site=_feed_site(site), notifications=shown, live=live)


def _feed_site(site: PublicSite) -> FeedSite:
    settings = site.settings
    return FeedSite(
        position=settings.get("position", "bottom-left"),
        theme=settings.get("theme", "auto"),
        locale=site.locale,
        persistent_visitor_id=site.persistent_visitor_id,
    )


def _variant_shown(state: NotificationState, chosen: uuid.UUID | None) -> NotificationState:
    if not state.variants:
        return state
    return next((shown for _, shown in state.variants if shown.variant_id == chosen), state.variants[0][1])


def silent_feed(site: PublicSite) -> Feed:
    """The feed of a site whose organization is over its visitor quota: nothing to show, nothing to follow."""
    return Feed(site=_feed_site(site), notifications=[], live=False)


def _items(notification: NotificationState, page_count: int | None, locale: str) -> list[FeedItem]:
    if notification.type == "recent_activity":
        return notification.items
    if notification.type == "announcement":
        parts = render_parts(notification.message, {}, locale=locale) if notification.message else [notification.name]
        return [FeedItem(id=str(notification.id), parts=parts)]
    if notification.type == "review_highlight":
        if not notification.review_count or notification.rating is None:
            return []
        return [
            FeedItem(id=str(notification.id), parts=_counter_parts(notification, notification.review_count, locale))
        ]
    count = page_count if page_count is not None else notification.count
    if count < int(notification.source.get("minCount", 1)):
        return []
    return [FeedItem(id=str(notification.id), parts=_counter_parts(notification, count, locale))]


def preview_feed(
    *,
    site_settings: Mapping[str, Any],
    domain: str,
    fields: Mapping[str, Any],
    message: str | None,
    css: str,
    now: dt.datetime,
) -> Feed:
    """The feed one page would get if this draft notification were active and had sample data (Anna from Berlin,
    23 visitors, 4.8★ from 120 reviews): what the console's editor hands the real widget to draw.

    ``fields`` are the notification's, as a validated request dumps them (camelCase documents)."""
    locale = str(site_settings.get("locale", "en"))
    values: Mapping[str, Any] = SAMPLE
    source = dict(fields.get("source") or {})
    anonymization = dict(fields.get("anonymization") or {})
    state = NotificationState(
        id=uuid.uuid4(),
        type=str(fields["type"]),
        message=message,
        css=css,
        name=str(fields["name"]),
        source=source,
        targeting=dict(fields.get("targeting") or {}),
        display=dict(fields.get("display") or {}),
        anonymization=anonymization,
        count=int(values["count"]),
        rating=float(values["rating"]),
        review_count=int(values["reviewCount"]),
    )
    if state.type == "recent_activity":
        kind = (source.get("eventTypes") or ["purchase"])[0]
        sample = SimpleNamespace(
            id=uuid.uuid4(),
            event_type=kind,
            event_name=source.get("customEvent") if kind == "custom" else None,
            payload={key: values[key] for key in ("firstName", "city", "country", "product")},
            url=None,
            occurred_at=now - dt.timedelta(minutes=4),
        )
        state.items = [activity_item(state, sample, locale=locale, domain=domain)]
    items = _items(state, None, locale)
    return Feed(
        site=FeedSite(
            position=site_settings.get("position", "bottom-left"),
            theme=site_settings.get("theme", "auto"),
            locale=locale,
            persistent_visitor_id=False,
        ),
        notifications=[
            FeedNotification(
                id=str(state.id),
                type=state.type,
                display=state.display,
                devices=state.targeting.get("devices") or ["desktop", "mobile", "tablet"],
                visitors=state.targeting.get("visitors", "all"),
                audience=bool(state.targeting.get("audience")),
                css=css,
                items=items,
            )
        ]
        if items
        else [],
    )
