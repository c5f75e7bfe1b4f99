"""Goals set, changed and deleted from the console, who may change which, and the reporting settings: the currency
and the time zone every time in the console is shown in."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

import httpx
from playwright.async_api import expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, csrf_of, log_in
from tests.console.test_kpix import kpix  # noqa: F401  (the fixture: a billing history computed into metrics)
from tests.factories import Account, add_member
from tests.metrics.test_queries import Billing


async def _goals(client: httpx.AsyncClient, account: Account) -> list[dict[str, object]]:
    response = await client.get("/api/v1/dashboard/goals", headers=account.headers)
    assert response.status_code == 200, response.text
    goals: list[dict[str, object]] = response.json()["data"]
    return goals


async def test_a_goal_is_set_changed_and_deleted_in_the_metrics_own_unit(
    tab: Tab,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
) -> None:
    founder = kpix.account
    page = tab.page
    await log_in(page, founder, path="/app/goals")
    await expect(page.get_by_text("No goals yet")).to_be_visible()
    await assert_accessible(page, context="goals, empty")

    await page.locator("#field-metric").select_option("mrr")
    await page.get_by_label("Target").fill("twelve")
    await page.get_by_label("By").fill((kpix.today + dt.timedelta(days=90)).isoformat())
    await page.get_by_role("button", name="Set goal").click()
    await expect(page.locator("#error-target")).to_be_visible()
    await expect(page.get_by_label("Target")).to_have_value("twelve")  # what was typed stays

    await page.get_by_label("Target").fill("1,250.50")  # dollars: the API stores cents
    await page.get_by_label("By").fill((kpix.today - dt.timedelta(days=1)).isoformat())
    await page.get_by_role("button", name="Set goal").click()
    await expect(page.locator("#error-target_date")).to_contain_text("after the start")
    assert await _goals(client, founder) == []

    await page.get_by_label("By").fill((kpix.today + dt.timedelta(days=90)).isoformat())
    await page.get_by_role("button", name="Set goal").click()
    await page.wait_for_url("**/app/goals/*")
    [goal] = await _goals(client, founder)
    assert goal["target"] == {"amount": 125050, "currency": "USD", "exponent": 2}
    await expect(page.locator(".goal-detail")).to_contain_text("1,250.50 USD")
    await expect(page.get_by_label("Target")).to_have_value("1250.50")
    await assert_accessible(page, context="goal")

    await page.get_by_label("Target").fill("2000")
    await page.get_by_role("button", name="Save goal").click()
    await expect(page.get_by_role("status")).to_contain_text("The goal was saved")
    [goal] = await _goals(client, founder)
    assert goal["target"] == {"amount": 200000, "currency": "USD", "exponent": 2}

    await page.goto("/app/goals")
    await expect(page.locator(f'li[data-goal="{goal["id"]}"]')).to_contain_text("2,000.00 USD")
    await page.goto(f"/app/goals/{goal['id']}")
    await page.get_by_role("button", name="Delete goal").click()
    await page.wait_for_url("**/app/goals")
    await expect(page.get_by_text("No goals yet")).to_be_visible()
    assert await _goals(client, founder) == []
    assert tab.script_problems() == []


async def test_members_change_only_their_own_goals_and_investors_none(
    console_url: str,
    client: httpx.AsyncClient,
    kpix: Billing,  # noqa: F811
    other_founder: Account,
) -> None:
    founder = kpix.account
    by = (kpix.today + dt.timedelta(days=30)).isoformat()
    created = await client.post(
        "/api/v1/dashboard/goals", headers=founder.headers, json={"metric": "customers", "target": 10, "targetDate": by}
    )
    assert created.status_code == 201, created.text
    founders_goal = created.json()["data"]["id"]
    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        shown = await http.get(f"/app/goals/{founders_goal}")
        assert shown.status_code == 200
        assert "Save goal" not in shown.text and "Delete goal" not in shown.text
        token = csrf_of(shown.text)
        changed = await http.post(f"/app/goals/{founders_goal}", data={"target": "1", "csrf_token": token})
        assert changed.status_code == 403 and 'class="form-error" role="alert"' in changed.text
        deleted = await http.post(f"/app/goals/{founders_goal}/delete", data={"csrf_token": token})
        assert deleted.status_code == 403
        own = await http.post(
            "/app/goals", data={"metric": "customers", "target": "12", "target_date": by, "csrf_token": token}
        )
        assert own.status_code == 303, own.text
        mine = own.headers["location"]
        assert (await http.post(mine, data={"target": "14", "csrf_token": token})).status_code == 303
    targets = {goal["id"]: goal["target"] for goal in await _goals(client, founder)}
    assert targets == {founders_goal: 10, mine.rsplit("/", 1)[1]: 14}

    investor = await add_member(client, founder, "investor")
    async with console_client(console_url, investor) as http:
        listed = await http.get("/app/goals")
        assert listed.status_code == 200 and "Set a goal" not in listed.text
        refused = await http.post(
            "/app/goals",
            data={"metric": "mrr", "target": "1", "target_date": by, "csrf_token": csrf_of(listed.text)},
        )
        assert refused.status_code == 403
    async with console_client(console_url, other_founder) as http:
        for path in (f"/app/goals/{founders_goal}", f"/app/goals/{uuid.uuid4()}"):
            assert (await http.get(path)).status_code == 404, path
        token = csrf_of((await http.get("/app/goals")).text)
        assert (await http.post(f"/app/goals/{founders_goal}/delete", data={"csrf_token": token})).status_code == 404
    assert founders_goal in {goal["id"] for goal in await _goals(client, founder)}


async def test_the_reporting_time_zone_is_the_one_times_are_shown_in(
    tab: Tab, client: httpx.AsyncClient, founder: Account
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/settings/reporting")
    await assert_accessible(page, context="reporting settings")
    await page.get_by_label("Reporting currency").fill("eur")
    await page.get_by_label("Time zone").select_option("Asia/Tokyo")
    await page.get_by_label("Deduct discounts from MRR").uncheck()
    await page.get_by_label("MRR", exact=True).check()
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_role("status")).to_contain_text("Saved")
    stored = (await client.get("/api/v1/metrics/settings", headers=founder.headers)).json()["data"]
    assert stored == {
        "reportingCurrency": "EUR",
        "timezone": "Asia/Tokyo",
        "deductDiscounts": False,
        "investorMetrics": ["mrr"],
    }

    await page.goto("/app/audit")
    first = page.locator("table time").first
    instant = dt.datetime.fromisoformat(await first.get_attribute("datetime") or "")
    tokyo = instant.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    await expect(first).to_have_text(tokyo.strftime("%Y-%m-%d %H:%M:%S JST"))
    await page.goto("/app/settings")
    await expect(page.get_by_text("Times are shown in Asia/Tokyo")).to_be_visible()
    assert tab.problems == []


async def test_reporting_settings_refuse_what_is_not_a_zone_or_currency_and_readers_only_read(
    console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    async with console_client(console_url, founder) as http:
        token = csrf_of((await http.get("/app/settings/reporting")).text)
        wrong = await http.post(
            "/app/settings/reporting",
            data={"reporting_currency": "dollars", "timezone": "Mars/Olympus", "csrf_token": token},
        )
    assert wrong.status_code == 422
    assert 'id="error-timezone"' in wrong.text and "not an IANA time zone" in wrong.text
    assert 'id="error-reporting_currency"' in wrong.text
    stored = (await client.get("/api/v1/metrics/settings", headers=founder.headers)).json()["data"]
    assert (stored["reportingCurrency"], stored["timezone"]) == ("USD", "UTC")

    analyst = await add_member(client, founder, "analyst")
    async with console_client(console_url, analyst) as http:
        shown = await http.get("/app/settings/reporting")
        assert shown.status_code == 200 and "Save settings" not in shown.text and "UTC" in shown.text
        refused = await http.post(
            "/app/settings/reporting",
            data={"reporting_currency": "EUR", "timezone": "UTC", "csrf_token": csrf_of(shown.text)},
        )
        assert refused.status_code == 403
    investor = await add_member(client, founder, "investor")
    async with console_client(console_url, investor) as http:
        assert (await http.get("/app/settings/reporting")).status_code == 403
