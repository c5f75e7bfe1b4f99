"""GET /api/v1/widget/{siteKey}/feed?url=: what a page of a merchant's site shows now, rendered for the widget.

Notifications are set up through the merchant API and events loaded before a site's first feed request (feeds are
cached per process for a few seconds), so every feed here is computed from what the test stored.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from northstar.socialproof.visitors import visitor_tag
from tests.factories import Account
from tests.socialproof.conftest import CHROME_UA, FIREFOX_UA, SiteFactory, WidgetSite, widget_event

ETAG = re.compile(r'^"[0-9a-f]{24}"$')
PURCHASES = {"type": "recent_activity", "source": {"eventTypes": ["purchase"]}}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


async def _feed(
    site: WidgetSite, path: str = "/", *, url: str | None = None, client: httpx.AsyncClient | None = None
) -> dict[str, Any]:
    response = await site.feed(url or site.page(path), client=client)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _texts(feed: dict[str, Any]) -> dict[str, list[list[str]]]:
    """Notification id → the ``parts`` of each of its items, in order."""
    return {shown["id"]: [item["parts"] for item in shown["items"]] for shown in feed["notifications"]}


def _first_parts(feed: dict[str, Any]) -> dict[str, list[str]]:
    """Notification id → the text before ``timeAgo`` of each of its items."""
    return {key: [parts[0] for parts in items] for key, items in _texts(feed).items()}


async def _announcements(site: WidgetSite, **targeting_by_name: dict[str, Any]) -> dict[str, str]:
    """Active announcements (their text is their name); returns notification id → name."""
    created = {}
    for name, targeting in targeting_by_name.items():
        notification = await site.notification(name=name, type="announcement", targeting=targeting)
        created[notification["id"]] = name
    return created


async def _shown_names(
    site: WidgetSite, names: dict[str, str], url: str, *, client: httpx.AsyncClient | None = None
) -> set[str]:
    feed = await _feed(site, url=url, client=client)
    assert all(item["parts"] == [names[shown["id"]]] for shown in feed["notifications"] for item in shown["items"])
    return {names[shown["id"]] for shown in feed["notifications"]}


async def _wait_for(site: WidgetSite, url: str, done: Any, *, within: float = 2.0) -> dict[str, Any]:
    """Poll the feed until ``done(feed)`` (the change notification arrives asynchronously over LISTEN)."""
    deadline = time.monotonic() + within
    while True:
        feed = await _feed(site, url=url)
        if done(feed) or time.monotonic() > deadline:
            return feed
        await asyncio.sleep(0.05)


async def _not_just_before_midnight_utc() -> None:
    """Counters of 'today' restart at midnight: don't let one fall between storing and counting."""
    now = datetime.now(UTC)
    if now.hour == 23 and now.minute == 59 and now.second >= 50:
        await asyncio.sleep(61 - now.second)


# --- recent activity -------------------------------------------------------------------------------------------


async def test_recent_activity_is_rendered_for_the_widget(site: WidgetSite) -> None:
    recent = await site.notification(name="Recent purchases", **PURCHASES)
    mobile = await site.notification(
        name="Welcome back", type="announcement", targeting={"devices": ["mobile"], "visitors": "returning"}
    )
    await site.notification(name="Signups", type="recent_activity", source={"eventTypes": ["signup"]})  # none yet
    anna_at, socks_at = _ago(minutes=5), _ago(hours=1)
    anna, socks = await site.record(
        {
            "type": "purchase",
            "firstName": "Anna",
            "city": "Berlin",
            "country": "DE",
            "product": "Trail Shoes",
            "occurredAt": anna_at.isoformat(),
        },
        {
            "type": "purchase",
            "product": "Socks",
            "productUrl": site.page("/products/socks"),
            "visitorId": "customer-7",
            "url": site.page("/checkout"),
            "occurredAt": socks_at.isoformat(),
        },
    )
    await site.record({"type": "review", "firstName": "Zoe", "rating": 5})  # not a purchase
    response = await site.feed(site.page("/products/trail-shoes"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "private, max-age=5"
    assert response.headers["access-control-allow-origin"] == site.origin
    feed = response.json()["data"]
    for shown in feed["notifications"]:
        for item in shown["items"]:
            item["at"] = datetime.fromisoformat(item["at"]) if item["at"] else None
    assert feed == {
        "v": 1,
        "site": {"position": "bottom-left", "theme": "auto", "locale": "en", "persistentVisitorId": False},
        "notifications": [
            {
                "id": recent["id"],
                "type": "recent_activity",
                "display": recent["display"],
                "devices": ["desktop", "mobile", "tablet"],
                "visitors": "all",
                "variantId": None,
                "audience": False,
                "css": "",
                "items": [
                    {
                        "id": anna,
                        "parts": ["Anna from Berlin bought Trail Shoes · ", ""],
                        "at": anna_at,
                        "url": None,
                        "tag": None,
                    },
                    {
                        "id": socks,
                        "parts": ["Someone bought Socks · ", ""],
                        "at": socks_at,
                        "url": site.page("/products/socks"),
                        "tag": visitor_tag(site.key, "customer-7"),
                    },
                ],
            },
            {
                "id": mobile["id"],
                "type": "announcement",
                "display": mobile["display"],
                "devices": ["mobile"],
                "visitors": "returning",
                "variantId": None,
                "audience": False,
                "css": "",
                "items": [{"id": mobile["id"], "parts": ["Welcome back"], "at": None, "url": None, "tag": None}],
            },
        ],
        "live": True,  # recent purchases change with new events: the widget follows the live feed
    }


async def test_feed_fields_are_plain_text_and_links_lead_only_to_the_site(site: WidgetSite) -> None:
    """Any renderer of the feed may use HTML: no markup and no link off the site reaches it, not even from events
    stored before ingestion made them plain text (written here as such rows were)."""
    await site.notification(**PURCHASES)
    await site.record(
        {
            "type": "purchase",
            "firstName": "<img src=x onerror=alert(1)>Anna",
            "city": "<b>Berlin</b>",
            "product": "Trail Shoes<script>alert(1)</script>",
            "productUrl": "javascript:alert(1)",
            "url": site.page("/p/1"),
        }
    )
    with psycopg.connect(site.database_url) as connection:
        connection.execute(
            "INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, url, payload, occurred_at)"
            " VALUES (%s, %s, %s, 'purchase', %s, %s, now() - interval '1 minute')",
            (
                uuid.uuid4(),
                site.account.org_id,
                site.id,
                f"javascript://{site.domain}/%0aalert(1)",
                Jsonb(
                    {
                        "firstName": "<svg onload=alert(1)>Mia",
                        "city": "   ",
                        "product": "&lt;b&gt;Socks&lt;/b&gt;",
                        "productUrl": f"https://{site.domain}.evil.example/",
                    }
                ),
            ),
        )
    feed = await _feed(site)
    (shown,) = feed["notifications"]
    assert [(item["parts"], item["url"]) for item in shown["items"]] == [
        (["Anna from Berlin bought Trail Shoes · ", ""], site.page("/p/1")),
        (["Mia bought Socks · ", ""], None),
    ]


async def test_names_and_places_are_anonymised(site: WidgetSite) -> None:
    ids = {}
    for name, anonymization in {
        "default": {},
        "someone": {"name": "someone"},
        "excluded full name": {"excluded": ["Anna Maria"]},
        "excluded first name": {"excluded": ["BEN"]},
        "country": {"location": "country"},
        "no place": {"location": "none"},
        "off": {"enabled": False, "name": "someone", "location": "none"},
    }.items():
        ids[name] = (await site.notification(name=name, anonymization=anonymization, **PURCHASES))["id"]
    await site.record(
        {
            "type": "purchase",
            "firstName": "anna maria",
            "city": "Berlin",
            "country": "DE",
            "product": "Trail Shoes",
            "occurredAt": _ago(minutes=10).isoformat(),
        },
        {
            "type": "purchase",
            "firstName": "Ben",
            "country": "AT",
            "product": "Socks",
            "occurredAt": _ago(minutes=20).isoformat(),
        },
    )
    shown = _first_parts(await _feed(site))
    assert {name: shown[notification_id] for name, notification_id in ids.items()} == {
        "default": ["Anna from Berlin bought Trail Shoes · ", "Ben from Austria bought Socks · "],
        "someone": ["Someone from Berlin bought Trail Shoes · ", "Someone from Austria bought Socks · "],
        "excluded full name": ["Someone from Berlin bought Trail Shoes · ", "Ben from Austria bought Socks · "],
        "excluded first name": ["Anna from Berlin bought Trail Shoes · ", "Someone from Austria bought Socks · "],
        "country": ["Anna from Germany bought Trail Shoes · ", "Ben from Austria bought Socks · "],
        "no place": ["Anna bought Trail Shoes · ", "Ben bought Socks · "],
        "off": ["anna maria from Berlin bought Trail Shoes · ", "Ben from Austria bought Socks · "],
    }


async def test_country_names_follow_the_site_locale(make_site: SiteFactory) -> None:
    site = await make_site(settings={"locale": "de-DE"})
    by_country = await site.notification(name="Land", anonymization={"location": "country"}, **PURCHASES)
    by_city = await site.notification(name="Stadt", **PURCHASES)
    await site.record(
        {
            "type": "purchase",
            "firstName": "Anna",
            "city": "Berlin",
            "country": "DE",
            "product": "Trail Shoes",
            "occurredAt": _ago(minutes=10).isoformat(),
        },
        {
            "type": "purchase",
            "firstName": "Ben",
            "country": "AT",
            "product": "Socks",
            "occurredAt": _ago(minutes=20).isoformat(),
        },
    )
    feed = await _feed(site)
    assert feed["site"]["locale"] == "de-DE"
    assert _first_parts(feed) == {
        by_country["id"]: ["Anna from Deutschland bought Trail Shoes · ", "Ben from Österreich bought Socks · "],
        by_city["id"]: ["Anna from Berlin bought Trail Shoes · ", "Ben from Österreich bought Socks · "],
    }


async def test_a_template_gives_the_message_and_the_css(site: WidgetSite) -> None:
    german = await site.template(
        message='{{firstName|default:"Jemand"}} aus {{city}} kaufte {{product}}',
        cssContent=".popup { border-radius: 12px; background: #123456 }",
    )
    timed = await site.template(message="{{firstName}} kaufte {{product|truncate:8}} {{timeAgo}}!")
    plain = await site.notification(name="Deutsch", templateId=german["id"], **PURCHASES)
    with_time = await site.notification(name="Mit Zeit", templateId=timed["id"], **PURCHASES)
    await site.record(
        {
            "type": "purchase",
            "firstName": "Anna",
            "city": "Berlin",
            "country": "DE",
            "product": "Trail Shoes",
            "occurredAt": _ago(minutes=10).isoformat(),
        },
        {"type": "purchase", "city": "Hamburg", "product": "Socks", "occurredAt": _ago(minutes=20).isoformat()},
    )
    feed = await _feed(site)
    assert _texts(feed) == {
        plain["id"]: [["Anna aus Berlin kaufte Trail Shoes"], ["Jemand aus Hamburg kaufte Socks"]],
        with_time["id"]: [["Anna kaufte Trail S… ", "!"], [" kaufte Socks ", "!"]],
    }
    assert {shown["id"]: shown["css"] for shown in feed["notifications"]} == {
        plain["id"]: ".popup { border-radius: 12px; background: #123456 }",
        with_time["id"]: "",
    }


async def test_a_template_gets_the_country_name_as_country(site: WidgetSite) -> None:
    template = await site.template(message="{{firstName}} aus {{city}} ({{country}})")
    notification = await site.notification(name="Ort", templateId=template["id"], **PURCHASES)
    await site.record({"type": "purchase", "firstName": "Anna", "city": "Berlin", "country": "DE"})
    assert _texts(await _feed(site)) == {notification["id"]: [["Anna aus Berlin (Germany)"]]}


async def test_events_are_shown_only_within_the_age_window(site: WidgetSite) -> None:
    windows = {
        "default": {},
        "an hour to a day old": {"minAgeSeconds": 3600, "maxAgeSeconds": 86400},
        "under half an hour": {"maxAgeSeconds": 1800},
        "older than 15 minutes": {"minAgeSeconds": 900},
    }
    ids = {
        name: (
            await site.notification(name=name, type="recent_activity", source={"eventTypes": ["purchase"], **window})
        )["id"]
        for name, window in windows.items()
    }
    recent, middle, old = await site.record(
        {"type": "purchase", "occurredAt": _ago(minutes=10).isoformat()},
        {"type": "purchase", "occurredAt": _ago(hours=2).isoformat()},
        {"type": "purchase", "occurredAt": _ago(days=3).isoformat()},
    )
    feed = await _feed(site)
    items = {shown["id"]: [item["id"] for item in shown["items"]] for shown in feed["notifications"]}
    assert {name: items.get(notification_id) for name, notification_id in ids.items()} == {
        "default": [recent, middle, old],
        "an hour to a day old": [middle],
        "under half an hour": [recent],
        "older than 15 minutes": [middle, old],
    }


async def test_custom_events_are_shown_only_by_name(site: WidgetSite) -> None:
    trials = await site.notification(
        name="Trials", type="recent_activity", source={"eventTypes": ["custom"], "customEvent": "trial_started"}
    )
    mixed = await site.notification(
        name="Purchases and trials",
        type="recent_activity",
        source={"eventTypes": ["purchase", "custom"], "customEvent": "trial_started"},
    )
    signups = await site.notification(name="Signups", type="recent_activity", source={"eventTypes": ["signup"]})
    await site.record(
        {
            "type": "custom",
            "name": "trial_started",
            "firstName": "Ben",
            "city": "Wien",
            "occurredAt": _ago(minutes=1).isoformat(),
        },
        {"type": "custom", "name": "newsletter_joined", "firstName": "Cleo", "occurredAt": _ago(minutes=2).isoformat()},
        {"type": "purchase", "firstName": "Dana", "product": "Socks", "occurredAt": _ago(minutes=3).isoformat()},
        {"type": "signup", "firstName": "Eve", "occurredAt": _ago(minutes=4).isoformat()},
    )
    assert _first_parts(await _feed(site)) == {
        trials["id"]: ["Ben from Wien trial started · "],
        mixed["id"]: ["Ben from Wien trial started · ", "Dana bought Socks · "],
        signups["id"]: ["Eve signed up · "],
    }


async def test_widget_events_show_in_recent_activity(site: WidgetSite) -> None:
    notification = await site.notification(name="Live purchases", **PURCHASES)
    purchase = widget_event(
        "purchase",
        site.page("/checkout"),
        details={
            "firstName": "Mia",
            "city": "Köln",
            "product": "Trail Shoes",
            "productUrl": site.page("/products/trail"),
        },
    )
    response = await site.collect(purchase, widget_event("page_view", site.page("/")))
    assert response.status_code == 202, response.text
    feed = await _feed(site)
    assert [(item["id"], item["parts"], item["url"]) for item in feed["notifications"][0]["items"]] == [
        (purchase["id"], ["Mia from Köln bought Trail Shoes · ", ""], site.page("/products/trail"))
    ]
    assert feed["notifications"][0]["id"] == notification["id"]


# --- targeting -------------------------------------------------------------------------------------------------


async def test_url_rules_choose_the_pages(site: WidgetSite) -> None:
    names = await _announcements(
        site,
        pricing={"urls": [{"match": "exact", "value": site.page("/pricing")}]},
        products={"urls": [{"match": "contains", "value": "/products/"}]},
        blog={"urls": [{"match": "regex", "value": r"/blog/\d{4}/[a-z-]+$"}]},
        products_but_sales={
            "urls": [
                {"match": "contains", "value": "/products/"},
                {"match": "regex", "value": r"-sale(\?|$)", "exclude": True},
            ]
        },
        not_checkout={"urls": [{"match": "contains", "value": "/checkout", "exclude": True}]},
        everywhere={},
    )
    expected = {
        "/pricing": {"pricing", "not_checkout", "everywhere"},
        "/pricing/?plan=pro#faq": {"pricing", "not_checkout", "everywhere"},
        "/pricing/enterprise": {"not_checkout", "everywhere"},
        "/products/trail-shoes": {"products", "products_but_sales", "not_checkout", "everywhere"},
        "/products/summer-sale": {"products", "not_checkout", "everywhere"},
        "/products/summer-sale?ref=mail": {"products", "not_checkout", "everywhere"},
        "/blog/2024/trail-running": {"blog", "not_checkout", "everywhere"},
        "/blog/2024/trail-running/comments": {"not_checkout", "everywhere"},
        "/checkout/payment": {"everywhere"},
    }
    shown = {path: await _shown_names(site, names, site.page(path)) for path in expected}
    assert shown == expected
    assert await _shown_names(site, names, site.page("/products/x", host=f"www.{site.domain}")) == {
        "products",
        "products_but_sales",
        "not_checkout",
        "everywhere",
    }


async def test_url_rules_may_name_paths(site: WidgetSite) -> None:
    names = await _announcements(
        site,
        checkout={"urls": [{"match": "exact", "value": "/checkout"}]},
        cart={"urls": [{"match": "regex", "value": r"^/cart(/|$)"}]},
        promo={"urls": [{"match": "exact", "value": "/landing?utm=spring"}]},
    )
    expected = {
        "/checkout": {"checkout"},
        "/checkout/": {"checkout"},
        "/checkout/done": set(),
        "/cart": {"cart"},
        "/cart/items": {"cart"},
        "/cartoons": set(),
        "/landing?utm=spring": {"promo"},
        "/landing": set(),
    }
    assert {path: await _shown_names(site, names, site.page(path)) for path in expected} == expected


@pytest.mark.parametrize("pattern", [r"^(?!.*checkout)", r"(a)\1"])
async def test_url_rules_must_be_re2(site: WidgetSite, pattern: str) -> None:
    """Lookaround and backreferences (which can take exponential time) are refused when saved."""
    response = await site.client.post(
        f"/api/v1/sites/{site.id}/notifications",
        headers=site.account.headers,
        json={"name": "Slow", "type": "announcement", "targeting": {"urls": [{"match": "regex", "value": pattern}]}},
    )
    assert response.status_code == 422, response.text
    assert [detail["field"] for detail in response.json()["error"]["details"]] == ["body.targeting.urls.0"]


async def test_country_targeting_needs_a_known_country(site: WidgetSite, geo_client: httpx.AsyncClient) -> None:
    names = await _announcements(
        site, germany={"countries": ["DE"]}, austria={"countries": ["AT", "CH"]}, everywhere={}
    )
    assert await _shown_names(site, names, site.page("/")) == {"everywhere"}  # no GeoIP: the country is unknown
    assert await _shown_names(site, names, site.page("/"), client=geo_client) == {"germany", "everywhere"}


def _zone_far_from_midnight() -> tuple[str, datetime]:
    """A fixed-offset zone where it is now between 03:00 and 19:59, at least 5 hours from UTC."""
    now = datetime.now(UTC)
    for offset in (9, -9, 5, -5, 12, -11):
        name = f"Etc/GMT{-offset:+d}"  # POSIX style: Etc/GMT-9 is nine hours ahead of UTC
        local = now.astimezone(ZoneInfo(name))
        if 3 <= local.hour <= 19:
            return name, local
    raise AssertionError("unreachable: one of the offsets always fits")


async def test_the_schedule_runs_in_the_site_time_zone(make_site: SiteFactory) -> None:
    zone, local = _zone_far_from_midnight()
    site = await make_site(settings={"timezone": zone})
    today = WEEKDAYS[local.weekday()]
    hour, utc_hour = local.hour, datetime.now(UTC).hour
    names = await _announcements(
        site,
        today={"schedule": {"weekdays": [today]}},
        other_days={"schedule": {"weekdays": [day for day in WEEKDAYS if day != today]}},
        these_hours={"schedule": {"start": f"{hour - 1:02d}:00", "end": f"{hour + 2:02d}:00"}},
        later_hours={"schedule": {"start": f"{hour + 2:02d}:00", "end": f"{hour + 4:02d}:00"}},
        these_hours_in_utc={
            "schedule": {"start": f"{(utc_hour - 1) % 24:02d}:00", "end": f"{(utc_hour + 2) % 24:02d}:00"}
        },
        overnight_around_now={"schedule": {"start": f"{hour - 1:02d}:00", "end": f"{hour - 2:02d}:00"}},
        today_these_hours={
            "schedule": {"weekdays": [today], "start": f"{hour - 1:02d}:00", "end": f"{hour + 2:02d}:00"}
        },
        other_days_these_hours={
            "schedule": {
                "weekdays": [day for day in WEEKDAYS if day != today],
                "start": f"{hour - 1:02d}:00",
                "end": f"{hour + 2:02d}:00",
            }
        },
    )
    assert await _shown_names(site, names, site.page("/")) == {
        "today",
        "these_hours",
        "overnight_around_now",
        "today_these_hours",
    }


async def test_only_active_notifications_are_shown(site: WidgetSite) -> None:
    active = await site.notification(name="Active", type="announcement")
    await site.notification(name="Draft", type="announcement", status="draft")
    await site.notification(name="Paused", type="announcement", status="paused")
    await site.notification(name="Paused purchases", status="paused", **PURCHASES)
    await site.record({"type": "purchase", "firstName": "Anna"})
    assert _texts(await _feed(site)) == {active["id"]: [["Active"]]}


async def test_a_paused_notification_leaves_the_feed_at_once(site: WidgetSite) -> None:
    kept = await site.notification(name="Kept", type="announcement")
    paused = await site.notification(name="Free shipping", type="announcement")
    url = site.page("/")
    assert _texts(await _feed(site, url=url)) == {kept["id"]: [["Kept"]], paused["id"]: [["Free shipping"]]}
    await site.change_notification(paused["id"], status="paused")
    assert _texts(await _wait_for(site, url, lambda feed: len(feed["notifications"]) == 1)) == {kept["id"]: [["Kept"]]}
    await site.change_notification(paused["id"], status="active", name="Free returns")
    refreshed = await _wait_for(site, url, lambda feed: len(feed["notifications"]) == 2)
    assert _texts(refreshed) == {kept["id"]: [["Kept"]], paused["id"]: [["Free returns"]]}


# --- counters --------------------------------------------------------------------------------------------------


async def test_live_visitors_on_the_site(site: WidgetSite) -> None:
    everyone = await site.notification(name="Live", type="live_visitors")
    await site.notification(name="Crowd", type="live_visitors", source={"minCount": 2})
    for path in ("/", "/products/a", "/products/b"):  # one visitor, three pages
        response = await site.collect(widget_event("page_view", site.page(path)))
        assert response.status_code == 202, response.text
    assert _texts(await _feed(site)) == {everyone["id"]: [["1 person is on this site right now"]]}


async def test_live_visitors_on_this_page(site: WidgetSite) -> None:
    page = await site.notification(name="Here", type="live_visitors", source={"scope": "page"})
    for path, user_agent in (
        ("/products/a", CHROME_UA),
        ("/products/a?ref=mail", FIREFOX_UA),
        ("/products/a", CHROME_UA),
        ("/products/b", CHROME_UA),
    ):
        response = await site.collect(
            widget_event("page_view", site.page(path)), headers=site.browser(user_agent=user_agent)
        )
        assert response.status_code == 202, response.text
    assert _texts(await _feed(site, "/products/a")) == {page["id"]: [["2 people are viewing this page"]]}
    assert _texts(await _feed(site, "/products/a/?color=red")) == {page["id"]: [["2 people are viewing this page"]]}
    assert _texts(await _feed(site, "/products/b")) == {page["id"]: [["1 person is viewing this page"]]}
    assert _texts(await _feed(site, "/about")) == {}


async def test_period_counters_count_today_on_the_site_and_the_page(site: WidgetSite) -> None:
    await _not_just_before_midnight_utc()
    today = await site.notification(
        name="Today", type="period_counter", source={"eventTypes": ["purchase"], "period": "today"}
    )
    hour = await site.notification(
        name="Hour", type="period_counter", source={"eventTypes": ["purchase"], "period": "hour"}
    )
    await site.notification(
        name="Busy", type="period_counter", source={"eventTypes": ["purchase"], "period": "today", "minCount": 4}
    )
    signups = await site.notification(
        name="Signups", type="period_counter", source={"eventTypes": ["signup"], "period": "today"}
    )
    here = await site.notification(
        name="Bought this",
        type="period_counter",
        source={"eventTypes": ["purchase"], "period": "today", "scope": "page"},
    )
    await site.record(
        {"type": "purchase", "url": site.page("/products/trail-shoes")},
        {
            "type": "purchase",
            "url": site.page("/checkout/done"),
            "productUrl": site.page("/products/trail-shoes?c=red"),
        },
        {"type": "purchase", "url": site.page("/products/socks")},
        {"type": "purchase", "url": site.page("/products/trail-shoes"), "occurredAt": _ago(days=2).isoformat()},
        {"type": "signup", "url": site.page("/welcome")},
    )
    site_wide = {
        today["id"]: [["3 people made a purchase today"]],
        hour["id"]: [["3 people made a purchase in the last hour"]],
        signups["id"]: [["1 person signed up today"]],
    }
    assert _texts(await _feed(site, "/products/trail-shoes")) == {
        **site_wide,
        here["id"]: [["2 people bought this today"]],
    }
    assert _texts(await _feed(site, "/products/socks")) == {**site_wide, here["id"]: [["1 person bought this today"]]}
    assert _texts(await _feed(site, "/about")) == site_wide


async def test_review_highlight(site: WidgetSite) -> None:
    hour = await site.notification(
        name="Last hour", type="review_highlight", source={"eventTypes": ["review"], "maxAgeSeconds": 3600}
    )
    week = await site.notification(name="This week", type="review_highlight", source={"eventTypes": ["review"]})
    await site.notification(
        name="Last minute", type="review_highlight", source={"eventTypes": ["review"], "maxAgeSeconds": 60}
    )
    await site.record(
        {"type": "review", "rating": 4, "occurredAt": _ago(minutes=10).isoformat()},
        {"type": "review", "rating": 5, "occurredAt": _ago(minutes=20).isoformat()},
        {"type": "review", "occurredAt": _ago(minutes=5).isoformat()},  # no rating: not counted
        {"type": "review", "rating": 1, "occurredAt": _ago(hours=2).isoformat()},
    )
    assert _texts(await _feed(site)) == {hour["id"]: [["4.5★ from 2 reviews"]], week["id"]: [["3.3★ from 3 reviews"]]}


async def test_numbers_are_written_in_the_sites_language(site: WidgetSite) -> None:
    await site.update(settings={"locale": "de-DE"})
    template = await site.template(
        message='{{rating}} von 5 bei {{reviewCount}} {{reviewCount|plural:"Bewertung|Bewertungen"}}'
    )
    shown = await site.notification(
        name="Reviews", type="review_highlight", templateId=template["id"], source={"eventTypes": ["review"]}
    )
    await site.record({"type": "review", "rating": 4}, {"type": "review", "rating": 5})
    assert _texts(await _feed(site)) == {shown["id"]: [["4,5 von 5 bei 2 Bewertungen"]]}


async def test_announcements_show_their_name_or_template(site: WidgetSite) -> None:
    template = await site.template(message="Free shipping this week")
    named = await site.notification(name="Summer sale: 20% off", type="announcement")
    templated = await site.notification(name="Shipping", type="announcement", templateId=template["id"])
    feed = await _feed(site)
    assert [(shown["id"], shown["items"]) for shown in feed["notifications"]] == [
        (named["id"], [{"id": named["id"], "parts": ["Summer sale: 20% off"], "at": None, "url": None, "tag": None}]),
        (
            templated["id"],
            [{"id": templated["id"], "parts": ["Free shipping this week"], "at": None, "url": None, "tag": None}],
        ),
    ]


# --- caching, CORS and errors ----------------------------------------------------------------------------------


async def test_etag_and_304(site: WidgetSite) -> None:
    await site.notification(name="Hello", type="announcement")
    first = await site.feed(site.page("/"))
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert ETAG.fullmatch(etag), etag
    unchanged = await site.feed(site.page("/"), headers={**site.browser(), "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["access-control-allow-origin"] == site.origin
    stale = await site.feed(site.page("/"), headers={**site.browser(), "If-None-Match": '"0123456789abcdef01234567"'})
    assert stale.status_code == 200 and stale.content == first.content and stale.headers["etag"] == etag


async def test_cors_names_the_requesting_origin_only(site: WidgetSite) -> None:
    await site.notification(name="Hello", type="announcement")
    subdomain = await site.feed(
        site.page("/", host=f"www.{site.domain}"), headers=site.browser(origin=f"https://www.{site.domain}")
    )
    assert subdomain.status_code == 200
    assert subdomain.headers["access-control-allow-origin"] == f"https://www.{site.domain}"
    assert subdomain.headers["vary"] == "Origin"
    no_origin = await site.feed(site.page("/"), headers={"User-Agent": CHROME_UA})
    assert no_origin.status_code == 200 and "access-control-allow-origin" not in no_origin.headers
    preflight = await site.client.options(
        f"/api/v1/widget/{site.key}/feed", headers={"Origin": site.origin, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == site.origin
    assert preflight.headers["access-control-allow-methods"] == "GET"


@pytest.mark.parametrize(
    ("origin", "url"),
    [
        ("https://evil.example.com", "https://{domain}/"),
        ("https://{domain}.evil.com", "https://{domain}/"),
        ("https://{domain}", "https://evil.example.com/"),
        ("https://{domain}", "https://{domain}.evil.com/"),
        ("https://{domain}", "https://evil{domain}/"),
        ("https://{domain}", "/relative"),
    ],
)
async def test_another_origin_or_page_is_403(site: WidgetSite, origin: str, url: str) -> None:
    await site.notification(name="Hello", type="announcement")
    response = await site.feed(
        url.format(domain=site.domain), headers=site.browser(origin=origin.format(domain=site.domain))
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "origin_not_allowed"


async def test_an_unknown_site_key_is_404(site: WidgetSite) -> None:
    response = await site.client.get(
        "/api/v1/widget/pk_AAAAAAAAAAAAAAAAAAAAAAAA/feed", params={"url": site.page("/")}, headers=site.browser()
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_site"


@pytest.mark.parametrize("query", [{}, {"url": ""}, {"url": "https://{domain}/" + "a" * 2048}])
async def test_a_missing_or_overlong_url_is_422(site: WidgetSite, query: dict[str, str]) -> None:
    params = {key: value.format(domain=site.domain) for key, value in query.items()}
    response = await site.client.get(f"/api/v1/widget/{site.key}/feed", params=params, headers=site.browser())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == ["query.url"]


async def test_a_site_key_gives_only_its_own_orgs_feed(make_site: SiteFactory, other_founder: Account) -> None:
    ours = await make_site()
    theirs = await make_site(account=other_founder)
    our_news = await ours.notification(name="Our news", type="announcement")
    our_purchases = await ours.notification(name="Our purchases", **PURCHASES)
    their_news = await theirs.notification(name="Their news", type="announcement")
    their_purchases = await theirs.notification(name="Their purchases", **PURCHASES)
    [their_purchase] = await theirs.record({"type": "purchase", "firstName": "Tom", "product": "Tent"})
    [our_purchase] = await ours.record({"type": "purchase", "firstName": "Anna", "product": "Socks"})
    assert _texts(await _feed(theirs)) == {
        their_news["id"]: [["Their news"]],
        their_purchases["id"]: [["Tom bought Tent · ", ""]],
    }
    assert _texts(await _feed(ours)) == {
        our_news["id"]: [["Our news"]],
        our_purchases["id"]: [["Anna bought Socks · ", ""]],
    }
    assert [item["id"] for item in (await _feed(theirs))["notifications"][1]["items"]] == [their_purchase]
    assert [item["id"] for item in (await _feed(ours))["notifications"][1]["items"]] == [our_purchase]
    with_our_page = await theirs.feed(ours.page("/"), headers=theirs.browser())
    assert with_our_page.status_code == 403
    from_our_origin = await theirs.feed(theirs.page("/"), headers=ours.browser())
    assert from_our_origin.status_code == 403
