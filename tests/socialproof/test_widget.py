"""The embeddable widget in real headless Chromium: the merchant's snippet on a merchant's page, end to end.

The API runs behind uvicorn with ``public_url`` set to its own address (the loader embeds it); the merchant's
pages come from a second small server on another loopback port, under host names that Chromium maps to
127.0.0.1 (``--host-resolver-rules``), so the page really is on ``www.shop-<random>.test`` and the widget really
talks to the API across origins. Chromium runs with a normal desktop user agent and without the automation flag
(``navigator.webdriver``), since the platform records nothing from headless or automated browsers: one test
checks exactly that. What was recorded is read back from ``socialproof.notification_events``.
"""

from __future__ import annotations

import asyncio
import gzip
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, NamedTuple

import httpx
import psycopg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route as PageRoute

from northstar.app import create_app
from northstar.demo.loopback import free_port, serving
from northstar.settings import Settings
from tests.browser import MISSING, chromium
from tests.factories import Account

DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
MOBILE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Mobile Safari/537.36"
)
HEADLESS_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36"
)
POPUP = "div[data-northstar] .popup"  # Playwright's CSS engine pierces the open shadow root
ANNA = "Anna from Berlin bought Trail Shoes · 5 min. ago"


@pytest.fixture(scope="module")
async def api(settings: Settings) -> AsyncIterator[str]:
    """The platform behind uvicorn, with its own address as ``public_url``, which the loader embeds."""
    port = free_port()
    async with serving(create_app(settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})), port) as url:
        yield url


class Pages:
    """The merchants' web server: the paths tests register, whatever host name they are asked for under."""

    def __init__(self) -> None:
        self.port = free_port()
        self.html: dict[tuple[str, str], str] = {}

    async def respond(self, request: Request) -> Response:
        html = self.html.get((request.url.hostname or "", request.url.path))
        return HTMLResponse(html) if html is not None else Response(status_code=404)


@pytest.fixture(scope="module")
async def pages() -> AsyncIterator[Pages]:
    registry = Pages()
    async with serving(Starlette(routes=[PageRoute("/{path:path}", registry.respond)]), registry.port):
        yield registry


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    assert executable, MISSING
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-blink-features=AutomationControlled",  # navigator.webdriver stays false
                "--host-resolver-rules=MAP *.test 127.0.0.1",
            ],
        )
        yield launched
        await launched.close()


class Recorded(NamedTuple):
    type: str
    notification_id: str | None
    url: str | None
    payload: dict[str, Any]
    visitor_id: str | None


@dataclass
class Shop:
    """A merchant: a site on ``shop-<random>.test`` with one active recent-activity notification."""

    http: httpx.AsyncClient
    database_url: str
    pages: Pages
    api: str
    site: dict[str, Any]
    notification_id: str
    events_key: dict[str, str]
    owner: Account
    seeded: set[str] = field(default_factory=set)

    @property
    def domain(self) -> str:
        return str(self.site["domain"])

    @property
    def origin(self) -> str:
        return f"http://www.{self.domain}:{self.pages.port}"

    @property
    def snippet(self) -> str:
        """The site's embed snippet, exactly as the merchant pastes it."""
        return str(self.site["snippet"])

    def page(self, path: str, html: str, *, host: str | None = None) -> str:
        """Serves ``html`` at ``path``; returns its address on ``host`` (default: www. on the site's domain)."""
        host = host or f"www.{self.domain}"
        self.pages.html[host, path] = html
        return f"http://{host}:{self.pages.port}{path}"

    async def seed(self, *, minutes_ago: float = 5, **details: Any) -> str:
        """A purchase from the merchant's backend (Anna from Berlin, unless told otherwise); returns its id."""
        event_id = str(uuid.uuid4())
        occurred = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        details = {"firstName": "Anna Schmidt", "city": "Berlin", "country": "DE", "product": "Trail Shoes", **details}
        response = await self.http.post(
            f"/api/v1/sites/{self.site['id']}/events",
            headers=self.events_key,
            json={"events": [{"id": event_id, "type": "purchase", "occurredAt": occurred.isoformat(), **details}]},
        )
        assert response.status_code == 202, response.text
        self.seeded.add(event_id)
        return event_id

    async def recorded(self, *, seeded: bool = False) -> list[Recorded]:
        """What the widget recorded for this site (with the seeded purchases, when asked)."""
        async with await psycopg.AsyncConnection.connect(self.database_url) as connection:
            cursor = await connection.execute(
                "SELECT id, event_type, notification_id, url, payload, visitor_id FROM socialproof.notification_events"
                " WHERE site_id = %s ORDER BY occurred_at, event_type",
                (self.site["id"],),
            )
            return [
                Recorded(row[1], str(row[2]) if row[2] else None, row[3], row[4], row[5])
                for row in await cursor.fetchall()
                if seeded or str(row[0]) not in self.seeded
            ]

    async def wait_until(self, done: Callable[[set[str]], bool], *, within: float = 10) -> list[Recorded]:
        """Polls what was recorded until ``done(the event types)``; the widget sends in batches, about 1 s apart."""
        deadline = time.monotonic() + within
        while True:
            events = await self.recorded()
            if done({event.type for event in events}):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"not recorded within {within}s; recorded: {events}")
            await asyncio.sleep(0.1)


def only(events: list[Recorded], kind: str) -> Recorded:
    """The one event of this type."""
    (event,) = [event for event in events if event.type == kind]
    return event


MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
async def make_shop(api: str, pages: Pages, founder: Account, database_url: str) -> AsyncIterator[MakeShop]:
    """Opens a shop whose notification has these display rules (by default: at once, for 8 s, 1 s apart)."""
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:

        async def open_shop(**display: Any) -> Shop:
            site = await http.post(
                "/api/v1/sites",
                headers=founder.headers,
                json={"name": "Trail shop", "domain": f"shop-{secrets.token_hex(4)}.test"},
            )
            assert site.status_code == 201, site.text
            site_id = site.json()["data"]["id"]
            notification = await http.post(
                f"/api/v1/sites/{site_id}/notifications",
                headers=founder.headers,
                json={
                    "name": "Recent",
                    "type": "recent_activity",
                    "status": "active",
                    "source": {"eventTypes": ["purchase"]},
                    "display": {"firstDelaySeconds": 0, "durationSeconds": 8, "gapSeconds": 1, **display},
                },
            )
            assert notification.status_code == 201, notification.text
            key = await http.post(
                "/api/v1/api-keys",
                headers=founder.headers,
                json={"name": "backend", "role": "member", "scopes": ["events:create"]},
            )
            assert key.status_code == 201, key.text
            return Shop(
                http=http,
                database_url=database_url,
                pages=pages,
                api=api,
                site=site.json()["data"],
                notification_id=notification.json()["data"]["id"],
                events_key={"X-API-Key": key.json()["data"]["key"]},
                owner=founder,
            )

        yield open_shop


@pytest.fixture
async def shop(make_shop: MakeShop) -> Shop:
    return await make_shop()


HOST_SCRIPT = """<script>
  document.addEventListener("DOMContentLoaded", function () { document.getElementById("out").textContent = "ready"; });
  document.getElementById("buy").addEventListener("click", function () {
    document.getElementById("out").textContent = "added";
  });
</script>"""


def html(snippet: str, *, head: str = "", body: str = "", title: str = "Trail shop") -> str:
    """A merchant's page: its own button and script, the snippet pasted before </body>."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f'{head}</head><body>\n<main id="app"><h1>{title}</h1>'
        f'<button id="buy" type="button">Add to cart</button><p id="out">loading</p></main>\n'
        f"{HOST_SCRIPT}\n{body}\n{snippet}\n</body></html>"
    )


@dataclass
class Tab:
    """A page in its own browser context, with what went wrong in it and what it asked the API."""

    page: Page
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    api_requests: list[str] = field(default_factory=list)

    def requested(self, path: str) -> list[str]:
        return [url for url in self.api_requests if path in url]

    async def widget_started(self) -> None:
        await self.page.wait_for_function("() => !!(window.northstar && window.northstar.started)")

    async def leave(self) -> None:
        """Navigate away: ``pagehide`` makes the widget send whatever it still holds, at once."""
        await self.page.goto("about:blank")


Visit = Callable[..., Awaitable[Tab]]


@pytest.fixture
async def visit(browser: Browser, api: str) -> AsyncIterator[Visit]:
    """Opens a tab in a fresh context (a new visitor: own storage); desktop Chrome unless told otherwise."""
    contexts: list[BrowserContext] = []

    async def open_tab(**options: Any) -> Tab:
        context = await browser.new_context(**{"user_agent": DESKTOP_UA, **options})
        contexts.append(context)
        page = await context.new_page()
        tab = Tab(page)
        page.on("pageerror", lambda error: tab.errors.append(f"{error.name}: {error.message}"))
        page.on("console", lambda message: tab.console_errors.append(message.text) if message.type == "error" else None)
        page.on(
            "request", lambda request: tab.api_requests.append(request.url) if request.url.startswith(api) else None
        )
        return tab

    yield open_tab
    for context in contexts:
        await context.close()


async def test_seeded_purchases_pop_up_after_the_first_delay_and_clicks_are_recorded(
    make_shop: MakeShop, visit: Visit
) -> None:
    shop = await make_shop(firstDelaySeconds=1)
    product_url = shop.page("/trail-shoes", html(shop.snippet, title="Trail Shoes"))
    purchase = await shop.seed(firstName="anna Schmidt", productUrl=product_url, amount=89.9, currency="EUR")
    url = shop.page("/", html(shop.snippet))
    tab = await visit()
    page = tab.page
    popup = page.locator(POPUP)
    async with page.expect_response(lambda response: "/feed?" in response.url) as feed:
        await page.goto(url)
    assert (await feed.value).ok
    fed = time.monotonic()
    assert await popup.count() == 0
    await expect(popup.locator(".text")).to_have_text(ANNA)  # anonymised: first name only, capitalised
    assert time.monotonic() - fed >= 0.8, "shown before firstDelaySeconds"
    await popup.click()  # the popup links to the product
    await expect(page).to_have_url(product_url)

    events = await shop.wait_until(lambda types: {"impression", "hover", "click"} <= types)
    view = next(event for event in events if event.type == "page_view")
    assert view.url == url and view.notification_id is None and view.visitor_id
    for kind in ("impression", "hover", "click"):
        event = only(events, kind)
        assert (event.notification_id, event.payload["itemId"], event.url) == (shop.notification_id, purchase, url)
    assert tab.errors == [] and tab.console_errors == []


HOSTILE_CSS = """<style>
  div { color: red !important; font: italic 40px/3 serif !important; letter-spacing: 8px !important;
        text-transform: uppercase !important; text-align: right !important;
        opacity: .3 !important; transform: rotate(8deg) translateX(200px) !important; }
  div:empty { display: none }
  button { display: block; width: 100%; font-size: 30px; background: lime; }
</style>"""
HOSTILE_JS = """<script>
  /* globals a widget must neither depend on nor clobber, and handlers on the whole document */
  var ns = "host", ui = "host", queue = "host", send = function () { throw new Error("host send"); };
  window.hostClicks = 0;
  document.addEventListener("click", function () { window.hostClicks += 1; });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") window.hostEscapes = true; });
</script>"""
COMPUTED = """text => {
    const css = getComputedStyle(text), host = getComputedStyle(document.querySelector("div[data-northstar]"));
    const box = text.closest(".popup").getBoundingClientRect();
    return {color: css.color, fontSize: css.fontSize, fontStyle: css.fontStyle, letterSpacing: css.letterSpacing,
            textTransform: css.textTransform, textAlign: css.textAlign, lineHeight: css.lineHeight,
            hostHidden: host.display === "none", hostOpacity: host.opacity, hostTransform: host.transform,
            left: box.left, bottom: innerHeight - box.bottom};
}"""


async def test_the_host_pages_css_and_js_do_not_leak_into_the_popup(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit(viewport={"width": 1200, "height": 800})
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet, head=HOSTILE_CSS, body=HOSTILE_JS)))
    popup = page.locator(POPUP)
    await expect(popup.locator(".text")).to_have_text(ANNA)
    await expect(popup).to_have_css("opacity", "1")  # faded in
    assert await popup.locator(".text").evaluate(COMPUTED) == {
        "color": "rgb(31, 41, 51)",
        "fontSize": "14px",
        "fontStyle": "normal",
        "letterSpacing": "normal",
        "textTransform": "none",
        "textAlign": "start",
        "lineHeight": "19.6px",
        "hostHidden": False,
        "hostOpacity": "1",
        "hostTransform": "none",
        "left": 16,
        "bottom": 16,
    }  # bottom-left of the viewport
    close = page.get_by_role("button", name="Dismiss")
    assert await close.evaluate("button => getComputedStyle(button).fontSize") == "18px"

    await page.locator("#buy").click()  # the host's own button and handlers keep working
    await expect(page.locator("#out")).to_have_text("added")
    await close.click()  # the widget's own button does not reach the page's click handlers
    await expect(popup).to_have_count(0)
    assert await page.evaluate("window.hostClicks") == 1
    await page.keyboard.press("Escape")
    assert await page.evaluate("window.hostEscapes") is True
    assert tab.errors == [] and tab.console_errors == []


async def test_a_page_that_replaces_its_body_still_gets_popups(make_shop: MakeShop, visit: Visit) -> None:
    """Turbo, htmx boosts and the like swap <body> on navigation; the widget puts its host back."""
    shop = await make_shop(firstDelaySeconds=1)
    await shop.seed()
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    await page.locator("div[data-northstar]").wait_for(state="attached")  # mounted; the first delay runs
    await page.evaluate("""() => {
        const body = document.createElement("body");
        body.innerHTML = "<main><h1>Next page</h1></main>";
        document.body.replaceWith(body);
    }""")
    await expect(page.locator(POPUP).locator(".text")).to_have_text(ANNA)
    assert tab.errors == []


FEED = "/api/v1/widget/"
COLLECT = "/api/v1/collect"
WIDGET = "/w/widget-"
LOADER = "/w/pk_"


async def _hang(route: Route) -> None:
    """Never answered: the request hangs until the page goes away."""


async def _slow(route: Route) -> None:
    await asyncio.sleep(1.5)
    await route.continue_()


def _truncated_widget() -> str:
    return files("northstar.socialproof").joinpath("static/widget.js").read_text()[:3000]


BROKEN: dict[str, tuple[str, Callable[[Route], Awaitable[None]]]] = {
    "feed answers 500": (
        FEED,
        lambda route: route.fulfill(
            status=500, json={"error": {"code": "internal_error", "message": "Something went wrong"}}
        ),
    ),
    "feed is not JSON": (
        FEED,
        lambda route: route.fulfill(status=200, content_type="application/json", body="<html>502 Bad Gateway</html>"),
    ),
    "feed has the wrong shape": (
        FEED,
        lambda route: route.fulfill(
            status=200,
            json={
                "data": {
                    "v": 1,
                    "site": None,
                    "notifications": [
                        {
                            "id": 7,
                            "type": "recent_activity",
                            "devices": ["desktop"],
                            "display": {"firstDelaySeconds": 0},
                            "items": [{"id": None, "parts": None}, {"parts": [None, 3], "at": "yesterday"}, None],
                        },
                        {"id": "n2", "type": "announcement", "devices": ["desktop"], "items": "nope"},
                    ],
                }
            },
        ),
    ),
    "feed is slow": (FEED, _slow),
    "feed hangs": (FEED, _hang),
    "feed connection refused": (FEED, lambda route: route.abort("connectionrefused")),
    "collect answers 503": (
        COLLECT,
        lambda route: route.fulfill(
            status=503, headers={"Retry-After": "1"}, json={"error": {"code": "events_unavailable", "message": "x"}}
        ),
    ),
    "collect hangs": (COLLECT, _hang),
    "widget script answers 500": (WIDGET, lambda route: route.fulfill(status=500, body="oops")),
    "widget script is cut short": (
        WIDGET,
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=_truncated_widget()),
    ),
    "widget script hangs": (WIDGET, _hang),
    "loader hangs": (LOADER, _hang),
}


async def test_a_broken_or_slow_api_does_not_break_the_page(shop: Shop, visit: Visit) -> None:
    """Every case in its own tab, all at once; a case fails with what went wrong in it."""
    await shop.seed()
    url = shop.page("/", html(shop.snippet))

    async def survives(case: str) -> None:
        path, answer = BROKEN[case]
        asked = asyncio.Event()

        async def intercept(route: Route) -> None:
            asked.set()
            await answer(route)

        tab = await visit()
        page = tab.page
        await page.route(lambda address: address.startswith(shop.api + path), intercept)
        await page.goto(url, wait_until="load", timeout=5000)  # the page finishes loading whatever hangs...
        await expect(page.locator("#out")).to_have_text("ready")  # ...its own script ran...
        await page.locator("#buy").click()
        await expect(page.locator("#out")).to_have_text("added")  # ...and its button works
        await asyncio.wait_for(asked.wait(), 5)
        if case in ("feed is slow", "collect answers 503", "collect hangs"):  # popups still show
            await expect(page.locator(POPUP).locator(".text")).to_have_text(ANNA)
        if path == COLLECT:  # the page view's batch failed; give the impression's (1 s later) its time too
            await page.wait_for_timeout(1200)
        elif path == FEED:  # the widget acts on the answer at once (first delay 0)
            await page.wait_for_timeout(300)
        if case == "widget script is cut short":  # the browser reports the script's syntax error, nothing more
            assert tab.errors and all(error.startswith("SyntaxError:") for error in tab.errors), tab.errors
        else:
            assert tab.errors == [], tab.errors

    outcomes = await asyncio.gather(*(survives(case) for case in BROKEN), return_exceptions=True)
    assert {case: outcome for case, outcome in zip(BROKEN, outcomes, strict=True) if outcome is not None} == {}


async def test_popups_are_announced_and_escape_dismisses_them_without_motion(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit(reduced_motion="reduce")
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    region = page.get_by_role("status")
    await expect(region).to_have_attribute("aria-live", "polite")
    popup = region.locator(".popup")
    await expect(popup.locator(".text")).to_have_text(ANNA)
    assert await popup.evaluate("e => [getComputedStyle(e).transitionDuration, getComputedStyle(e).transform]") == [
        "0s",
        "none",
    ]
    await expect(page.get_by_role("button", name="Dismiss")).to_be_visible()
    await page.keyboard.press("Escape")  # focus is on the page, not in the popup
    await expect(popup).to_have_count(0)
    close = only(await shop.wait_until(lambda types: "close" in types), "close")
    assert close.notification_id == shop.notification_id
    assert tab.errors == [] and tab.console_errors == []


async def test_a_linked_popup_opens_with_the_keyboard(shop: Shop, visit: Visit) -> None:
    product_url = shop.page("/trail-shoes", html(shop.snippet, title="Trail Shoes"))
    purchase = await shop.seed(productUrl=product_url)
    tab = await visit()
    page = tab.page
    url = shop.page("/", html(shop.snippet))
    await page.goto(url)
    popup = page.locator(POPUP)
    await expect(popup.locator(".text")).to_have_text(ANNA)
    await page.keyboard.press("Tab")
    await expect(page.locator("#buy")).to_be_focused()  # the page's own controls come first...
    await page.keyboard.press("Tab")
    await expect(popup).to_be_focused()  # ...then the popup, then its close button
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Dismiss")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(product_url)
    click = only(await shop.wait_until(lambda types: "click" in types), "click")
    assert (click.notification_id, click.payload["itemId"], click.url) == (shop.notification_id, purchase, url)


async def test_on_a_phone_the_popup_is_full_width(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit(user_agent=MOBILE_UA, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    popup = page.locator(POPUP)
    await expect(popup.locator(".text")).to_have_text(ANNA)
    box = await popup.bounding_box()
    assert box is not None
    assert box["x"] <= 8 and box["x"] + box["width"] >= 375 - 8 and box["y"] + box["height"] <= 740, box
    assert await popup.evaluate("e => getComputedStyle(e).transitionDuration") != "0s"  # motion unless reduced
    close = page.get_by_role("button", name="Dismiss")
    target = await close.bounding_box()
    assert target is not None and target["width"] >= 24 and target["height"] >= 24, target  # WCAG 2.5.8
    await close.tap()
    await expect(popup).to_have_count(0)
    assert tab.errors == [] and tab.console_errors == []


async def test_after_stop_nothing_is_recorded_and_popups_are_gone(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    popup = page.locator(POPUP)
    await expect(popup.locator(".text")).to_have_text(ANNA)
    before = await shop.wait_until(lambda types: {"page_view", "impression"} <= types)
    await popup.hover()  # a hover waits in the outbox...
    await page.evaluate("northstar('stop')")  # ...and is dropped
    await expect(page.locator("div[data-northstar]")).to_have_count(0)
    await page.evaluate("northstar('track', 'purchase', {firstName: 'Mia'}); northstar('identify', {id: 'c-42'})")
    sent = len(tab.requested(COLLECT))
    await page.reload()  # pagehide: whatever the widget held would be sent now; the next page stays opted out
    await tab.widget_started()
    await tab.leave()
    assert tab.requested(COLLECT)[sent:] == []
    assert await page.locator("div[data-northstar]").count() == 0
    assert await shop.recorded() == before
    assert {event.type for event in before} == {"page_view", "impression"}
    assert tab.errors == []


async def test_start_brings_popups_back_on_the_same_page(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    jonas = await shop.seed(firstName="Jonas", city="Hamburg", product="Rain Jacket", minutes_ago=30)
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    text = page.locator(POPUP).locator(".text")
    await expect(text).to_have_text(ANNA)
    await page.evaluate("northstar('stop')")
    await expect(page.locator("div[data-northstar]")).to_have_count(0)
    await page.evaluate("northstar('start')")
    await expect(text).to_have_text("Jonas from Hamburg bought Rain Jacket · 30 min. ago")  # the next one
    events = await shop.wait_until(lambda types: "impression" in types)
    assert jonas in [event.payload.get("itemId") for event in events if event.type == "impression"]


async def test_opted_out_visitors_keep_no_identifiers(shop: Shop, visit: Visit) -> None:
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    await tab.widget_started()
    await page.evaluate("northstar('identify', {id: 'c-42'}); northstar('stop'); northstar('identify', {id: 'c-43'})")
    stored = await page.evaluate("Object.keys(localStorage).filter(key => key.startsWith('ns:'))")
    assert sorted(key.rsplit(":", 1)[1] for key in stored) == ["first", "optout"], stored


@pytest.mark.parametrize("host", ["www.elsewhere-{token}.test", "not{domain}", "{domain}.evil-{token}.test"])
async def test_the_loader_does_nothing_off_the_sites_domain(shop: Shop, visit: Visit, host: str) -> None:
    await shop.seed()
    tab = await visit()
    page = tab.page
    await page.goto(
        shop.page("/", html(shop.snippet), host=host.format(token=secrets.token_hex(3), domain=shop.domain))
    )  # "load": it ran
    await page.evaluate("northstar('track', 'purchase', {firstName: 'Mia'})")  # the page's own calls stay harmless
    assert await page.locator("div[data-northstar]").count() == 0
    await tab.leave()
    assert tab.api_requests == [f"{shop.api}/w/{shop.site['siteKey']}.js"]  # no widget, no feed, no events
    assert await shop.recorded() == []
    assert tab.errors == []


async def test_headless_chrome_is_recorded_as_nothing(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit(user_agent=HEADLESS_UA)
    page = tab.page
    async with page.expect_response(lambda response: COLLECT in response.url) as collected:
        await page.goto(shop.page("/", html(shop.snippet)))
        await expect(page.locator(POPUP).locator(".text")).to_have_text(ANNA)  # shown, but it counts for nothing
    response = await collected.value
    assert response.status == 202
    answer = (await response.json())["data"]
    assert answer["accepted"] == 0 and answer["dropped"] >= 1, answer  # the answer comes once stored, or not
    await page.locator(POPUP).click()
    await tab.leave()
    assert await shop.recorded() == []


async def test_an_automated_browser_sends_nothing(shop: Shop, visit: Visit) -> None:
    await shop.seed()
    tab = await visit()
    page = tab.page
    await page.add_init_script("Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => true})")
    await page.goto(shop.page("/", html(shop.snippet)))
    await expect(page.locator(POPUP).locator(".text")).to_have_text(ANNA)
    await page.locator(POPUP).click()
    await tab.leave()
    assert tab.requested(COLLECT) == []
    assert await shop.recorded() == []


STUB = """<script>
  window.northstar = window.northstar || function () { (northstar.q = northstar.q || []).push(arguments); };
  northstar("identify", {id: " customer-42 "});
</script>"""


async def test_calls_made_before_the_loader_run_and_visitors_never_see_their_own_purchase(
    shop: Shop, visit: Visit
) -> None:
    await shop.seed(visitorId="customer-42")  # Anna is this visitor
    await shop.seed(firstName="Jonas", city="Hamburg", product="Rain Jacket", minutes_ago=30)
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet, head=STUB)))
    jonas = "Jonas from Hamburg bought Rain Jacket · 30 min. ago"
    await expect(page.locator(POPUP).locator(".text")).to_have_text(jonas)
    view = only(await shop.wait_until(lambda types: "page_view" in types), "page_view")
    anna = next(event for event in await shop.recorded(seeded=True) if event.payload.get("firstName") == "Anna Schmidt")
    assert anna.visitor_id is not None and view.visitor_id == anna.visitor_id  # identified as the same person


async def test_sloppy_tracking_calls_do_not_lose_the_batch(shop: Shop, visit: Visit) -> None:
    tab = await visit()
    page = tab.page
    await page.goto(shop.page("/", html(shop.snippet)))
    await tab.widget_started()  # the page view waits in the outbox; these calls join its batch
    await page.evaluate("""() => {
        northstar('track', 'purchase', {firstName: '  Mia  ', city: 'Köln', country: 'de', product: 'x'.repeat(300),
                                        amount: '19.90', currency: 'eur', rating: 9, productUrl: '/p/1', extra: 1});
        northstar('track', '');
        northstar('track', 'newsletter_signup', {firstName: 42, amount: -5, country: 'Germany', city: 'a\u0000'});
    }""")
    events = await shop.wait_until(lambda types: {"page_view", "purchase", "custom"} <= types)
    assert sorted(event.type for event in events) == ["custom", "page_view", "purchase"]
    assert only(events, "purchase").payload == {
        "firstName": "Mia",
        "city": "Köln",
        "country": "DE",
        "product": "x" * 200,
        "amount": 19.9,
        "currency": "EUR",
        "productUrl": f"{shop.origin}/p/1",
    }
    assert only(events, "custom").payload == {"firstName": "42", "city": "a"}


async def test_relative_times_read_naturally(make_shop: MakeShop, visit: Visit) -> None:
    shop = await make_shop(durationSeconds=1, gapSeconds=0)
    await shop.seed(minutes_ago=0.1)
    await shop.seed(firstName="Jonas", city="Hamburg", product="Rain Jacket", minutes_ago=3 + 59.6)
    tab = await visit()
    page = tab.page
    await page.clock.set_fixed_time(datetime.now(UTC) - timedelta(minutes=3))  # this visitor's clock is slow
    await page.goto(shop.page("/", html(shop.snippet)))
    shown = await page.wait_for_function(
        """() => {
        const text = document.querySelector("div[data-northstar]")?.shadowRoot.querySelector(".popup .text");
        const seen = window.seenTexts = window.seenTexts || [];
        if (text && !seen.includes(text.textContent)) seen.push(text.textContent);
        return seen.length >= 2 && seen;
    }""",
        polling="raf",
    )
    assert await shown.json_value() == [
        "Anna from Berlin bought Trail Shoes · now",  # not "in 3 min."
        "Jonas from Hamburg bought Rain Jacket · 59 min. ago",
    ]  # not "60 min. ago"


def test_the_scripts_stay_small() -> None:
    static = files("northstar.socialproof").joinpath("static")
    assert len(gzip.compress(static.joinpath("loader.js").read_bytes(), 9)) <= 2 * 1024
    assert len(gzip.compress(static.joinpath("widget.js").read_bytes(), 9)) <= 15 * 1024


async def test_the_snippet_names_the_platforms_public_url(shop: Shop) -> None:
    loader = f"{shop.api}/w/{shop.site['siteKey']}.js"
    assert f'(window,document,"{loader}")' in shop.site["snippet"]
    assert shop.site["scriptTag"] == f'<script async src="{loader}"></script>'


async def test_a_persistent_visitor_id_counts_from_the_first_page_view(shop: Shop, visit: Visit) -> None:
    """With ``persistentVisitorId`` on, the loader says so: the page view, sent while the feed is still on its way,
    already carries the first-party id, so the visit counts as one visitor."""
    updated = await shop.http.patch(
        f"/api/v1/sites/{shop.site['id']}", headers=shop.owner.headers, json={"settings": {"persistentVisitorId": True}}
    )
    assert updated.status_code == 200, updated.text
    await shop.seed()
    tab = await visit()
    await tab.page.route(lambda address: address.startswith(shop.api + FEED), _slow)  # 1.5 s: after the page view
    await tab.page.goto(shop.page("/", html(shop.snippet)))
    await expect(tab.page.locator(POPUP).locator(".text")).to_have_text(ANNA)
    events = await shop.wait_until(lambda types: "impression" in types)
    assert {event.visitor_id for event in events if event.type in ("page_view", "impression")} == {
        only(events, "page_view").visitor_id
    }
    stored_id = await tab.page.evaluate(f"() => JSON.parse(localStorage.getItem('ns:{shop.site['siteKey']}:vid'))")
    assert isinstance(stored_id, str) and len(stored_id) == 32


async def test_a_popup_for_an_event_without_a_url_links_nowhere(shop: Shop, visit: Visit) -> None:
    await shop.seed()  # no productUrl and no page: nothing to link to
    tab = await visit()
    page = tab.page
    url = shop.page("/", html(shop.snippet))
    await page.goto(url)
    popup = page.locator(POPUP)
    await expect(popup.locator(".text")).to_have_text(ANNA)
    assert await popup.get_attribute("class") == "popup in"  # not "link": no pointer, not focusable
    assert await popup.get_attribute("tabindex") is None
    await popup.locator(".text").click()
    click = only(await shop.wait_until(lambda types: "click" in types), "click")  # the click counts...
    assert click.notification_id == shop.notification_id
    assert page.url == url  # ...and leads nowhere (it used to lead to /null)
    assert tab.errors == [] and tab.console_errors == []


async def test_new_events_show_on_a_page_that_is_already_open(make_shop: MakeShop, visit: Visit) -> None:
    """The page opened before the shop had any event; the widget follows the page's live feed
    (``/events/stream?siteKey=…&url=…``), so each new purchase pops up without a reload."""
    shop = await make_shop(durationSeconds=2, gapSeconds=0)
    tab = await visit()
    page = tab.page
    async with page.expect_response(lambda response: "/feed?" in response.url) as fed:
        await page.goto(shop.page("/", html(shop.snippet)))
    assert (await (await fed.value).json())["data"]["notifications"] == []  # nothing to show yet
    deadline = time.monotonic() + 10
    while not tab.requested("/events/stream?siteKey="):
        assert time.monotonic() < deadline, "the widget did not open the live feed"
        await asyncio.sleep(0.1)
    text = page.locator(POPUP).locator(".text")
    await shop.seed(minutes_ago=0)
    await expect(text).to_have_text("Anna from Berlin bought Trail Shoes · now", timeout=20_000)
    await shop.seed(firstName="Jonas", city="Hamburg", product="Rain Jacket", minutes_ago=0)
    await expect(text).to_have_text("Jonas from Hamburg bought Rain Jacket · now", timeout=20_000)
    assert len(tab.requested(FEED)) == 1  # no reload and no polling: the live feed brought both
    assert tab.errors == [] and tab.console_errors == []


async def test_an_ab_tested_popup_shows_the_visitors_variant_and_records_it(shop: Shop, visit: Visit) -> None:
    """The feed gives the browser its variant (by its first-party id, which it sends); the popup shows that variant's
    message, and its impression carries the variant, which is counted as one exposed visitor."""
    updated = await shop.http.patch(
        f"/api/v1/sites/{shop.site['id']}", headers=shop.owner.headers, json={"settings": {"persistentVisitorId": True}}
    )
    assert updated.status_code == 200, updated.text
    created = await shop.http.post(
        f"/api/v1/sites/{shop.site['id']}/ab-tests",
        headers=shop.owner.headers,
        json={
            "name": "Wording",
            "notificationId": shop.notification_id,
            "variants": [
                {"name": "Bought", "isControl": True, "weight": 50, "message": "{{firstName}} bought {{product}}"},
                {"name": "Grabbed", "weight": 50, "message": "{{firstName}} grabbed {{product}}"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    test = created.json()["data"]
    started = await shop.http.post(
        f"/api/v1/sites/{shop.site['id']}/ab-tests/{test['id']}/start", headers=shop.owner.headers
    )
    assert started.status_code == 200, started.text
    await shop.seed()
    tab = await visit()
    async with tab.page.expect_response(lambda response: "/feed?" in response.url) as fed:
        await tab.page.goto(shop.page("/", html(shop.snippet)))
    feed = await fed.value
    stored_id = await tab.page.evaluate(f"() => JSON.parse(localStorage.getItem('ns:{shop.site['siteKey']}:vid'))")
    assert f"vid={stored_id}" in feed.url
    (shown,) = (await feed.json())["data"]["notifications"]
    variant = next(item for item in test["variants"] if item["id"] == shown["variantId"])
    verb = variant["message"].split()[1]
    await expect(tab.page.locator(POPUP).locator(".text")).to_have_text(f"Anna {verb} Trail Shoes")
    await shop.wait_until(lambda types: "impression" in types)
    async with await psycopg.AsyncConnection.connect(shop.database_url) as connection:
        cursor = await connection.execute(
            "SELECT variant_id::text FROM socialproof.notification_events WHERE site_id = %s AND event_type = "
            "'impression'",
            (shop.site["id"],),
        )
        assert {row[0] for row in await cursor.fetchall()} == {variant["id"]}
        cursor = await connection.execute(
            "SELECT variant_id::text, sum(exposures) FROM socialproof.ab_test_counts WHERE test_id = %s GROUP BY 1",
            (test["id"],),
        )
        assert await cursor.fetchall() == [(variant["id"], 1)]
    assert tab.errors == []


async def test_custom_values_in_templates_are_text_in_the_popup(make_shop: MakeShop, visit: Visit) -> None:
    shop = await make_shop()
    http, headers = shop.http, shop.owner.headers
    field = await http.post(
        "/api/v1/custom-fields", headers=headers, json={"name": "Company", "key": "company", "type": "text"}
    )
    assert field.status_code in (201, 409), field.text  # the org's field, maybe made by another test of this file
    template = await http.post(
        f"/api/v1/sites/{shop.site['id']}/templates",
        headers=headers,
        json={
            "name": "With company",
            "message": "{{firstName}} of {{custom.company}} bought {{product}} · {{timeAgo}}",
        },
    )
    assert template.status_code == 201, template.text
    changed = await http.patch(
        f"/api/v1/sites/{shop.site['id']}/notifications/{shop.notification_id}",
        headers=headers,
        json={"templateId": template.json()["data"]["id"]},
    )
    assert changed.status_code == 200, changed.text
    await shop.seed(custom={"company": 'Tom <3 & "Jerry" <img src=x id=injected onerror=alert(1)>'})
    tab = await visit()
    await tab.page.goto(shop.page("/", html(shop.snippet)))
    text = tab.page.locator(POPUP).locator(".text")
    await expect(text).to_have_text('Anna of Tom <3 & "Jerry" bought Trail Shoes · 5 min. ago')
    assert await tab.page.locator("div[data-northstar] img, #injected").count() == 0
    assert tab.errors == [] and tab.console_errors == []


async def test_audience_notifications_show_only_to_visitors_whose_profile_matches(
    make_shop: MakeShop, visit: Visit
) -> None:
    shop = await make_shop()
    http, headers, site_id = shop.http, shop.owner.headers, shop.site["id"]
    field = await http.post(
        "/api/v1/custom-fields", headers=headers, json={"name": "Plan", "key": "plan", "type": "text"}
    )
    assert field.status_code in (201, 409), field.text
    paused = await http.patch(
        f"/api/v1/sites/{site_id}/notifications/{shop.notification_id}", headers=headers, json={"status": "paused"}
    )
    assert paused.status_code == 200, paused.text
    offer = await http.post(
        f"/api/v1/sites/{site_id}/notifications",
        headers=headers,
        json={
            "name": "Pro customers: your upgrade is ready",
            "type": "announcement",
            "status": "active",
            "display": {"firstDelaySeconds": 0, "durationSeconds": 8},
            "targeting": {"audience": {"custom": [{"key": "plan", "value": "pro"}], "scoreMin": 10}},
        },
    )
    assert offer.status_code == 201, offer.text
    recorded = await http.post(
        f"/api/v1/sites/{site_id}/events",
        headers=shop.events_key,
        json={"events": [{"type": "purchase", "visitorId": "pro-7", "custom": {"plan": "pro"}}]},
    )
    assert recorded.status_code == 202, recorded.text
    identify = (
        "<script>window.northstar=function(){(northstar.q=northstar.q||[]).push(arguments)};"
        "northstar('identify', {id: 'pro-7'});</script>"
    )
    known = await visit()
    await known.page.goto(shop.page("/pro", html(shop.snippet, head=identify)))
    await expect(known.page.locator(POPUP).locator(".text")).to_have_text("Pro customers: your upgrade is ready")

    stranger = await visit()
    async with stranger.page.expect_response(lambda response: "/widget/audience" in response.url) as asked:
        await stranger.page.goto(shop.page("/", html(shop.snippet)))
    answer = await (await asked.value).json()
    assert answer == {"data": {"notifications": []}}
    await stranger.page.wait_for_timeout(1000)
    assert await stranger.page.locator(POPUP).count() == 0
    assert known.errors == stranger.errors == [] and known.console_errors == stranger.console_errors == []
