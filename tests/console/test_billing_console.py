"""The plan and usage page in a real browser: the usage bar, choosing a plan, what readers and other orgs get."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import expect

from tests.console.conftest import Tab, accessible, console_client, csrf_of, log_in
from tests.console.test_socialproof import api_site, collect
from tests.factories import Account, add_member


async def test_plan_and_usage_page(tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account) -> None:
    site = await api_site(console_url, founder)
    await collect(console_url, site, {"type": "page_view"})
    page = tab.page
    await log_in(page, founder, path=f"/app/sites/{site['id']}")
    await page.get_by_role("link", name="Plan and usage").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Plan and usage")
    await expect(page.locator("#current-plan")).to_have_text("No plan")
    await accessible(tab, "billing, no plan")

    await page.get_by_role("button", name="Choose the Starter plan").click()
    await page.wait_for_url(f"**/app/sites/{site['id']}/billing")
    await expect(page.locator("#current-plan")).to_have_text("Starter")
    bar = page.get_by_label("Unique visitors", exact=False)
    await expect(bar).to_have_attribute("max", "10000")
    async with httpx.AsyncClient(base_url=console_url, timeout=30) as http:
        api = (await http.get(f"/api/v1/sites/{site['id']}/subscription", headers=founder.headers)).json()["data"]
    assert api["plan"]["key"] == "starter"
    await expect(bar).to_have_attribute("value", str(api["usage"]["visitors"]))
    await expect(page.get_by_role("button", name="Choose the Starter plan")).to_have_count(0)
    await accessible(tab, "billing, starter")

    await page.get_by_role("button", name="Choose the Free plan").click()
    await page.wait_for_url(f"**/app/sites/{site['id']}/billing")
    await expect(page.locator("#current-plan")).to_have_text("Free")
    assert tab.script_problems() == []


async def test_readers_see_usage_without_choices_and_other_orgs_see_nothing(
    tab: Tab, console_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site = await api_site(console_url, founder)
    member = await add_member(client, founder, "member")
    await log_in(tab.page, member, path=f"/app/sites/{site['id']}/billing")
    await expect(tab.page.locator("#current-plan")).to_have_text("No plan")
    await expect(tab.page.get_by_role("button", name="Choose the Pro plan")).to_have_count(0)
    await accessible(tab, "billing as a member")
    async with console_client(console_url, member) as http:
        token = csrf_of((await http.get(f"/app/sites/{site['id']}/billing")).text)
        refused = await http.post(f"/app/sites/{site['id']}/billing", data={"csrf_token": token, "plan": "pro"})
        assert refused.status_code == 403
    async with console_client(console_url, other_founder) as http:
        assert (await http.get(f"/app/sites/{site['id']}/billing")).status_code == 404
        assert (await http.get(f"/app/sites/{uuid.uuid4()}/billing")).status_code == 404
