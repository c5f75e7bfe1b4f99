"""The data pages in a real browser: jobs with live progress, generate, upload, export, datasets and downloads."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, Route, expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, drop_file, log_in, open_tab
from tests.console.screenshots import shot
from tests.datasets.conftest import wait_for_job
from tests.factories import Account, add_member
from tests.workers import Workers

pytestmark = pytest.mark.usefixtures("worker")


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
        job_id = await _generate(http, founder, 60_000)
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
    await tab.page.screenshot(path=shot("data-jobs-1440.png"), full_page=True)
    narrow = await open_tab(browser, console_url, width=390)
    await log_in(narrow.page, founder, path="/app/jobs")
    assert await narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await narrow.page.screenshot(path=shot("data-jobs-390.png"), full_page=True)
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


async def test_upload_by_drag_and_drop_follows_the_job_and_keeps_names_inert(
    tab: Tab, console_url: str, founder: Account
) -> None:
    hostile = '<img src=x onerror="document.title=1">'
    await log_in(tab.page, founder, path="/app/upload")
    await assert_accessible(tab.page, context="upload")
    await tab.page.get_by_label("Dataset name").fill(hostile)
    await drop_file(tab.page, "<i>bold.csv", "n,word\n" + "".join(f"{n},w{n}\n" for n in range(1, 30)))
    await expect(tab.page.locator("#chosen")).to_have_text("Chosen: <i>bold.csv")
    await tab.page.get_by_role("button", name="Upload").click()
    await tab.page.wait_for_url("**/app/jobs/*")
    await expect(tab.page.get_by_role("link", name="Browse the dataset")).to_be_visible(timeout=60_000)
    await expect(tab.page.locator(".facts")).to_contain_text("<i>bold.csv")
    await expect(tab.page.locator("progress[data-job-progress]")).to_have_js_property("value", 1)
    await assert_accessible(tab.page, context="upload job")
    await tab.page.get_by_role("link", name="Browse the dataset").click()
    await expect(tab.page.get_by_role("heading", level=1)).to_have_text(hostile)
    await expect(tab.page.locator("#rows tbody tr")).to_have_count(20)
    await tab.page.goto("/app/datasets")
    await expect(tab.page.get_by_role("link", name=hostile)).to_be_visible()
    assert await tab.page.locator("main img, main i").count() == 0
    assert await tab.page.title() != "1"
    assert tab.problems == []


async def test_upload_with_the_file_input_shows_the_rejects_report(
    tab: Tab, console_url: str, founder: Account, worker: Workers
) -> None:
    await log_in(tab.page, founder, path="/app/upload")
    await tab.page.get_by_label("File").set_input_files(
        files=[{"name": "ragged.csv", "mimeType": "text/csv", "buffer": b"n,word\n1,a\n2\n3,c\nx,y,z\n4,d\n"}]
    )
    await tab.page.get_by_role("button", name="Upload").click()
    await tab.page.wait_for_url("**/app/jobs/*")
    job_id = tab.page.url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        job = await wait_for_job(http, founder, job_id)
    await expect(tab.page.get_by_role("heading", name="Results")).to_be_visible()
    if job["result"].get("rejectsFileId"):
        link = tab.page.get_by_role("link", name="Download the rejects report")
        async with httpx.AsyncClient(timeout=30) as http:
            report = await http.get(await link.get_attribute("href") or "")
        assert report.status_code == 200 and b"row" in report.content
    refused = await tab.page.evaluate(
        """async () => {
            const body = new FormData();
            body.append('file', new File(['a\\n1\\n'], 'no-token.csv'));
            return (await fetch('/app/upload', {method: 'POST', body})).status;
        }"""
    )
    assert refused == 403  # no CSRF token
    assert [problem for problem in tab.problems if "403" not in problem] == []


async def test_a_job_page_catches_up_with_what_changed_before_its_stream_opened(
    tab: Tab, console_url: str, founder: Account
) -> None:
    """The page is read while its job runs but reaches the browser, and opens its stream, only once the job has
    finished (so the stream has nothing more to say): the page still shows the result."""
    await log_in(tab.page, founder, path="/app/jobs")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        job_id = await _generate(http, founder, 100_000)
        read_while_running: list[str] = []

        async def late_page(route: Route) -> None:
            response = await route.fetch()
            read_while_running.append(await response.text())
            await wait_for_job(http, founder, job_id)
            await route.fulfill(response=response)

        async def late_stream(route: Route) -> None:
            await wait_for_job(http, founder, job_id)
            await route.continue_()

        await tab.page.route(f"**/app/jobs/{job_id}", late_page, times=1)
        await tab.page.route("**/app/events?*", late_stream, times=1)
        await tab.page.goto(f"/app/jobs/{job_id}", timeout=120_000)
        assert "data-job-status>completed" not in read_while_running[0]
        await expect(tab.page.get_by_role("link", name="Browse the dataset")).to_be_visible()
    await expect(tab.page.locator("[data-job-status]")).to_have_text("completed")
    assert tab.problems == []


async def test_generate_with_a_preset_then_browse_and_export(
    tab: Tab, console_url: str, founder: Account, worker: Workers
) -> None:
    await log_in(tab.page, founder, path="/app/generate")
    await assert_accessible(tab.page, context="generate")
    await tab.page.get_by_label("Rows").fill("")
    await tab.page.get_by_role("button", name="Generate").click()
    await expect(tab.page.locator("#error-rows")).to_be_visible()
    await tab.page.get_by_label("Preset").select_option("users")
    assert "email" in await tab.page.get_by_label("Columns (JSON)").input_value()
    await tab.page.get_by_label("Dataset name").fill("People")
    await tab.page.get_by_label("Rows").fill("45")
    await tab.page.get_by_label("Seed").fill("3")
    await tab.page.get_by_role("button", name="Generate").click()
    await tab.page.wait_for_url("**/app/jobs/*")
    await expect(tab.page.get_by_role("link", name="Browse the dataset")).to_be_visible(timeout=60_000)
    await tab.page.get_by_role("link", name="Browse the dataset").click()
    await expect(tab.page.get_by_role("heading", name="People")).to_be_visible()
    dataset_id = tab.page.url.rsplit("/", 1)[1]
    await tab.page.get_by_role("link", name="Next").click()
    await expect(tab.page.locator(".pager")).to_contain_text("21\u201340 of 45")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        rows = (await http.get(f"/api/v1/datasets/{dataset_id}/rows?page=2&limit=20", headers=founder.headers)).json()[
            "data"
        ]
    first = tab.page.locator("#rows tbody tr").first.locator("td")
    assert await first.nth(0).inner_text() == str(rows[0]["_row"])
    await assert_accessible(tab.page, context="dataset")
    await tab.page.locator(".page-head").get_by_role("link", name="Export").click()
    await expect(tab.page.get_by_label("Dataset or file id")).to_have_value(dataset_id)
    await assert_accessible(tab.page, context="export")
    await tab.page.get_by_role("button", name="Export").click()
    await tab.page.wait_for_url("**/app/jobs/*")
    await expect(tab.page.locator("#download")).to_be_visible(timeout=60_000)
    async with httpx.AsyncClient(timeout=30) as http:
        exported = await http.get(await tab.page.locator("#download").get_attribute("href") or "")
    assert exported.status_code == 200 and exported.content.count(b"\n") >= 45
    await tab.page.goto("/app/datasets")
    await assert_accessible(tab.page, context="datasets")
    assert tab.script_problems() == []  # the empty form was refused on purpose


async def test_roles_and_tenants_on_the_data_pages(
    client: httpx.AsyncClient, console_url: str, founder: Account, other_founder: Account
) -> None:
    analyst, investor = await add_member(client, founder, "analyst"), await add_member(client, founder, "investor")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        job = await wait_for_job(http, founder, await _generate(http, founder, 5))
    dataset_id = job["result"]["datasetId"]
    async with console_client(console_url, analyst) as http:
        token = csrf_of((await http.get("/app/datasets")).text)
        assert (await http.get(f"/app/datasets/{dataset_id}")).status_code == 200
        assert (await http.get("/app/export")).status_code == 200
        for path in ("/app/generate", "/app/upload"):
            assert (await http.get(path)).status_code == 403
            assert (await http.post(path, data={"csrf_token": token})).status_code == 403
    async with console_client(console_url, investor) as http:
        for path in ("/app/datasets", f"/app/datasets/{dataset_id}", "/app/export", "/app/generate"):
            assert (await http.get(path)).status_code == 403, path
    async with console_client(console_url, other_founder) as http:
        assert (await http.get(f"/app/datasets/{dataset_id}")).status_code == 404
        token = csrf_of((await http.get("/app/export")).text)
        refused = await http.post(
            "/app/export", data={"csrf_token": token, "source_type": "dataset", "source_id": dataset_id}
        )
        assert refused.status_code == 404
