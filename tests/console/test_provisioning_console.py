"""The SCIM token in a browser: a founder makes it on the settings page (shown once), the identity provider
provisions with it, and turning provisioning off ends it; members see no such section; the page passes axe."""

from __future__ import annotations

import httpx
from playwright.async_api import expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, log_in
from tests.factories import Account, add_member


async def test_a_founder_makes_the_scim_token_and_turns_provisioning_off(
    tab: Tab, client: httpx.AsyncClient, founder: Account, console_url: str
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/settings")
    await expect(page.locator("#scim-status")).to_contain_text("provisioning is off")
    await page.get_by_role("button", name="Make a SCIM token").click()
    token = await page.get_by_label("SCIM token").input_value()
    await expect(page.locator("#scim-status")).to_contain_text("not used yet")
    await assert_accessible(page, context="organization settings with a SCIM token")
    async with httpx.AsyncClient(base_url=console_url) as provider:
        listed = await provider.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json()["totalResults"] == 0
        await page.goto("/app/settings")  # not a reload: that would send the form again
        await expect(page.locator("#scim-status")).to_contain_text("last used")
        await page.get_by_role("button", name="Turn provisioning off").click()
        await page.wait_for_url("**/app/settings")
        await expect(page.locator("#scim-status")).to_contain_text("provisioning is off")
        refused = await provider.get("/scim/v2/Users", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401
    assert tab.script_problems() == []

    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        shown = await http.get("/app/settings")
        assert shown.status_code == 200 and "Provisioning (SCIM)" not in shown.text
        assert (await http.post("/app/settings/scim-token", data={})).status_code in (400, 403)
