"""The alerts pages in headless Chromium: rules added, turned off and deleted with values in the metric's unit; your
notification settings; the inbox, whose unread count beside the navigation link follows new messages live; and who
may see what."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from northstar.alerts.service import inbox, unsubscribe
from northstar.core.db import Database
from northstar.settings import Settings
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in, open_tab
from tests.factories import Account, add_member


async def _rules(client: httpx.AsyncClient, account: Account) -> list[dict[str, object]]:
    found: list[dict[str, object]] = (await client.get("/api/v1/notifications/rules", headers=account.headers)).json()[
        "data"
    ]
    return found


async def test_rules_are_added_in_the_metrics_unit_turned_off_and_deleted(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/alerts")
    await expect(page.get_by_text("No rules yet")).to_be_visible()
    await assert_accessible(page, context="alert rules, empty")
    await page.get_by_label("Name").fill("MRR floor")
    await page.get_by_role("button", name="Add rule").click()  # a threshold without its value
    await expect(page.locator(".form-error, .error").first).to_be_visible()
    await page.get_by_label("Value", exact=True).fill("300.00")
    await page.get_by_role("button", name="Add rule").click()
    await page.wait_for_url("**/app/alerts")
    [rule] = await _rules(client, founder)
    assert rule["condition"] == {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 30000.0}
    assert rule["cooldownMinutes"] == 24 * 60 and rule["enabled"] is True
    row = page.locator(f'tr[data-rule="{rule["id"]}"]')
    await row.get_by_role("button", name="Turn off").click()
    await expect(row).to_contain_text("off")
    assert (await _rules(client, founder))[0]["enabled"] is False
    await assert_accessible(page, context="alert rules")
    await row.get_by_role("button", name="Delete").click()
    await expect(page.get_by_text("No rules yet")).to_be_visible()
    assert await _rules(client, founder) == []
    await page.goto("/app/alerts/history")
    await expect(page.get_by_text("Nothing sent yet")).to_be_visible()
    await assert_accessible(page, context="delivery log")
    assert tab.script_problems() == []


async def test_notification_settings_are_saved_and_checked(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/notification-preferences")
    await assert_accessible(page, context="notification settings")
    await page.get_by_label("A metric crosses a value: E-mail").uncheck()
    await page.get_by_label("Quiet from").fill("22:00")
    await page.get_by_label("Quiet until").fill("07:00")
    await page.get_by_label("Collect my e-mails into one digest a day").check()
    await page.get_by_role("button", name="Save notification settings").click()
    await expect(page.get_by_role("status")).to_contain_text("saved")
    found = (await client.get("/api/v1/notifications/preferences", headers=founder.headers)).json()["data"]
    assert found["channels"]["threshold"] == ["in_app"]
    assert found["quietHours"] == {"start": "22:00:00", "end": "07:00:00"} and found["digest"] is True
    await page.get_by_label("Your time zone (optional)").fill("Mars/Olympus")
    await page.get_by_role("button", name="Save notification settings").click()
    await expect(page.locator("#error-time_zone")).to_be_visible()
    assert tab.script_problems() == []


async def test_the_inbox_badge_follows_new_messages_live(
    tab: Tab, client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/account")
    badge = page.locator('a[href="/app/inbox"] [data-badge]')
    await expect(badge).to_be_hidden()
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await inbox.notify(
            session,
            org_id=founder.org_id,
            user_id=founder.user_id,
            kind="report",
            title="Report ready: <b>May</b>",
            body="The report is ready to read.",
            url="/app/reports",
        )
    await expect(badge).to_have_text("1 unread")  # pushed over the event stream, no reload
    await page.get_by_role("link", name="Inbox").click()
    message = page.locator("li.unread")
    await expect(message).to_contain_text("Report ready: <b>May</b>")  # text, not markup
    await assert_accessible(page, context="inbox")
    await message.get_by_role("button", name="Mark read").click()
    await expect(page.locator("li.unread")).to_have_count(0)
    await expect(badge).to_be_hidden()
    unread = (await client.get("/api/v1/notifications/inbox/unread", headers=founder.headers)).json()["data"]
    assert unread == {"unread": 0}
    assert tab.problems == []


async def test_who_sees_the_alert_pages(
    browser: Browser, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    created = await client.post(
        "/api/v1/notifications/rules",
        headers=founder.headers,
        json={"name": "Reports", "condition": {"kind": "report"}},
    )
    rule_id = created.json()["data"]["id"]
    analyst = await add_member(client, founder, "analyst")
    async with console_client(console_url, analyst) as http:
        shown = await http.get("/app/alerts")
        assert shown.status_code == 200 and "Add rule" not in shown.text and "Reports" in shown.text
        token = csrf_of(shown.text)
        assert (await http.post(f"/app/alerts/{rule_id}/delete", data={"csrf_token": token})).status_code == 403
    investor = await add_member(client, founder, "investor")
    tab = await open_tab(browser, console_url)
    try:
        await log_in(tab.page, investor, path="/app/inbox")
        nav = tab.page.get_by_role("navigation", name="Console")
        await expect(nav.get_by_role("link", name="Inbox")).to_be_visible()
        await expect(nav.get_by_role("link", name="Alerts")).to_have_count(0)
        refused = await tab.page.goto("/app/alerts")
        assert refused is not None and refused.status == 403
    finally:
        await tab.context.close()
    async with console_client(console_url, other_founder) as http:
        token = csrf_of((await http.get("/app/alerts")).text)
        for action in ("toggle", "delete"):
            answer = await http.post(f"/app/alerts/{rule_id}/{action}", data={"csrf_token": token})
            assert answer.status_code == 404, action
    assert [rule["id"] for rule in await _rules(client, founder)] == [rule_id]


async def test_an_emails_unsubscribe_link_asks_before_it_stops_them(
    tab: Tab, client: httpx.AsyncClient, founder: Account, settings: Settings
) -> None:
    token = unsubscribe.token_for(settings, unsubscribe.Subscription(founder.org_id, founder.user_id, "threshold"))
    page = tab.page
    await page.goto(f"/app/unsubscribe?token={token}")  # no session: the signed token is the authority
    await expect(page.get_by_role("heading", level=1)).to_have_text("Stop these e-mails?")
    await expect(page.get_by_text(f"{founder.email} will no longer get threshold alerts")).to_be_visible()
    await assert_accessible(page, context="unsubscribe")
    found = (await client.get("/api/v1/notifications/preferences", headers=founder.headers)).json()["data"]
    assert "email" in found["channels"]["threshold"]  # opening the page changed nothing
    await page.get_by_role("button", name="Unsubscribe").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    found = (await client.get("/api/v1/notifications/preferences", headers=founder.headers)).json()["data"]
    assert "email" not in found["channels"]["threshold"] and "email" in found["channels"]["change"]
    forged = await page.goto(f"/app/unsubscribe?token={token[:-2]}xx")
    assert forged is not None and forged.status == 404
    assert [problem for problem in tab.problems if "404" not in problem] == []
