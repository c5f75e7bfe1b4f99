"""The coach's page in headless Chromium: the month told from the facts, the reasons behind each step, questions
answered in place, the month picker, the coach's voice, and who may see and change what."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in
from tests.console.test_kpix import kpix  # noqa: F401  (the fixture: a billing history computed into metrics)
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing

XSS = "<img src=x onerror=\"document.title='pwned'\">why did MRR drop?"


async def test_the_month_is_told_its_steps_explained_and_questions_answered(
    tab: Tab,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
) -> None:
    page = tab.page
    await log_in(page, kpix.account, path="/app/coach")
    api = (await client.get("/api/v1/coach/insights", headers=kpix.account.headers)).json()["data"]
    narrative = page.locator("#narrative")
    await expect(narrative).to_contain_text("MRR fell by 40.00 USD (15.1 %) to 225.00 USD")
    await expect(narrative.locator("li")).to_have_count(len(api["recommendations"][:3]))
    step = page.locator('li[data-rule="shrinking_month"]')
    await step.get_by_text("Why the coach says so").click()
    await expect(step.locator("details li").first).to_contain_text("MRR went from 265.00 USD to 225.00 USD")
    await expect(page.locator("#generator")).to_contain_text("built-in writer")
    await assert_accessible(page, context="coach")

    await page.get_by_label("Question").fill("Why did MRR drop this month?")
    await page.get_by_role("button", name="Ask").click()
    answer = page.locator('#answer [data-intent="why_changed"]')
    await expect(answer).to_contain_text("cus_c churned")
    await expect(answer.locator("[data-fact]")).to_have_count(4)  # the metric, the month's movements, two customers
    await page.get_by_label("Question").fill(XSS)
    await page.get_by_role("button", name="Ask").click()
    await expect(page.locator("#answer strong")).to_have_text(XSS)
    assert await page.title() != "pwned" and await page.locator("#answer img").count() == 0
    await assert_accessible(page, context="coach answer")

    await page.locator("#field-month").select_option(kpix.month(-1).strftime("%Y-%m"))
    await page.get_by_role("button", name="Show").click()
    await expect(narrative).to_contain_text("MRR grew by 85.00 USD (47.2 %) to 265.00 USD")

    await page.locator("#field-tone").select_option("neutral")
    await page.locator("#field-length").select_option("short")
    await page.get_by_role("button", name="Save voice").click()
    await page.wait_for_url("**/app/coach")
    await expect(narrative.locator("p").first).to_have_text(
        f"MRR fell by 40.00 USD (15.1 %) to 225.00 USD in {kpix.month(0):%B %Y}. "
        "You have 5 customers, as many as before."
    )
    settings = (await client.get("/api/v1/coach/settings", headers=kpix.account.headers)).json()["data"]
    assert settings == {"tone": "neutral", "length": "short"}
    assert tab.problems == []


async def test_a_short_question_is_said_in_place(console_url: str, founder: Account) -> None:
    async with console_client(console_url, founder) as http:
        token = csrf_of((await http.get("/app/coach")).text)
        refused = await http.post("/app/coach/ask", data={"question": "?", "csrf_token": token})
    assert refused.status_code == 422 and 'class="form-error" role="alert"' in refused.text


async def test_who_may_see_and_change_the_coach(
    console_url: str,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
    other_founder: Account,
) -> None:
    analyst = await add_member(client, kpix.account, "analyst")
    async with console_client(console_url, analyst) as http:
        shown = await http.get("/app/coach")
        assert shown.status_code == 200 and "Save voice" not in shown.text and "MRR fell by 40.00 USD" in shown.text
        changed = await http.post(
            "/app/coach/voice", data={"tone": "neutral", "length": "short", "csrf_token": csrf_of(shown.text)}
        )
        assert changed.status_code == 403
    investor = await add_member(client, kpix.account, "investor")
    async with console_client(console_url, investor) as http:
        assert (await http.get("/app/coach")).status_code == 403
        token = csrf_of((await http.get("/app/")).text)
        assert (await http.post("/app/coach/ask", data={"question": "why?", "csrf_token": token})).status_code == 403
    async with console_client(console_url, other_founder) as http:
        theirs = await http.get("/app/coach")
        assert "No MRR for" in theirs.text and "cus_c" not in theirs.text
