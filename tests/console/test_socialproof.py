"""The social proof pages in a real browser: sites and the embed code, the notification editor with its preview drawn
by the real widget, template CSS, analytics against the API's numbers, the live event feed, roles and tenants."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
from playwright.async_api import Browser, Page, expect

from northstar.socialproof.console import RANGE_DAYS
from tests.console.conftest import PREVIEW, Tab, accessible, console_client, csrf_of, log_in, open_tab
from tests.console.screenshots import shot
from tests.factories import Account, add_member

XSS = "<img src=x id=injected onerror=alert(1)><script>alert(2)</script>"
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


async def shoot(tab: Tab, page: str) -> None:
    await tab.page.screenshot(path=shot(f"socialproof-{page}-{tab.page.viewport_size['width']}.png"), full_page=True)


async def api_site(console_url: str, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Trail shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com", **fields}
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.post("/api/v1/sites", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def api_post(console_url: str, account: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.post(f"/api/v1{path}", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def collect(console_url: str, site: dict[str, Any], *events: dict[str, Any]) -> None:
    """Events as the widget on one of the site's pages sends them."""
    body = {
        "siteKey": site["siteKey"],
        "events": [{"id": str(uuid.uuid4()), "url": f"https://{site['domain']}/p", **event} for event in events],
    }
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.post(
            "/api/v1/collect",
            content=orjson.dumps(body),
            headers={"Origin": f"https://{site['domain']}", "User-Agent": CHROME},
        )
    assert response.status_code == 202 and response.json()["data"]["accepted"] == len(events), response.text


async def assert_inert(page: Page) -> None:
    """The stored markup is text: no element it describes exists (the widget's shadow root included)."""
    assert await page.locator("#injected").count() == 0
    assert (
        await page.evaluate("document.querySelectorAll('script:not([src]):not([type=\"application/json\"])').length")
        == 0
    )


async def assert_fits(page: Page) -> None:
    """No horizontal page scroll: wide content scrolls inside its own box."""
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


async def api_get(console_url: str, account: Account, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.get(f"/api/v1{path}", headers=account.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_site_is_created_and_its_notification_previewed_by_the_widget(
    tab: Tab, browser: Browser, console_url: str, founder: Account
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/sites")
    await expect(page.get_by_role("heading", name="No sites yet")).to_be_visible()
    await accessible(tab, "sites, empty")
    domain = f"shop-{uuid.uuid4().hex[:8]}.example.com"
    await page.get_by_label("Name", exact=True).fill("Trail shop")
    await page.get_by_label("Domain").fill("localhost")
    await page.get_by_role("button", name="Add site").click()
    await expect(page.locator("#error-domain")).to_contain_text("use a name under it")
    await page.get_by_label("Domain").fill(f"https://{domain.upper()}/")
    await page.get_by_role("button", name="Add site").click()
    await page.wait_for_url("**/app/sites/*")
    site_id = page.url.rsplit("/", 1)[1]
    site = await api_get(console_url, founder, f"/sites/{site_id}")
    assert site["domain"] == domain
    await expect(page.locator("#embed-snippet")).to_have_value(site["snippet"])
    await expect(page.locator('button[data-copy="#embed-snippet"]')).to_be_visible()
    await expect(page.locator("#verification-status")).to_have_text("not required")
    await accessible(tab, "site")
    await shoot(tab, "site")

    await page.get_by_role("link", name="New notification").click()
    await expect(page.locator(PREVIEW)).to_contain_text("Anna from Berlin bought Trail Shoes · 4 min. ago")
    await page.get_by_label("Names shown as").select_option("someone")
    await expect(page.locator(PREVIEW)).to_contain_text("Someone from Berlin bought Trail Shoes")
    await page.get_by_label("Status").select_option("active")
    await page.get_by_label("Name", exact=True).fill("Recent buyers")
    await accessible(tab, "notification editor")
    await shoot(tab, "notification")
    await page.get_by_role("button", name="Create notification").click()
    await expect(page.get_by_role("heading", name="Recent buyers")).to_be_visible()
    notification_id = page.url.rsplit("/", 1)[1]
    stored = await api_get(console_url, founder, f"/sites/{site_id}/notifications/{notification_id}")
    assert (stored["name"], stored["status"], stored["type"]) == ("Recent buyers", "active", "recent_activity")
    assert stored["anonymization"]["name"] == "someone"
    await expect(page.locator(PREVIEW)).to_contain_text("Someone from Berlin bought Trail Shoes")

    await page.get_by_label("Shown for (s)").fill("9")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    changed = await api_get(console_url, founder, f"/sites/{site_id}/notifications/{notification_id}")
    assert changed["display"]["durationSeconds"] == 9
    assert changed["anonymization"]["excluded"] == []  # what the form does not show is kept
    assert tab.script_problems() == []

    narrow = await open_tab(browser, console_url, width=390)
    try:
        await log_in(narrow.page, founder, path="/app/sites")
        await shoot(narrow, "sites")
        await narrow.page.goto(f"/app/sites/{site_id}")
        await shoot(narrow, "site")
        await narrow.page.goto(f"/app/sites/{site_id}/notifications/{notification_id}")
        await expect(narrow.page.locator(PREVIEW)).to_contain_text("Someone from Berlin")
        await accessible(narrow, "editor at 390 px")
        await shoot(narrow, "notification")
        assert narrow.script_problems() == []
    finally:
        await narrow.context.close()
    await page.goto("/app/sites")
    await expect(page.get_by_role("link", name="Trail shop")).to_be_visible()
    await accessible(tab, "sites")
    await shoot(tab, "sites")
    await page.get_by_label("Name", exact=True).fill("Same shop")
    await page.get_by_label("Domain").fill(domain)
    await page.get_by_role("button", name="Add site").click()  # refused by the service, in a savepoint
    await expect(page.locator("#error-domain")).to_have_text("This organization already has a site for this domain")
    await expect(page.get_by_role("link", name="Trail shop")).to_have_count(1)
    assert tab.script_problems() == []


async def test_an_invalid_draft_says_why_and_other_types_preview(tab: Tab, console_url: str, founder: Account) -> None:
    site = await api_site(console_url, founder)
    await log_in(tab.page, founder, path=f"/app/sites/{site['id']}/notifications/new")
    page = tab.page
    await page.get_by_label("Type").select_option("live_visitors")
    await expect(page.locator("#preview-problem")).to_contain_text("takes no source.eventTypes")
    await page.get_by_label("Purchases").uncheck()
    await expect(page.locator(PREVIEW)).to_contain_text("23 people are on this site right now")
    await page.get_by_label("Type").select_option("period_counter")
    await page.get_by_label("Purchases").check()
    await page.get_by_role("button", name="Create notification").click()
    await expect(page.locator(".form-error")).to_contain_text("needs source.period")
    assert tab.script_problems() == []


async def test_markup_typed_by_users_is_inert_and_template_css_errors_are_shown_at_their_line(
    tab: Tab, console_url: str, founder: Account
) -> None:
    site = await api_site(console_url, founder, name=XSS)  # site names are free text
    template = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/templates",
        {"name": "Plain", "message": "Someone bought {{product}}"},
    )
    notification = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/notifications",
        {
            "name": "Recent buyers",
            "type": "recent_activity",
            "status": "active",
            "templateId": template["id"],
            "source": {"eventTypes": ["purchase"]},
        },
    )
    page = tab.page
    await log_in(page, founder, path="/app/sites")
    await expect(page.get_by_role("link", name=XSS)).to_be_visible()
    await assert_inert(page)
    await page.goto(f"/app/sites/{site['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
    await assert_inert(page)

    await page.goto(f"/app/sites/{site['id']}/notifications/{notification['id']}")  # names and messages: plain text
    await expect(page.locator(PREVIEW)).to_contain_text("Someone bought Trail Shoes")
    await page.get_by_label("Name", exact=True).fill(XSS)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-name")).to_contain_text("plain text only")
    await expect(page.get_by_label("Name", exact=True)).to_have_value(XSS)
    await assert_inert(page)
    await page.goto(f"/app/sites/{site['id']}/templates/{template['id']}")
    await page.get_by_label("Message").fill(XSS + " {{product}}")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-message")).to_contain_text("plain text only")
    await assert_inert(page)
    stored = await api_get(console_url, founder, f"/sites/{site['id']}/notifications/{notification['id']}")
    assert stored["name"] == "Recent buyers"

    await page.goto(f"/app/sites/{site['id']}/templates/{template['id']}")
    css = page.get_by_label("CSS for the popup")
    await css.fill('.popup { color: #123; }\n@import "https://cdn.example.com/x.css";')
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-css_content")).to_have_text("@import is not allowed (line 2)")
    await expect(css).to_have_attribute("aria-invalid", "true")
    await accessible(tab, "template with a CSS error")
    escape = ".popup { color: red; }\n</textarea></style>" + XSS
    await css.fill(escape)
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#error-css_content")).to_contain_text("may not contain '<'")
    await expect(css).to_have_value(escape)
    await assert_inert(page)
    stored = await api_get(console_url, founder, f"/sites/{site['id']}/templates/{template['id']}")
    assert stored["cssContent"] == ""
    await css.fill(".popup { border: 2px solid #0a7; }")
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    stored = await api_get(console_url, founder, f"/sites/{site['id']}/templates/{template['id']}")
    assert stored["cssContent"] == ".popup { border: 2px solid #0a7; }"
    await accessible(tab, "template")
    assert tab.script_problems() == []


async def _analytics_match(page: Page, console_url: str, founder: Account, site_id: str) -> None:
    """The totals, the table and the charts' data equal the API's analytics for the page's own query."""
    granularity = await page.get_by_label("Granularity").input_value()
    zone = await page.get_by_label("Time zone").input_value()
    await expect(page.locator("#totals-heading")).to_contain_text(f"({zone}, by {granularity})")
    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=RANGE_DAYS[granularity] - 1)
    api = await api_get(
        console_url,
        founder,
        f"/sites/{site_id}/analytics",
        start=start.isoformat(),
        granularity=granularity,
        timezone=zone,
    )
    for metric in ("impressions", "clicks", "conversions", "uniqueVisitors"):
        await expect(page.locator(f'#analytics-totals [data-metric="{metric}"]')).to_have_text(
            str(api["totals"][metric])
        )
    for item in api["notifications"]:
        row = page.locator(f'tr[data-notification="{item["notificationId"]}"]')
        for metric in ("impressions", "clicks", "conversions"):
            await expect(row.locator(f'[data-metric="{metric}"]')).to_have_text(str(item[metric]))
        await expect(row.locator('[data-metric="ctr"]')).to_have_text(f"{item['ctr'] * 100:.1f} %")
    counts = orjson.loads(await page.locator("#chart-counts").text_content() or "")
    assert counts["x"] == [int(dt.datetime.fromisoformat(point["bucket"]).timestamp()) for point in api["series"]]
    assert [series["values"] for series in counts["series"]] == [
        [point[metric] for point in api["series"]] for metric in ("impressions", "clicks", "conversions")
    ]
    ctr = orjson.loads(await page.locator("#chart-ctr").text_content() or "")
    assert ctr["series"][0]["values"] == [point["ctr"] for point in api["series"]]
    await expect(page.locator("figure[data-chart] .chart-plot")).to_have_count(2)


async def test_analytics_show_the_apis_numbers(tab: Tab, browser: Browser, console_url: str, founder: Account) -> None:
    site = await api_site(console_url, founder, settings={"timezone": "Europe/Berlin"})
    shown = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/notifications",
        {
            "name": "Recent buyers",
            "type": "recent_activity",
            "status": "active",
            "source": {"eventTypes": ["purchase"]},
        },
    )
    await collect(console_url, site, {"type": "page_view"}, {"type": "page_view"})
    await collect(
        console_url, site, *({"type": kind, "notificationId": shown["id"]} for kind in ("impression",) * 3 + ("click",))
    )
    await collect(console_url, site, {"type": "purchase", "details": {"product": "Trail Shoes"}})
    path = f"/app/sites/{site['id']}/analytics"
    for _ in range(40):  # the events are written in batches, shortly after they are accepted
        totals = (await api_get(console_url, founder, f"/sites/{site['id']}/analytics"))["totals"]
        if (totals["impressions"], totals["conversions"]) == (3, 1):
            break
        await asyncio.sleep(0.5)
    page = tab.page
    await log_in(page, founder, path=path)
    await expect(page.get_by_label("Time zone")).to_have_value("Europe/Berlin")
    await _analytics_match(page, console_url, founder, site["id"])
    await expect(page.locator('#analytics-totals [data-metric="impressions"]')).to_have_text("3")
    await expect(page.locator('#analytics-totals [data-metric="ctr"]')).to_have_text("33.3 %")
    await accessible(tab, "analytics")
    await shoot(tab, "analytics")
    await page.get_by_label("Granularity").select_option("hour")
    await expect(page.locator("#totals-heading")).to_contain_text("by hour")
    await page.get_by_label("Time zone").select_option("America/New_York")
    await expect(page.locator("#totals-heading")).to_contain_text("(America/New_York, by hour)")
    await page.wait_for_url("**timezone=America%2FNew_York**")
    await _analytics_match(page, console_url, founder, site["id"])
    await accessible(tab, "analytics by hour")
    assert tab.script_problems() == []

    narrow = await open_tab(browser, console_url, width=390)
    try:
        await log_in(narrow.page, founder, path=path)
        await expect(narrow.page.locator("figure[data-chart] .chart-plot")).to_have_count(2)
        await shoot(narrow, "analytics")
        for page_path in (
            "/app/sites",
            f"/app/sites/{site['id']}",
            f"/app/sites/{site['id']}/notifications/{shown['id']}",
            f"/app/sites/{site['id']}/templates/new",
            f"/app/sites/{site['id']}/live",
            path,
        ):
            await narrow.page.goto(page_path)
            await expect(narrow.page.get_by_role("heading", level=1)).to_be_visible()
            await assert_fits(narrow.page)
            await accessible(narrow, f"{page_path} at 390 px")
        assert narrow.script_problems() == []
    finally:
        await narrow.context.close()


async def test_collected_events_appear_in_the_live_feed(tab: Tab, console_url: str, founder: Account) -> None:
    site = await api_site(console_url, founder)
    page = tab.page
    await log_in(page, founder, path=f"/app/sites/{site['id']}/live")
    await expect(page.locator("#live-state")).to_have_text("Listening for new events.")
    await accessible(tab, "live feed")
    await collect(console_url, site, {"type": "purchase"})
    entry = page.locator("#live-events li").first
    await expect(entry).to_contain_text("purchase")
    await expect(entry).to_contain_text(f"{site['domain']}/p")
    await accessible(tab, "live feed with an event")
    assert tab.script_problems() == []


async def test_markup_in_collected_events_is_text_in_the_live_feed(
    tab: Tab, console_url: str, founder: Account
) -> None:
    """A product's markup is dropped when the event is stored (``sanitize.py``); the page a visitor was on is kept
    as sent, so its path can still spell a tag. The feed writes both as text: no element, and no CSP report of a
    refused inline handler (which markup parsed anywhere in the page, even by a DOMParser, would cause)."""
    site = await api_site(console_url, founder)
    page = tab.page
    await log_in(page, founder, path=f"/app/sites/{site['id']}/live")
    await expect(page.locator("#live-state")).to_have_text("Listening for new events.")
    title = await page.title()
    tag = "<img/src/onerror=document.title='pwned'>"
    product = "<img src=x id=injected onerror=\"document.title='pwned'\">Trail Shoes"
    await collect(
        console_url,
        site,
        {"type": "purchase", "url": f"https://{site['domain']}/{tag}", "details": {"product": product}},
    )
    entry = page.locator("#live-events li").first
    await expect(entry).to_contain_text(f"{site['domain']}/{tag}")
    shown = await entry.text_content() or ""
    assert "Trail Shoes" in shown.split(" · ")
    assert await page.locator("#live-events img").count() == 0
    await assert_inert(page)
    assert await page.title() == title
    await accessible(tab, "live feed with markup")
    assert tab.script_problems() == []


async def test_a_member_changes_only_the_sites_they_created(
    tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    """As through the API: a member reads every site of the org (``GET /sites``) and changes only the sites they
    created (``PATCH /sites/{id}`` answers 403 on the others), so only those offer them the editors; another org's
    site is missing."""
    member = await add_member(client, founder, "member")
    theirs = await api_site(console_url, founder, name="Founder's shop")
    mine = await api_site(console_url, member, name="Member's shop")
    elsewhere = await api_site(console_url, other_founder, name="Another org's shop")
    listed = await api_get(console_url, member, "/sites")
    assert {site["id"] for site in listed} == {theirs["id"], mine["id"]}

    page = tab.page
    await log_in(page, member, path="/app/sites")
    names = page.locator("tbody td:first-child a")
    await expect(names).to_have_count(len(listed))
    assert sorted(await names.all_text_contents()) == sorted(site["name"] for site in listed)
    await accessible(tab, "sites as a member")
    await page.get_by_role("link", name=mine["name"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(mine["name"])
    await page.get_by_role("link", name="New notification").click()
    await expect(page.locator(PREVIEW)).to_contain_text("bought Trail Shoes")
    await page.goto(f"/app/sites/{theirs['id']}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(theirs["name"])
    for action in ("New notification", "New template"):
        await expect(page.get_by_role("link", name=action)).to_have_count(0)
    await accessible(tab, "another member's site")
    assert tab.script_problems() == []

    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        patched = await http.patch(f"/api/v1/sites/{theirs['id']}", headers=member.headers, json={"name": "Mine now"})
        assert patched.status_code == 403, patched.text
        assert (await http.get(f"/api/v1/sites/{elsewhere['id']}", headers=member.headers)).status_code == 404
    async with console_client(console_url, member) as http:
        token = csrf_of((await http.get("/app/sites")).text)
        for path in (f"/app/sites/{theirs['id']}/notifications/new", f"/app/sites/{theirs['id']}/templates/new"):
            assert (await http.get(path)).status_code == 403, path
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 403, path
        assert (await http.get(f"/app/sites/{mine['id']}/templates/new")).status_code == 200
        for path in ("", "/analytics", "/live", "/notifications/new"):
            assert (await http.get(f"/app/sites/{elsewhere['id']}{path}")).status_code == 404, path
    assert (await api_get(console_url, founder, f"/sites/{theirs['id']}"))["name"] == theirs["name"]


async def test_readers_are_refused_changes_and_other_orgs_see_nothing(
    tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site = await api_site(console_url, founder)
    base = f"/app/sites/{site['id']}"
    notification = await api_post(
        console_url,
        founder,
        f"/sites/{site['id']}/notifications",
        {"name": "Buyers", "type": "recent_activity", "source": {"eventTypes": ["purchase"]}},
    )
    template = await api_post(
        console_url, founder, f"/sites/{site['id']}/templates", {"name": "Plain", "message": "Hi"}
    )
    editors = (
        f"{base}/notifications/new",
        f"{base}/notifications/{notification['id']}",
        f"{base}/templates/new",
        f"{base}/templates/{template['id']}",
    )
    changes = (*editors, f"{base}/notifications/preview", f"{base}/verify", "/app/sites")
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")

    await log_in(tab.page, analyst, path=base)
    await expect(tab.page.get_by_role("link", name="Buyers")).to_have_count(0)
    await expect(tab.page.get_by_text("Buyers")).to_be_visible()
    for action in ("New notification", "New template"):
        await expect(tab.page.get_by_role("link", name=action)).to_have_count(0)
    await expect(tab.page.get_by_role("button", name="Check the verification file")).to_have_count(0)
    await accessible(tab, "site as analyst")
    await tab.page.goto("/app/sites")
    await expect(tab.page.get_by_role("heading", name="Add a site")).to_have_count(0)
    assert tab.script_problems() == []

    async with console_client(console_url, analyst) as http:
        token = csrf_of((await http.get(base)).text)
        for path in (f"{base}/analytics", f"{base}/live"):
            assert (await http.get(path)).status_code == 200, path
        for path in editors:
            assert (await http.get(path)).status_code == 403, path
        for path in changes:
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 403, path

    async with console_client(console_url, investor) as http:
        account = await http.get("/app/account")
        assert 'href="/app/sites"' not in account.text
        token = csrf_of(account.text)
        for path in ("/app/sites", base, f"{base}/analytics", f"{base}/live", f"{base}/live/stream", *editors):
            assert (await http.get(path)).status_code == 403, path
        for path in changes:
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 403, path

    async with console_client(console_url, other_founder) as http:
        token = csrf_of((await http.get("/app/sites")).text)
        for path in (
            base,
            f"{base}/analytics",
            f"{base}/live",
            f"{base}/live/stream",
            *editors,
            f"/app/sites/{uuid.uuid4()}",
        ):
            assert (await http.get(path)).status_code == 404, path
        for path in changes[:-1]:
            assert (await http.post(path, data={"csrf_token": token, "name": "Mine"})).status_code == 404, path
    kept = await api_get(console_url, founder, f"/sites/{site['id']}/notifications/{notification['id']}")
    assert kept["name"] == "Buyers"
