"""The queue page in a real browser (headless Chromium): an admin sees failed jobs with their errors and retries one."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.datasets.conftest import wait_for_job
from tests.factories import Account, add_member

pytestmark = pytest.mark.usefixtures("worker")


async def test_admin_sees_a_failed_job_and_retries_it(served: str, browser: Browser, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=30) as http:
        upload = await http.post(
            "/api/v1/upload", headers=founder.headers, files={"file": ("empty.csv", b"just,a,header\n")}
        )
        job_id = upload.json()["data"]["jobId"]
        failed = await wait_for_job(http, founder, job_id)
        assert failed["status"] == "failed"

        page = await browser.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        await page.goto(f"{served}/queue")
        await page.fill("#token", founder.access_token)
        await page.click("button")
        row = page.locator("#failed tr", has_text=job_id)
        await expect(row).to_contain_text("no data rows")
        await expect(row.locator("td").nth(3)).to_have_text("1")
        await row.get_by_role("button", name="Retry").click()
        await expect(row.locator("td").nth(3)).to_have_text("2", timeout=15_000)  # ran again, failed again
        assert problems == []


async def test_members_are_told_they_cannot_see_the_queue(served: str, browser: Browser, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        member = await add_member(http, founder, "member")
    page = await browser.new_page()
    await page.goto(f"{served}/queue")
    await page.fill("#token", member.access_token)
    await page.click("button")
    await expect(page.locator("#message")).to_contain_text("cannot read queue")
    await expect(page.locator("#overview")).to_be_hidden()
