"""The archive pages in headless Chromium: the archived months with the org's share, a restore of a period asked for
on the page and run by the worker, its restored events; who may restore; axe on each page."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from northstar.core.db import Database
from northstar.core.storage import ObjectStore
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, log_in, open_tab
from tests.factories import Account, add_member
from tests.socialproof.archiving import Month, Run, archived_month, month, store, work, worker_database

__all__ = ["month", "store", "work", "worker_database"]  # fixtures


async def test_archives_are_listed_restored_and_read(
    tab: Tab,
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
    work: Run,
) -> None:
    archived = await archived_month(client, database, month, store, founder, other_founder)
    page = tab.page
    await log_in(page, founder, path="/app/archives")
    row = page.locator(f'tr[data-archive="{archived.archive_id}"]')
    await expect(row).to_contain_text("verified")
    await expect(row).to_contain_text("9")
    await assert_accessible(page, context="archives")

    await row.get_by_role("link").click()
    await page.wait_for_url(f"**/app/archives/{archived.archive_id}")
    await expect(page.locator("#archive-rows")).to_have_text("9")
    await assert_accessible(page, context="an archive")
    await page.get_by_label("From day").fill(f"{month.month:%Y-%m}-05")
    await page.get_by_label("To day").fill(f"{month.month:%Y-%m}-01")
    await page.get_by_role("button", name="Restore").click()
    await expect(page.locator(".form-error")).to_contain_text("start must be before end")
    await assert_accessible(page, context="an archive, a refused restore")
    await page.get_by_label("From day").fill(f"{month.month:%Y-%m}-01")
    await page.get_by_label("To day").fill(f"{month.month:%Y-%m}-02")
    await page.get_by_label("Keep for days").fill("3")
    await page.get_by_role("button", name="Restore").click()
    await page.wait_for_url(f"**/app/archives/{archived.archive_id}")
    await expect(page.locator("tr[data-restore]")).to_contain_text("pending")
    await work()
    await page.reload()
    restore_row = page.locator("tr[data-restore]")
    await expect(restore_row).to_contain_text("ready")
    await expect(restore_row).to_contain_text("4")  # the founder's events of days 1 and 2
    await restore_row.get_by_role("link").click()
    await expect(page.locator("#restore-status")).to_have_text("ready")
    await expect(page.locator("tbody tr")).to_have_count(4)
    await expect(page.get_by_text('Said "hi", twice').first).to_be_visible()
    await assert_accessible(page, context="restored events")
    assert tab.script_problems() == []


async def test_analysts_see_archives_but_cannot_restore(
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
) -> None:
    archived = await archived_month(client, database, month, store, founder, other_founder)
    analyst = await add_member(client, founder, "analyst")
    tab = await open_tab(browser, console_url)
    try:
        await log_in(tab.page, analyst, path=f"/app/archives/{archived.archive_id}")
        await expect(tab.page.locator("#archive-status")).to_have_text("verified")
        await expect(tab.page.get_by_role("button", name="Restore")).to_have_count(0)
        investor = await add_member(client, founder, "investor")
        other = await open_tab(browser, console_url)
        await log_in(other.page, investor, path="/app/account")
        response = await other.page.goto("/app/archives")
        assert response is not None and response.status == 403
        await other.context.close()
    finally:
        await tab.context.close()
