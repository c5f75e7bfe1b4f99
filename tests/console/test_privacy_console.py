"""The privacy centre: a visitor's export and erasure from the console, accessible, and only for those allowed."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx
from playwright.async_api import expect

from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, console_client, log_in
from tests.factories import Account, add_member, unique_email
from tests.socialproof.conftest import SiteFactory, make_site  # noqa: F401 - the fixture


async def test_founder_exports_and_erases_a_visitor(
    tab: Tab,
    client: httpx.AsyncClient,
    founder: Account,
    make_site: SiteFactory,  # noqa: F811
    run_jobs: Callable[[], Awaitable[None]],
) -> None:
    site = await make_site()
    customer = unique_email("console-customer")
    await site.record({"id": str(uuid.uuid4()), "type": "purchase", "visitorId": customer, "firstName": "Cora"})
    await log_in(tab.page, founder, path="/app/privacy")
    await expect(tab.page.get_by_role("heading", name="Privacy centre", exact=True)).to_be_visible()
    await assert_accessible(tab.page, context="privacy centre")

    await tab.page.locator("#field-kind").select_option("export")
    await tab.page.get_by_label("Visitor", exact=True).fill(customer)
    await tab.page.get_by_role("button", name="Submit request").click()
    await expect(tab.page.locator("#privacy-notice")).to_contain_text("being prepared")
    await run_jobs()
    await tab.page.goto("/app/privacy")
    await expect(tab.page.get_by_role("link", name="Download export")).to_be_visible()

    await tab.page.locator("#field-kind").select_option("erasure")
    await tab.page.get_by_label("Visitor", exact=True).fill(customer)
    await tab.page.get_by_role("button", name="Submit request").click()
    await expect(tab.page.locator("#privacy-notice")).to_contain_text("1 notification_events")
    await assert_accessible(tab.page, context="privacy centre after an erasure")
    assert site.stored() == []
    assert tab.problems == []

    # A blank subject is shown beside its field, and nothing is requested.
    await tab.page.get_by_label("Visitor", exact=True).fill(" ")
    await tab.page.get_by_role("button", name="Submit request").click()
    await expect(tab.page.locator("#error-subject")).to_be_visible()
    listed = (await client.get("/api/v1/privacy/requests", headers=founder.headers)).json()
    assert listed["meta"]["total"] == 2


async def test_members_do_not_see_the_privacy_centre(
    console_url: str, client: httpx.AsyncClient, founder: Account
) -> None:
    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        assert (await http.get("/app/privacy")).status_code == 403
