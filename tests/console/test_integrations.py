"""The integration pages in a browser: connect Stripe (the fake Stripe on loopback) with a field error shown inline,
watch a sync's progress bar reach the end with a real worker, test, pause and resume; what each role may see and
post; another org's integration is a 404; names are shown as text."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from northstar.demo.stripe_api import FakeStripe
from tests.console.accessibility import assert_accessible
from tests.console.conftest import (
    Tab,
    console_client,
    csrf_of,
    log_in,
    open_tab,
    set_fx_rates,
    wait_for_sync_end,
)
from tests.console.screenshots import shot
from tests.factories import Account, add_member
from tests.integrations.conftest import wait_for_sync
from tests.workers import Workers

XSS_NAME = '<img src=x id="xss-probe"><script>window.pwned=1</script>'


async def _connected(client: httpx.AsyncClient, founder: Account, url: str, fake: FakeStripe) -> dict[str, Any]:
    """An integration made through the API, as another page's tests would find it."""
    response = await client.post(
        "/api/v1/integrations",
        headers=founder.headers,
        json={
            "provider": "stripe",
            "name": XSS_NAME,
            "credentials": {"apiKey": fake.api_key},
            "config": {"baseUrl": url},
            "test": False,
        },
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def test_connect_sync_pause_and_resume_stripe(
    tab: Tab,
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    founder: Account,
    worker: Workers,
    stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = stripe
    await set_fx_rates(client, founder, fake)
    page = tab.page
    await log_in(page, founder, path="/app/integrations")
    await expect(page.get_by_role("link", name="Integrations")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_text("Connect Stripe to see MRR")).to_be_visible()
    await assert_accessible(page, context="empty list")

    await page.get_by_role("link", name="Connect Stripe").click()
    await expect(page.get_by_role("heading", name="Connect Stripe")).to_be_visible()
    await assert_accessible(page, context="connect form")
    assert await page.get_by_label("API key").get_attribute("type") == "password"
    await page.get_by_label("Name").fill(XSS_NAME)
    await page.get_by_label("Base URL").fill(url)
    await page.get_by_label("Requests per second").fill("4")
    await page.get_by_label("Webhook secret").fill("whsec_typed")
    await page.get_by_role("button", name="Connect").click()
    await expect(page.locator("#error-credential_api_key")).to_have_text("required")
    await expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    assert await page.get_by_label("Webhook secret").input_value() == ""  # secrets are never sent back
    assert "whsec_typed" not in await page.content()
    assert await page.get_by_label("Base URL").input_value() == url
    await assert_accessible(page, context="connect form with errors")

    await page.get_by_label("API key").fill(fake.api_key)
    await page.get_by_role("button", name="Connect").click()
    await page.wait_for_url(re.compile(r"/app/integrations/[0-9a-f-]{36}$"))
    integration_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    await wait_for_sync_end(page)
    await assert_accessible(page, context="detail")

    await page.get_by_role("button", name="Sync now").click()
    await page.wait_for_load_state()
    await wait_for_sync_end(page)
    run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    await expect(page.locator("#sync-progress")).to_contain_text(f"succeeded, {sum(run['fetched'].values())} rows")
    runs = await client.get(f"/api/v1/integrations/{integration_id}/runs", headers=founder.headers)
    assert [item["trigger"] for item in runs.json()["data"]] == ["manual", "connect"]
    await page.reload()
    await expect(page.locator("tbody tr")).to_have_count(2)

    await page.get_by_role("button", name="Test connection").click()
    await expect(page.get_by_role("status")).to_have_text("The connection works.")

    await page.get_by_role("button", name="Pause").click()
    await expect(page.locator(".badge", has_text="paused")).to_be_visible()
    await expect(page.get_by_role("button", name="Sync now")).to_have_count(0)
    api = await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)
    assert api.json()["data"]["status"] == "paused"
    await page.get_by_role("button", name="Resume").click()
    await expect(page.locator(".badge", has_text="active")).to_be_visible()
    api = await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)
    assert api.json()["data"]["status"] == "active"

    await page.goto("/app/integrations")
    row = page.locator("tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.get_by_role("link")).to_have_text(XSS_NAME)
    await expect(row).to_contain_text("Stripe")
    await expect(row).to_contain_text("active")
    assert await page.locator("#xss-probe").count() == 0
    assert await page.evaluate("window.pwned") is None
    await assert_accessible(page, context="list")
    await page.screenshot(path=shot("integrations-1440.png"), full_page=True)
    assert tab.script_problems() == []

    narrow = await open_tab(browser, console_url, width=390)
    try:
        await log_in(narrow.page, founder, path="/app/integrations")
        await expect(narrow.page.locator("tbody tr")).to_have_count(1)
        assert await narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await assert_accessible(narrow.page, context="list at 390")
        await narrow.page.screenshot(path=shot("integrations-390.png"), full_page=True)
        await narrow.page.goto(f"/app/integrations/{integration_id}")
        assert await narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        await narrow.page.goto("/app/integrations/new?provider=stripe")
        assert await narrow.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert narrow.problems == []
    finally:
        await narrow.context.close()


async def test_every_provider_has_a_form_from_its_config(tab: Tab, founder: Account) -> None:
    await log_in(tab.page, founder, path="/app/integrations/new")
    await assert_accessible(tab.page, context="providers")
    for provider, heading, field in (
        ("shopify", "Connect Shopify", "Shop"),
        ("google_analytics", "Connect Google Analytics", "Property ID"),
        ("mixpanel", "Connect Mixpanel", "Project ID"),
        ("hubspot", "Connect HubSpot", "Currency"),
    ):
        await tab.page.goto(f"/app/integrations/new?provider={provider}")
        await expect(tab.page.get_by_role("heading", name=heading)).to_be_visible()
        await expect(tab.page.get_by_label(field, exact=True)).to_be_visible()
        await expect(tab.page.get_by_role("button", name=heading)).to_have_count(0)  # no OAuth app: keys only
        await assert_accessible(tab.page, context=provider)
    await tab.page.goto("/app/integrations/new?provider=mixpanel")
    await tab.page.get_by_label("Secret", exact=True).fill("s3cret")
    await tab.page.get_by_label("Project ID").fill("not a number")
    await tab.page.get_by_label("Requests per second").fill("-1")
    await tab.page.get_by_role("button", name="Connect").click()
    await expect(tab.page.locator("#error-config_project_id")).to_contain_text("match pattern")
    await expect(tab.page.locator("#error-config_requests_per_second")).to_contain_text("greater than 0")
    await assert_accessible(tab.page, context="mixpanel with errors")
    assert tab.script_problems() == []


async def test_readers_see_no_buttons_and_are_refused_changes(
    tab: Tab,
    console_url: str,
    client: httpx.AsyncClient,
    founder: Account,
    other_founder: Account,
    stripe: tuple[FakeStripe, str],
) -> None:
    fake, url = stripe
    integration = await _connected(client, founder, url, fake)
    detail = f"/app/integrations/{integration['id']}"
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")

    await log_in(tab.page, analyst, path=detail)
    await expect(tab.page.get_by_role("heading", level=1)).to_have_text(XSS_NAME)
    for button in ("Sync now", "Pause", "Resume", "Test connection"):
        await expect(tab.page.get_by_role("button", name=button)).to_have_count(0)
    await tab.page.goto("/app/integrations")
    await expect(tab.page.get_by_role("link", name="Connect a provider")).to_have_count(0)
    await assert_accessible(tab.page, context="analyst list")
    assert tab.problems == []

    changes = ("sync", "pause", "resume", "test")
    async with console_client(console_url, analyst) as http:
        token = csrf_of((await http.get(detail)).text)
        assert (await http.get("/app/integrations/new?provider=stripe")).status_code == 403
        connect = await http.post(
            "/app/integrations/new?provider=stripe",
            data={"csrf_token": token, "name": "Mine", "credential_api_key": fake.api_key},
        )
        assert connect.status_code == 403
        for action in changes:
            assert (await http.post(f"{detail}/{action}", data={"csrf_token": token})).status_code == 403, action

    async with console_client(console_url, investor) as http:
        for path in ("/app/integrations", detail, f"{detail}/progress"):
            assert (await http.get(path)).status_code == 403, path
        token = csrf_of((await http.get("/app/account")).text)
        assert 'href="/app/integrations"' not in (await http.get("/app/account")).text
        assert (await http.post(f"{detail}/sync", data={"csrf_token": token})).status_code == 403

    async with console_client(console_url, other_founder) as http:
        for path in (detail, f"{detail}/progress", f"/app/integrations/{uuid.uuid4()}"):
            assert (await http.get(path)).status_code == 404, path
        token = csrf_of((await http.get("/app/integrations")).text)
        for action in changes:
            assert (await http.post(f"{detail}/{action}", data={"csrf_token": token})).status_code == 404, action
    api = await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)
    assert api.json()["data"]["status"] == "active"
