"""POST /api/v1/collect: widget batches from a site's own pages, stored once, with bots, spam and foreign pages
dropped, clocks corrected, cookieless visitor ids, no IP address kept, CORS for the site's origin only."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from northstar.app import create_app
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account
from tests.socialproof.conftest import CHROME_UA, FIREFOX_UA, SiteFactory, StoredEvent, WidgetSite, widget_event

HEX32 = re.compile(r"^[0-9a-f]{32}$")
COLLECT_MAX_BYTES = 64 * 1024
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"
)


def _by_id(site: WidgetSite) -> dict[str, StoredEvent]:
    return {str(event.id): event for event in site.stored()}


def _visitor(site: WidgetSite, event: dict[str, Any]) -> str:
    visitor_id = _by_id(site)[event["id"]].visitor_id
    assert visitor_id is not None and HEX32.fullmatch(visitor_id), visitor_id
    return visitor_id


def _accepted(response: httpx.Response, accepted: int, *, duplicates: int = 0, dropped: int = 0) -> None:
    assert response.status_code == 202, response.text
    assert response.json() == {"data": {"accepted": accepted, "duplicates": duplicates, "dropped": dropped}}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


# --- accepted batches ------------------------------------------------------------------------------------------


async def test_a_batch_is_accepted_and_every_event_stored(site: WidgetSite) -> None:
    view = widget_event(
        "page_view",
        site.page("/products/trail-shoes?ref=mail#reviews"),
        referrer="https://www.google.com/search?q=trail+shoes",
    )
    purchase = widget_event(
        "purchase",
        site.page("/checkout/done"),
        details={
            "firstName": "Anna",
            "city": "Hamburg",
            "country": "DE",
            "product": "Trail Shoes",
            "productUrl": site.page("/products/trail-shoes"),
            "amount": 89.9,
            "currency": "EUR",
        },
    )
    goal = widget_event("custom", site.page("/trial"), name="trial_started")
    before = datetime.now(UTC)
    response = await site.collect(view, purchase, goal)
    after = datetime.now(UTC)
    _accepted(response, 3)
    stored = _by_id(site)
    assert sorted(stored) == sorted([view["id"], purchase["id"], goal["id"]])
    visitor = _visitor(site, view)
    assert [
        (
            stored[event["id"]].event_type,
            stored[event["id"]].event_name,
            stored[event["id"]].notification_id,
            stored[event["id"]].visitor_id,
            stored[event["id"]].url,
            stored[event["id"]].payload,
        )
        for event in (view, purchase, goal)
    ] == [
        ("page_view", None, None, visitor, site.page("/products/trail-shoes?ref=mail#reviews"), {}),
        (
            "purchase",
            None,
            None,
            visitor,
            site.page("/checkout/done"),
            {
                "firstName": "Anna",
                "city": "Hamburg",
                "country": "DE",
                "product": "Trail Shoes",
                "productUrl": site.page("/products/trail-shoes"),
                "amount": 89.9,
                "currency": "EUR",
            },
        ),
        ("custom", "trial_started", None, visitor, site.page("/trial"), {}),
    ]
    assert all(before <= event.occurred_at <= after for event in stored.values())


async def test_a_text_plain_beacon_is_accepted(site: WidgetSite) -> None:
    event = widget_event("page_view", site.page("/"))
    response = await site.client.post(
        "/api/v1/collect",
        content=orjson.dumps({"siteKey": site.key, "events": [event]}),
        headers={**site.browser(), "Content-Type": "text/plain;charset=UTF-8"},
    )
    _accepted(response, 1)
    assert [(str(stored.id), stored.event_type) for stored in site.stored()] == [(event["id"], "page_view")]


async def test_the_largest_allowed_batch_is_accepted(site: WidgetSite) -> None:
    response = await site.collect(*(widget_event("page_view", site.page(f"/p/{number}")) for number in range(50)))
    _accepted(response, 50)
    assert len(site.stored()) == 50


# --- refused batches -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"siteKey": "pk_abcd", "events": [', b"\xff\xfe{}"])
async def test_malformed_json_is_400(site: WidgetSite, body: bytes) -> None:
    response = await site.client.post(
        "/api/v1/collect", content=body, headers={**site.browser(), "Content-Type": "text/plain"}
    )
    _error(response, 400, "invalid_json")
    assert site.stored() == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(batch: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = batch
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return change


_DELETE = object()
INVALID_BATCHES: dict[str, tuple[Callable[[dict[str, Any]], None], list[str]]] = {
    "unknown event type": (_set("events.0.type", "pageview"), ["body.events.0.type"]),
    "event type of the second event": (_set("events.1.type", "purchased"), ["body.events.1.type"]),
    "no url": (_set("events.0.url", _DELETE), ["body.events.0.url"]),
    "url too long": (_set("events.0.url", "https://x.example.com/" + "a" * 2048), ["body.events.0.url"]),
    "no id": (_set("events.0.id", _DELETE), ["body.events.0.id"]),
    "id not a uuid": (_set("events.0.id", "event-1"), ["body.events.0.id"]),
    "custom event without a name": (_set("events.0.type", "custom"), ["body.events.0"]),
    "impression without a notification": (_set("events.0.type", "impression"), ["body.events.0"]),
    "page view naming a notification": (_set("events.0.notificationId", str(uuid.uuid4())), ["body.events.0"]),
    "country not ISO": (_set("events.0.details", {"country": "germany"}), ["body.events.0.details.country"]),
    "unknown field": (_set("events.0.colour", "red"), ["body.events.0.colour"]),
    "no site key": (_set("siteKey", _DELETE), ["body.siteKey"]),
    "local id too short": (_set("visitor", {"localId": "abc"}), ["body.visitor.localId"]),
    "sentAt not a time": (_set("sentAt", "yesterday"), ["body.sentAt"]),
    "no events": (_set("events", []), ["body.events"]),
    "51 events": (
        _set(
            "events",
            [{"id": str(uuid.uuid4()), "type": "page_view", "url": "https://x.example.com/"} for _ in range(51)],
        ),
        ["body.events"],
    ),
}


@pytest.mark.parametrize("case", list(INVALID_BATCHES))
async def test_an_invalid_batch_is_422_naming_the_field(site: WidgetSite, case: str) -> None:
    change, fields = INVALID_BATCHES[case]
    batch: dict[str, Any] = {
        "siteKey": site.key,
        "events": [widget_event("page_view", site.page("/a")), widget_event("page_view", site.page("/b"))],
    }
    change(batch)
    response = await site.client.post("/api/v1/collect", json=batch, headers=site.browser())
    error = _error(response, 422, "validation_error")
    assert [detail["field"] for detail in error["details"]] == fields
    assert site.stored() == []


async def test_a_body_that_is_not_an_object_is_422(site: WidgetSite) -> None:
    response = await site.client.post("/api/v1/collect", json=[{"siteKey": site.key}], headers=site.browser())
    assert [detail["field"] for detail in _error(response, 422, "validation_error")["details"]] == ["body"]


def _padded(site: WidgetSite, size: int) -> tuple[bytes, str]:
    """A valid batch padded with trailing whitespace (still valid JSON) to exactly ``size`` bytes."""
    event = widget_event("page_view", site.page("/"))
    body = orjson.dumps({"siteKey": site.key, "events": [event]})
    return body + b" " * (size - len(body)), event["id"]


async def test_a_body_of_exactly_the_limit_is_accepted(site: WidgetSite) -> None:
    body, event_id = _padded(site, COLLECT_MAX_BYTES)
    response = await site.client.post("/api/v1/collect", content=body, headers=site.browser())
    _accepted(response, 1)
    assert [str(event.id) for event in site.stored()] == [event_id]


async def test_a_body_over_the_limit_is_413(site: WidgetSite) -> None:
    body, _ = _padded(site, COLLECT_MAX_BYTES + 1)
    response = await site.client.post("/api/v1/collect", content=body, headers=site.browser())
    _error(response, 413, "payload_too_large")
    assert site.stored() == []


async def test_a_streamed_body_over_the_limit_is_413(site: WidgetSite) -> None:
    """Without a Content-Length (chunked), the body is cut off as soon as it passes the limit."""
    body, _ = _padded(site, 4 * COLLECT_MAX_BYTES)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    response = await site.client.post("/api/v1/collect", content=chunks(), headers=site.browser())
    _error(response, 413, "payload_too_large")
    assert site.stored() == []


@pytest.mark.parametrize("site_key", ["pk_" + "A" * 24, "nope"])
async def test_an_unknown_site_key_is_404(site: WidgetSite, site_key: str) -> None:
    response = await site.client.post(
        "/api/v1/collect",
        headers=site.browser(),
        json={"siteKey": site_key, "events": [widget_event("page_view", site.page("/"))]},
    )
    _error(response, 404, "unknown_site")


@pytest.mark.parametrize(
    "origin",
    [
        None,
        "null",
        "https://evil.example.com",
        "https://{domain}.evil.com",
        "https://evil{domain}",
        "https://example.com",
    ],
)
async def test_a_batch_from_another_origin_is_403(site: WidgetSite, origin: str | None) -> None:
    headers = {"User-Agent": CHROME_UA}
    if origin is not None:
        headers["Origin"] = origin.format(domain=site.domain)
    response = await site.collect(widget_event("page_view", site.page("/")), headers=headers)
    _error(response, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in response.headers
    assert site.stored() == []


async def test_another_orgs_site_key_is_refused_from_this_orgs_origin(
    make_site: SiteFactory, other_founder: Account
) -> None:
    ours = await make_site()
    theirs = await make_site(account=other_founder)
    response = await ours.client.post(
        "/api/v1/collect",
        headers=ours.browser(),
        json={"siteKey": theirs.key, "events": [widget_event("page_view", ours.page("/"))]},
    )
    _error(response, 403, "origin_not_allowed")
    assert ours.stored() == [] and theirs.stored() == []


# --- dropped events --------------------------------------------------------------------------------------------


async def test_pages_of_other_domains_are_dropped_and_subdomains_kept(site: WidgetSite) -> None:
    kept = [
        widget_event("page_view", site.page("/")),
        widget_event("page_view", site.page("/a", host=f"www.{site.domain}")),
        widget_event("page_view", site.page("/b", host=f"blog.eu.{site.domain.upper()}")),
    ]
    foreign = [
        widget_event("page_view", "https://other-shop.example.org/"),
        widget_event("page_view", f"https://{site.domain}.evil.com/"),
        widget_event("page_view", f"https://evil{site.domain}/"),
        widget_event("page_view", "/relative/page"),
    ]
    response = await site.collect(kept[0], foreign[0], kept[1], foreign[1], foreign[2], kept[2], foreign[3])
    _accepted(response, 3, dropped=4)
    assert sorted(str(event.id) for event in site.stored()) == sorted(event["id"] for event in kept)


@pytest.mark.parametrize(
    "user_agent",
    [GOOGLEBOT_UA, "curl/8.5.0", HEADLESS_UA, "python-requests/2.32.3", ""],
    ids=["googlebot", "curl", "headless-chrome", "python-requests", "empty"],
)
async def test_bots_are_dropped_and_nothing_is_stored(site: WidgetSite, user_agent: str) -> None:
    response = await site.collect(
        widget_event("page_view", site.page("/")),
        widget_event("purchase", site.page("/checkout")),
        headers=site.browser(user_agent=user_agent),
    )
    _accepted(response, 0, dropped=2)
    assert site.stored() == []


async def test_spam_referrers_are_dropped(site: WidgetSite) -> None:
    spam = [
        widget_event("page_view", site.page("/"), referrer=referrer)
        for referrer in ("https://semalt.com/", "http://www.semalt.com/crawler?x=1", "https://darodar.com/")
    ]
    fine = [
        widget_event("page_view", site.page("/"), referrer=referrer)
        for referrer in ("https://www.google.com/search?q=shoes", "https://notsemalt.com/")
    ]
    _accepted(await site.collect(*spam, *fine), 2, dropped=3)
    assert sorted(str(event.id) for event in site.stored()) == sorted(event["id"] for event in fine)


# --- idempotency and group commit ------------------------------------------------------------------------------


async def test_a_replayed_batch_is_stored_once(site: WidgetSite) -> None:
    events = [widget_event("page_view", site.page(f"/{number}")) for number in range(3)]
    _accepted(await site.collect(*events), 3)
    _accepted(await site.collect(*events), 0, duplicates=3)
    fresh = widget_event("page_view", site.page("/new"))
    _accepted(await site.collect(events[0], fresh), 1, duplicates=1)
    assert sorted(str(event.id) for event in site.stored()) == sorted(event["id"] for event in [*events, fresh])


async def test_an_event_repeated_within_a_batch_is_counted_once(site: WidgetSite) -> None:
    event = widget_event("page_view", site.page("/"))
    _accepted(await site.collect(event, event), 1, duplicates=1)
    assert [str(stored.id) for stored in site.stored()] == [event["id"]]


async def _replayed_concurrently(
    site: WidgetSite, events: list[dict[str, Any]], *, copies: int = 32, **batch: Any
) -> tuple[int, int]:
    """The same batch sent ``copies`` times at once, a millisecond apart (as retried beacons arrive)."""

    async def replay(delay: float) -> httpx.Response:
        await asyncio.sleep(delay)
        return await site.collect(*events, **batch)

    responses = await asyncio.gather(*(replay(number * 0.001) for number in range(copies)))
    assert [response.status_code for response in responses] == [202] * copies
    results = [response.json()["data"] for response in responses]
    return sum(result["accepted"] for result in results), sum(result["duplicates"] for result in results)


async def test_concurrent_replays_of_timed_events_are_stored_once(site: WidgetSite) -> None:
    sent: list[str] = []
    for round_ in range(5):
        occurred = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
        events = [
            widget_event("page_view", site.page(f"/{round_}/{number}"), occurredAt=occurred) for number in range(3)
        ]
        assert await _replayed_concurrently(site, events) == (3, 93), f"round {round_}"
        sent += [event["id"] for event in events]
    assert sorted(str(event.id) for event in site.stored()) == sorted(sent)


async def test_concurrent_replays_are_stored_once(make_site: SiteFactory) -> None:
    for round_ in range(30):  # the race needs two flushers holding the batch at once: give it many chances
        site = await make_site()  # (a site of its own per round stays far below the per-minute limit)
        events = [widget_event("page_view", site.page(f"/{number}")) for number in range(3)]
        assert await _replayed_concurrently(site, events) == (3, 93), f"round {round_}"
        assert sorted(str(event.id) for event in site.stored()) == sorted(event["id"] for event in events)


async def test_concurrent_beacons_are_each_stored_exactly_once(site: WidgetSite) -> None:
    events = [widget_event("page_view", site.page(f"/products/{number}")) for number in range(100)]
    responses = await asyncio.gather(*(site.collect(event) for event in events))
    assert [response.status_code for response in responses] == [202] * 100
    assert [response.json()["data"] for response in responses] == [{"accepted": 1, "duplicates": 0, "dropped": 0}] * 100
    assert sorted(str(event.id) for event in site.stored()) == sorted(event["id"] for event in events)
    with psycopg.connect(site.database_url) as connection:
        commits = connection.execute(
            "SELECT count(DISTINCT received_at) FROM socialproof.notification_events WHERE site_id = %s", (site.id,)
        ).fetchone()
    assert commits is not None and commits[0] <= 10  # group commit: far fewer transactions than requests


# --- times -----------------------------------------------------------------------------------------------------


async def test_a_skewed_browser_clock_is_corrected_and_clamped(site: WidgetSite) -> None:
    sent = datetime.now(UTC) + timedelta(hours=3)  # the browser's clock is three hours ahead
    at_send = widget_event("page_view", site.page("/now"), occurredAt=sent.isoformat())
    earlier = widget_event("page_view", site.page("/earlier"), occurredAt=(sent - timedelta(seconds=30)).isoformat())
    ancient = widget_event("page_view", site.page("/ancient"), occurredAt=(sent - timedelta(days=30)).isoformat())
    untimed = widget_event("page_view", site.page("/untimed"))
    before = datetime.now(UTC)
    _accepted(await site.collect(at_send, earlier, ancient, untimed, sentAt=sent.isoformat()), 4)
    after = datetime.now(UTC)
    unsent_future = widget_event("page_view", site.page("/future"), occurredAt=sent.isoformat())
    naive_past = widget_event(
        "page_view",
        site.page("/naive"),
        occurredAt=(datetime.now(UTC) - timedelta(minutes=10)).replace(tzinfo=None).isoformat(),
    )
    _accepted(await site.collect(unsent_future, naive_past), 2)
    behind = datetime.now(UTC) - timedelta(hours=3)  # another browser's clock is three hours behind
    lagging = widget_event("page_view", site.page("/behind"), occurredAt=(behind - timedelta(seconds=5)).isoformat())
    _accepted(await site.collect(lagging, sentAt=behind.isoformat()), 1)
    later = datetime.now(UTC)
    stored = _by_id(site)
    assert before <= stored[at_send["id"]].occurred_at <= after
    assert before - timedelta(seconds=30) <= stored[earlier["id"]].occurred_at <= after - timedelta(seconds=30)
    assert before - timedelta(days=7) <= stored[ancient["id"]].occurred_at <= after - timedelta(days=7)
    assert before <= stored[untimed["id"]].occurred_at <= after
    assert after <= stored[unsent_future["id"]].occurred_at <= later  # no sentAt: a future time becomes now
    assert after - timedelta(minutes=10) <= stored[naive_past["id"]].occurred_at <= later - timedelta(minutes=10)
    assert after - timedelta(seconds=5) <= stored[lagging["id"]].occurred_at <= later - timedelta(seconds=5)


NOW = "now"
FAR_FUTURE, FAR_PAST = "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("sent_at", "occurred_at"),
    [
        (FAR_FUTURE, NOW),
        (FAR_FUTURE, FAR_FUTURE),
        (FAR_FUTURE, FAR_PAST),
        ("ahead", FAR_PAST),
        (None, FAR_PAST),
        (FAR_PAST, NOW),
        (FAR_PAST, FAR_FUTURE),
        ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"),
        ("ahead", "0001-01-01T00:00:00+14:00"),
        (None, "9999-12-31T23:59:59-12:00"),
        ("0001-01-01", "9999-12-31"),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_clamped(
    site: WidgetSite, sent_at: str | None, occurred_at: str
) -> None:
    """Whatever a browser's clock says, the event is stored within the last 7 days (never a 500)."""
    ahead = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()  # a clock slightly ahead of the server's

    def moment(value: str) -> str:
        return {NOW: datetime.now(UTC).isoformat(), "ahead": ahead}.get(value, value)

    event = widget_event("page_view", site.page("/"), occurredAt=moment(occurred_at))
    before = datetime.now(UTC)
    batch = {"sentAt": moment(sent_at)} if sent_at else {}
    _accepted(await site.collect(event, **batch), 1)
    stored = _by_id(site)[event["id"]].occurred_at
    assert before - timedelta(days=7, seconds=1) <= stored <= datetime.now(UTC)


# --- what the feed shows is plain text, and links lead to the site -----------------------------------------------


async def test_text_is_stored_as_plain_text_and_foreign_links_are_dropped(site: WidgetSite) -> None:
    purchase = widget_event(
        "purchase",
        site.page("/checkout"),
        details={
            "firstName": "<svg onload=alert(1)>",
            "city": "&lt;img src=x onerror=alert(1)&gt;Köln",
            "product": "Tom & Jerry <3 <script>alert(1)</script>",
            "productUrl": "https://evil.example/phish",
        },
    )
    scripted = widget_event("signup", site.page("/"), details={"productUrl": "javascript:alert(1)//" + site.domain})
    tricky = widget_event(
        "signup",
        site.page("/"),
        details={"productUrl": f"https://evil.example\\@{site.domain}/", "firstName": "\u200b \u3000"},
    )  # nothing visible
    custom = widget_event("custom", site.page("/"), name="<b>newsletter</b>_signup")
    markup_only = widget_event("custom", site.page("/"), name="<img src=x onerror=alert(1)>")
    javascript_page = widget_event("page_view", f"javascript://{site.domain}/%0aalert(1)")
    _accepted(await site.collect(purchase, scripted, tricky, custom, markup_only, javascript_page), 4, dropped=2)
    stored = _by_id(site)
    assert stored[purchase["id"]].payload == {"city": "Köln", "product": "Tom & Jerry <3"}  # no name left
    assert stored[scripted["id"]].payload == {} and stored[tricky["id"]].payload == {}
    assert stored[custom["id"]].event_name == "newsletter_signup"
    assert markup_only["id"] not in stored and javascript_page["id"] not in stored
    text = " ".join(site.stored_rows_as_text())
    assert "<svg" not in text and "<img" not in text and "script" not in text and "evil.example" not in text


# --- interactions ----------------------------------------------------------------------------------------------


async def test_interactions_keep_only_notifications_of_the_site(make_site: SiteFactory) -> None:
    site, other = await make_site(), await make_site()
    ours = await site.notification(name="Ours", type="announcement")
    theirs = await other.notification(name="Theirs", type="announcement")
    item = str(uuid.uuid4())
    impression = widget_event("impression", site.page("/"), notificationId=ours["id"], itemId=item)
    click = widget_event("click", site.page("/"), notificationId=ours["id"])
    foreign = widget_event("click", site.page("/"), notificationId=theirs["id"])
    unknown = widget_event("close", site.page("/"), notificationId=str(uuid.uuid4()))
    _accepted(await site.collect(impression, click, foreign, unknown), 4)
    stored = _by_id(site)
    assert [
        (stored[event["id"]].event_type, stored[event["id"]].notification_id, stored[event["id"]].payload)
        for event in (impression, click, foreign, unknown)
    ] == [
        ("impression", uuid.UUID(ours["id"]), {"itemId": item}),
        ("click", uuid.UUID(ours["id"]), {}),
        ("click", None, {}),
        ("close", None, {}),
    ]


async def test_a_notification_created_later_is_recognised_once_the_change_is_heard(site: WidgetSite) -> None:
    _accepted(await site.collect(widget_event("page_view", site.page("/"))), 1)  # the site is cached from here
    created = await site.notification(name="Later", type="announcement")
    deadline = time.monotonic() + 2
    while True:
        click = widget_event("click", site.page("/"), notificationId=created["id"])
        _accepted(await site.collect(click), 1)
        if _by_id(site)[click["id"]].notification_id is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert _by_id(site)[click["id"]].notification_id == uuid.UUID(created["id"])


# --- visitors --------------------------------------------------------------------------------------------------


async def test_anonymous_visitor_ids_hash_site_address_and_browser(make_site: SiteFactory) -> None:
    site, other = await make_site(), await make_site()
    first, again = widget_event("page_view", site.page("/")), widget_event("page_view", site.page("/b"))
    firefox = widget_event("page_view", site.page("/"))
    elsewhere = widget_event("page_view", other.page("/"))
    _accepted(await site.collect(first), 1)
    _accepted(await site.collect(again), 1)
    _accepted(await site.collect(firefox, headers=site.browser(user_agent=FIREFOX_UA)), 1)
    _accepted(await other.collect(elsewhere), 1)
    visitor = _visitor(site, first)
    assert _visitor(site, again) == visitor
    assert _visitor(site, firefox) != visitor
    assert _visitor(other, elsewhere) not in (visitor, _visitor(site, firefox))


async def test_an_identified_visitor_has_a_stable_id_of_their_own(site: WidgetSite) -> None:
    anonymous = widget_event("page_view", site.page("/"))
    chrome = widget_event("page_view", site.page("/account"))
    firefox = widget_event("page_view", site.page("/account"))
    someone_else = widget_event("page_view", site.page("/account"))
    _accepted(await site.collect(anonymous), 1)
    _accepted(await site.collect(chrome, visitor={"userId": "customer-42"}), 1)
    _accepted(
        await site.collect(firefox, visitor={"userId": "customer-42"}, headers=site.browser(user_agent=FIREFOX_UA)), 1
    )
    _accepted(await site.collect(someone_else, visitor={"userId": "customer-43"}), 1)
    [server_side] = await site.record({"type": "purchase", "visitorId": "customer-42"})
    identified = _visitor(site, chrome)
    assert _visitor(site, firefox) == identified
    assert _by_id(site)[server_side].visitor_id == identified  # the merchant's backend names the same visitor
    assert identified != _visitor(site, anonymous)
    assert _visitor(site, someone_else) not in (identified, _visitor(site, anonymous))
    assert "customer-42" not in "".join(site.stored_rows_as_text())


async def test_a_local_id_is_used_only_when_the_site_keeps_persistent_visitor_ids(make_site: SiteFactory) -> None:
    cookieless, persistent = await make_site(), await make_site()
    await persistent.update(settings={"persistentVisitorId": True})
    device = {"localId": "0f3c9a1e-device-7d2b"}
    plain, with_local, local_in_firefox = (widget_event("page_view", cookieless.page("/")) for _ in range(3))
    _accepted(await cookieless.collect(plain), 1)
    _accepted(await cookieless.collect(with_local, visitor=device), 1)
    _accepted(
        await cookieless.collect(local_in_firefox, visitor=device, headers=cookieless.browser(user_agent=FIREFOX_UA)), 1
    )
    assert _visitor(cookieless, with_local) == _visitor(cookieless, plain)  # the local id is ignored
    assert _visitor(cookieless, local_in_firefox) != _visitor(cookieless, plain)

    p_plain, p_local, p_local_firefox, p_other_device = (
        widget_event("page_view", persistent.page("/")) for _ in range(4)
    )
    _accepted(await persistent.collect(p_plain), 1)
    _accepted(await persistent.collect(p_local, visitor=device), 1)
    _accepted(
        await persistent.collect(p_local_firefox, visitor=device, headers=persistent.browser(user_agent=FIREFOX_UA)), 1
    )
    _accepted(await persistent.collect(p_other_device, visitor={"localId": "another-device-id"}), 1)
    assert _visitor(persistent, p_local_firefox) == _visitor(persistent, p_local)  # stable across browsers
    assert _visitor(persistent, p_local) != _visitor(persistent, p_plain)
    assert _visitor(persistent, p_other_device) not in (_visitor(persistent, p_local), _visitor(persistent, p_plain))


async def test_no_ip_address_is_stored(site: WidgetSite, geo_client: httpx.AsyncClient) -> None:
    _accepted(
        await site.collect(
            widget_event("page_view", site.page("/")),
            widget_event("purchase", site.page("/checkout"), details={"product": "Socks"}),
        ),
        2,
    )
    _accepted(await site.collect(widget_event("page_view", site.page("/geo")), client=geo_client), 1)
    rows = site.stored_rows_as_text()
    assert len(rows) == 3
    assert [row for row in rows if "127.0.0.1" in row] == []


# --- GeoIP -----------------------------------------------------------------------------------------------------


async def test_geoip_places_page_views(site: WidgetSite, geo_client: httpx.AsyncClient) -> None:
    view = widget_event("page_view", site.page("/"))
    purchase = widget_event("purchase", site.page("/checkout"), details={"firstName": "Anna", "product": "Socks"})
    _accepted(await site.collect(view, purchase, client=geo_client), 2)
    stored = _by_id(site)
    assert stored[view["id"]].payload == {"country": "DE", "city": "Berlin"}
    assert stored[purchase["id"]].payload == {
        "firstName": "Anna",
        "product": "Socks",
        "country": "DE",
        "city": "Berlin",
    }


async def test_an_event_naming_its_whole_place_keeps_it(site: WidgetSite, geo_client: httpx.AsyncClient) -> None:
    placed = widget_event("purchase", site.page("/checkout"), details={"city": "Wien", "country": "AT"})
    _accepted(await site.collect(placed, client=geo_client), 1)
    assert _by_id(site)[placed["id"]].payload == {"city": "Wien", "country": "AT"}


async def test_an_event_naming_part_of_its_place_gets_nothing_from_geoip(
    site: WidgetSite, geo_client: httpx.AsyncClient
) -> None:
    country_only = widget_event("purchase", site.page("/checkout"), details={"country": "AT"})
    city_only = widget_event("purchase", site.page("/checkout"), details={"city": "Wien"})
    _accepted(await site.collect(country_only, city_only, client=geo_client), 2)
    stored = _by_id(site)
    assert stored[country_only["id"]].payload == {"country": "AT"}
    assert stored[city_only["id"]].payload == {"city": "Wien"}


# --- CORS and methods ------------------------------------------------------------------------------------------


async def test_the_answer_allows_exactly_the_requesting_origin(site: WidgetSite) -> None:
    for origin in (site.origin, f"https://www.{site.domain}", f"http://{site.domain}:8080"):
        response = await site.collect(widget_event("page_view", site.page("/")), headers=site.browser(origin=origin))
        _accepted(response, 1)
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["vary"] == "Origin"
        assert response.headers["content-type"] == "application/json"


async def test_a_preflight_is_answered_204(site: WidgetSite) -> None:
    response = await site.client.options(
        "/api/v1/collect",
        headers={
            "Origin": site.origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert {
        name: response.headers.get(name)
        for name in (
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
            "access-control-max-age",
        )
    } == {
        "access-control-allow-origin": site.origin,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "Content-Type",
        "access-control-max-age": "86400",
    }
    assert response.content == b""


async def test_other_methods_are_405(site: WidgetSite) -> None:
    response = await site.client.get("/api/v1/collect", headers=site.browser())
    _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "OPTIONS, POST"


# --- rate limit ------------------------------------------------------------------------------------------------


async def test_collection_is_rate_limited_per_site_and_address(settings: Settings, make_site: SiteFactory) -> None:
    limited = settings.model_copy(
        update={
            "socialproof": settings.socialproof.model_copy(update={"collect_per_ip_per_minute": 3}),
            "rate_limit": settings.rate_limit.model_copy(update={"enabled": True}),
        }
    )
    site, other = await make_site(), await make_site()
    async with running(create_app(limited)) as http:
        if time.time() % 60 > 57:  # the window is a fixed minute: don't straddle its end
            await asyncio.sleep(60.05 - time.time() % 60)
        responses = [
            await site.collect(widget_event("page_view", site.page(f"/{number}")), client=http) for number in range(4)
        ]
        elsewhere = await other.collect(widget_event("page_view", other.page("/")), client=http)
    assert [response.status_code for response in responses] == [202, 202, 202, 429]
    _error(responses[3], 429, "rate_limited")
    assert 1 <= int(responses[3].headers["retry-after"]) <= 60
    assert responses[3].headers["access-control-allow-origin"] == site.origin  # the widget may read Retry-After
    _accepted(elsewhere, 1)
    assert len(site.stored()) == 3
