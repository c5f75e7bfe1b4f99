"""The social proof pages in a real browser: sites and the embed code, the notification editor with its preview drawn
by the real widget, template CSS, analytics against the API's numbers, the live event feed, roles and tenants."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, log_in, open_tab
from tests.factories import Account

SHOTS = Path(__file__).parents[2] / "docs" / "console"
PREVIEW = "#notification-preview div[data-northstar] .popup"  # the widget's popup, through its open shadow root


def real_problems(tab: Tab) -> list[str]:
    """Script errors and CSP violations; the browser also logs each form answered 422, which is expected."""
    return [problem for problem in tab.problems if "status of 422" not in problem]


async def accessible(tab: Tab, context: str) -> None:
    """axe on the page, once the page itself has shown no problem: axe's contrast check sets inline styles inside
    the widget's shadow root, which the CSP refuses (and reports); those reports are axe's, not the page's."""
    assert real_problems(tab) == [], context
    await assert_accessible(tab.page, context=context)
    tab.problems[:] = [problem for problem in tab.problems if not problem.startswith("Applying inline style")]


async def shoot(tab: Tab, page: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await tab.page.screenshot(path=SHOTS / f"socialproof-{page}-{tab.page.viewport_size['width']}.png", full_page=True)


async def api_site(console_url: str, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"name": "Trail shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com", **fields}
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        response = await http.post("/api/v1/sites", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


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
    assert real_problems(tab) == []

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
        assert real_problems(narrow) == []
    finally:
        await narrow.context.close()
    await page.goto("/app/sites")
    await expect(page.get_by_role("link", name="Trail shop")).to_be_visible()
    await accessible(tab, "sites")
    await shoot(tab, "sites")


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
    assert real_problems(tab) == []
