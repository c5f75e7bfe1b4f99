"""The reports pages in headless Chromium: a report asked for and followed until the worker has made it, read with
its video and subtitles, shared by a link that works without an account and stops when revoked; investors see the
investor updates only."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, log_in, open_tab
from tests.console.test_kpix import kpix  # noqa: F401  (the fixture: a billing history computed into metrics)
from tests.factories import add_member
from tests.metrics.test_queries import Billing
from tests.reports.test_reports import finished, request_report
from tests.workers import Workers


async def test_a_report_is_made_read_with_its_video_and_shared(
    tab: Tab,
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
    worker: Workers,
) -> None:
    page = tab.page
    for kind in ("weekly_digest", "monthly_report"):  # the workers' schedule run would make some of its own
        off = await client.patch(
            f"/api/v1/report-schedules/{kind}", headers=kpix.account.headers, json={"enabled": False}
        )
        assert off.status_code == 200, off.text
    await log_in(page, kpix.account, path="/app/reports")
    await expect(page.get_by_text("No reports yet")).to_be_visible()
    await assert_accessible(page, context="reports, empty")
    await page.get_by_label("Any day of its week or month (optional)").fill(kpix.month(-1).isoformat())
    await page.get_by_label("Video (MP4, with subtitles)").check()
    await page.get_by_role("button", name="Make report").click()
    await page.wait_for_url("**/app/reports/*")
    report_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#report-status")).to_contain_text("completed", timeout=120_000)
    await page.reload()
    await expect(page.locator("#narrative")).to_contain_text("MRR grew by 85.00 USD (47.2 %) to 265.00 USD")
    video = page.locator("video")
    await expect(video).to_have_count(1)
    await page.wait_for_function("document.querySelector('video').readyState >= 1", timeout=30_000)
    duration = await video.evaluate("element => element.duration")
    assert 30 <= duration <= 90
    cues = await page.evaluate(
        "() => new Promise(done => { const track = document.querySelector('video').textTracks[0];"
        " track.mode = 'hidden'; const wait = () => track.cues && track.cues.length ? done(track.cues.length)"
        " : setTimeout(wait, 100); wait(); })"
    )
    assert cues >= 3
    await assert_accessible(page, context="report")

    await page.get_by_label("For", exact=True).fill("Seed investors")
    await page.get_by_role("button", name="Create share link").click()
    shown_url = await page.locator("#share-url").input_value()
    url = f"{console_url}/shared/{shown_url.split('/shared/', 1)[1]}"  # the configured public URL, here on loopback
    outsider = await open_tab(browser, console_url)
    try:
        shown = await outsider.page.goto(url)
        assert shown is not None and shown.status == 200
        await expect(outsider.page.get_by_role("heading", level=1)).to_have_text(f"{kpix.month(-1):%B %Y} in review")
        await expect(outsider.page.get_by_role("link", name="Download the PDF")).to_be_visible()
    finally:
        await outsider.context.close()
    await page.goto(f"/app/reports/{report_id}")
    row = page.locator("tr[data-share]")
    await expect(row).to_contain_text("Seed investors")
    await expect(row).to_contain_text("1")  # one view
    await row.get_by_role("button", name="Revoke").click()
    await expect(page.locator("tr[data-share]")).to_contain_text("revoked")
    async with httpx.AsyncClient() as anyone:
        assert (await anyone.get(url)).status_code == 404
    assert tab.problems == []


async def test_investors_see_investor_updates_only(
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
    worker: Workers,
) -> None:
    founder = kpix.account
    monthly = await request_report(client, founder, kind="monthly_report")
    update = await finished(client, founder, (await request_report(client, founder, kind="investor_update"))["id"])
    investor = await add_member(client, founder, "investor")
    tab = await open_tab(browser, console_url)
    try:
        await log_in(tab.page, investor, path="/app/reports")
        rows = tab.page.locator("tr[data-report]")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text(update["title"])
        await expect(tab.page.get_by_role("button", name="Make report")).to_have_count(0)
        await expect(tab.page.get_by_role("button", name="Save schedule")).to_have_count(0)
        await assert_accessible(tab.page, context="investor reports")
        missing = await tab.page.goto(f"/app/reports/{monthly['id']}")
        assert missing is not None and missing.status == 404
        assert [problem for problem in tab.problems if "404" not in problem] == []
    finally:
        await tab.context.close()
