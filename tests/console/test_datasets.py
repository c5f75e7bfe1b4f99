"""The data pages in a real browser: jobs with live progress, generate, upload, export, datasets and downloads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in, open_tab
from tests.datasets.conftest import wait_for_job, worker  # noqa: F401 (the queue workers these pages' jobs need)
from tests.factories import Account, add_member

pytestmark = pytest.mark.usefixtures("worker")
SCREENSHOTS = Path(__file__).parents[2] / "docs" / "console"


async def _generate(http: httpx.AsyncClient, account: Account, rows: int, name: str = "Numbers") -> str:
    response = await http.post(
        "/api/v1/generate",
        headers=account.headers,
        json={"rows": rows, "seed": 7, "name": name, "columns": [{"name": "n", "type": "int"}]},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["data"]["jobId"]
    return job_id


async def test_jobs_follow_progress_live_and_match_the_api(
    tab: Tab, browser: Browser, console_url: str, founder: Account
) -> None:
    await log_in(tab.page, founder, path="/app/jobs")
    await expect(tab.page.get_by_role("heading", name="No jobs yet")).to_be_visible()
    await assert_accessible(tab.page, context="jobs, empty")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        job_id = await _generate(http, founder, 100_000)
        await tab.page.reload()
        row = tab.page.locator(f'tr[data-job-id="{job_id}"]')
        await expect(row).to_be_visible()
        badge, bar = row.locator("[data-job-status]"), row.locator("progress")
        await tab.page.evaluate(
            """([badge, bar]) => {
                window.seen = [];
                new MutationObserver(() => window.seen.push([badge.textContent, bar.value]))
                    .observe(badge, {childList: true, characterData: true, subtree: true});
            }""",
            [await badge.element_handle(), await bar.element_handle()],
        )
        finished = await wait_for_job(http, founder, job_id)
        assert finished["status"] == "completed", finished["errorMessage"]
        await expect(badge).to_have_text("completed")
        await expect(bar).to_have_js_property("value", 1)
        assert await tab.page.evaluate("window.seen.length") >= 1  # changed in place, without a reload
        listed = (await http.get("/api/v1/jobs", headers=founder.headers)).json()
    await tab.page.reload()
    cells = [await row.locator("td").nth(n).inner_text() for n in (1, 2, 4)]
    api_job = listed["data"][0]
    assert cells == [api_job["type"], api_job["status"], f"{api_job['rowsDone']} / {api_job['rowsTotal']}"]
    await assert_accessible(tab.page, context="jobs")
    await tab.page.screenshot(path=str(SCREENSHOTS / "data-jobs-1440.png"), full_page=True)
    narrow = await open_tab(browser, console_url, width=390)
    await log_in(narrow.page, founder, path="/app/jobs")
    assert await narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await narrow.page.screenshot(path=str(SCREENSHOTS / "data-jobs-390.png"), full_page=True)
    await narrow.context.close()
    await row.get_by_role("link").first.click()
    await expect(tab.page.get_by_role("heading", name="Generation job")).to_be_visible()
    await expect(tab.page.get_by_role("link", name="Browse the dataset")).to_be_visible()
    await assert_accessible(tab.page, context="job")
    assert tab.problems == []


async def test_status_filter_cancel_and_retry_like_the_api(tab: Tab, console_url: str, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        failed = await http.post(
            "/api/v1/upload", headers=founder.headers, files={"file": ("empty.csv", b"just,a,header\n")}
        )
        failed_id = failed.json()["data"]["jobId"]
        assert (await wait_for_job(http, founder, failed_id))["status"] == "failed"
        await log_in(tab.page, founder, path="/app/jobs?status=failed")
        row = tab.page.locator(f'tr[data-job-id="{failed_id}"]')
        await expect(row).to_contain_text("failed")
        await expect(tab.page.locator("tbody tr")).to_have_count(1)
        await row.get_by_role("button", name="Retry").click()
        await expect(tab.page).to_have_url(f"{console_url}/app/jobs?status=failed")
        retried = (await http.get(f"/api/v1/status/{failed_id}", headers=founder.headers)).json()["data"]
        assert retried["attempts"] >= 1 and retried["status"] in ("pending", "in-progress", "failed")
    assert tab.problems == []


async def test_roles_and_tenants_on_the_jobs_pages(
    client: httpx.AsyncClient, console_url: str, founder: Account, other_founder: Account
) -> None:
    analyst, investor = await add_member(client, founder, "analyst"), await add_member(client, founder, "investor")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        job_id = await _generate(http, founder, 10)
        await wait_for_job(http, founder, job_id)
    async with console_client(console_url, analyst) as http:
        page = await http.get("/app/jobs")
        assert page.status_code == 200 and job_id in page.text
        assert "Retry" not in page.text and "Cancel" not in page.text and "/app/generate" not in page.text
        token = csrf_of(page.text)
        refused = await http.post(f"/app/jobs/{job_id}/retry", data={"csrf_token": token})
        assert refused.status_code == 403
    async with console_client(console_url, investor) as http:
        assert (await http.get("/app/jobs")).status_code == 403
        assert (await http.get(f"/app/jobs/{job_id}")).status_code == 403
    async with console_client(console_url, other_founder) as http:
        assert (await http.get(f"/app/jobs/{job_id}")).status_code == 404
        assert (await http.get("/app/jobs/not-a-uuid")).status_code == 404
        token = csrf_of((await http.get("/app/jobs")).text)
        assert (await http.post(f"/app/jobs/{job_id}/cancel", data={"csrf_token": token})).status_code == 404


async def test_the_console_stream_needs_a_session(console_url: str) -> None:
    async with httpx.AsyncClient(base_url=console_url) as http:
        response = await http.get("/app/events")
        assert response.status_code == 307 and "/app/session/renew" in response.headers["location"]
