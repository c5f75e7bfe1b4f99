"""Connecting HubSpot through its consent screen in a browser: "Connect HubSpot" on the providers page, the fake
HubSpot's consent page on loopback, back to the integration, which a real worker syncs; its consent on the detail
page; a cancelled consent said on the connect page; disconnecting revokes the grant at HubSpot. The pages pass axe."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, expect
from starlette.applications import Starlette
from starlette.routing import Mount

from northstar.app import create_app
from northstar.demo.loopback import free_port, serving
from northstar.settings import Settings
from tests.console.accessibility import assert_accessible
from tests.console.conftest import log_in, open_tab
from tests.factories import Account
from tests.fakes.hubspot import FakeHubSpot
from tests.integrations.conftest import wait_for_sync
from tests.workers import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_URL, Workers, reaching_loopback, with_oauth_apps

HUBSPOT_STREAMS = 2  # pipelines, deals: the end of a HubSpot sync's progress bar


@pytest.fixture(scope="module")
async def hubspot() -> AsyncIterator[FakeHubSpot]:
    """The fake HubSpot with one deal, where the workers were told HubSpot is (``tests.workers.OAUTH_URL``)."""
    fake = FakeHubSpot(client_id=OAUTH_CLIENT_ID, client_secret=OAUTH_CLIENT_SECRET)
    fake.add_deal(
        created=dt.datetime(2025, 5, 1, tzinfo=dt.UTC), dealname="Browser deal", amount="900", dealstage="closedwon"
    )
    async with serving(Starlette(routes=[Mount("/hubspot", app=fake.app)]), port=urlsplit(OAUTH_URL).port):
        yield fake


@pytest.fixture(scope="module")
async def site(settings: Settings) -> AsyncIterator[str]:
    """The console at its public address (HubSpot sends the browser back there), with the fakes' OAuth apps."""
    port = free_port()
    configured = with_oauth_apps(reaching_loopback(settings)).model_copy(
        update={"public_url": f"http://127.0.0.1:{port}"}
    )
    async with serving(create_app(configured), port=port) as url:
        yield url


async def test_connect_hubspot_through_its_consent_screen_and_sync(
    browser: Browser,
    site: str,
    hubspot: FakeHubSpot,
    client: httpx.AsyncClient,
    founder: Account,
    worker: Workers,
) -> None:
    tab = await open_tab(browser, site)
    page = tab.page
    try:
        await log_in(page, founder, path="/app/integrations/new")
        await assert_accessible(page, context="providers with Connect buttons")
        await page.get_by_role("button", name="Connect HubSpot").click()
        await page.wait_for_url(f"{OAUTH_URL}/hubspot/oauth/authorize?**")
        await expect(page.get_by_role("heading", name="Allow access to your HubSpot account?")).to_be_visible()
        await expect(page.get_by_text("crm.objects.deals.read")).to_be_visible()
        await page.get_by_role("button", name="Connect app").click()

        await page.wait_for_url(re.compile(r"/app/integrations/[0-9a-f-]{36}$"))
        integration_id = page.url.rsplit("/", 1)[1]
        await expect(page.get_by_role("heading", level=1)).to_have_text("HubSpot")
        bar = page.locator("#sync-progress progress")
        await expect(bar).to_have_attribute("value", str(HUBSPOT_STREAMS), timeout=90_000)
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "succeeded" and run["fetched"]["deals"] == 1, run
        consent = page.locator("section", has=page.get_by_role("heading", name="Consents")).locator("tbody tr")
        await expect(consent).to_have_count(1)
        await expect(consent).to_contain_text("Test User")
        await expect(consent).to_contain_text("crm.objects.deals.read")
        await expect(consent).to_contain_text(str(hubspot.hub_id))
        await expect(page.get_by_role("button", name="Reconnect HubSpot")).to_be_visible()
        await assert_accessible(page, context="detail with its consent")

        await page.goto("/app/integrations/new?provider=hubspot")
        await assert_accessible(page, context="connect page with both ways")
        await page.get_by_role("button", name="Connect HubSpot").click()
        await page.get_by_role("button", name="Cancel").click()
        await page.wait_for_url("**/app/integrations/oauth/hubspot/callback?**")
        await expect(page.locator(".form-error")).to_contain_text("HubSpot did not grant access")
        await assert_accessible(page, context="connect page after a cancelled consent")

        await page.goto(f"/app/integrations/{integration_id}")
        await page.get_by_role("button", name="Disconnect").click()
        await page.wait_for_url("**/app/integrations")
        await expect(page.get_by_text("No integrations yet")).to_be_visible()
        assert len(hubspot.revoked) == 1
        refused = "status of 400"  # the callback of the cancelled consent, answered on the connect page
        assert [problem for problem in tab.script_problems() if refused not in problem] == []
    finally:
        await tab.context.close()
