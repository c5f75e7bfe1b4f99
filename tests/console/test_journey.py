"""The console's journey through the "Web console" issue's done-when list, as one story in headless Chromium.

A founder with MFA signs in and moves to a second organization with the org switcher; there, through the pages, they
connect Stripe (the fake Stripe API on loopback, synced by a real worker) and watch the sync's progress bar finish,
read MRR on the dashboard as ``GET /api/v1/dashboard`` gives it, open the explain drawer on a month's movements, create
a social proof site and a notification seen in the live preview, upload a CSV by drag and drop and watch its job
complete, create an API key and revoke it, and find these actions in the audit log. Then an investor and an analyst of
the same organization sign in: each sees only the links and cards their role allows, and is refused (403) the pages
and actions it does not. The API serves only to set up the other users and to give the numbers the pages must show.
axe runs at every stop; no page has a script error or a CSP violation."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from playwright.async_api import Browser, expect

from northstar.demo.stripe_api import FakeStripe
from northstar.metrics.console import show
from tests.console.accessibility import assert_accessible
from tests.console.conftest import (
    PREVIEW,
    Tab,
    accessible,
    api_data,
    chart_data,
    console_client,
    csrf_of,
    drop_file,
    log_in,
    open_tab,
    plotted,
    set_fx_rates,
    wait_for_sync_end,
)
from tests.factories import Account, add_member, enable_mfa, login
from tests.integrations.conftest import latest_run
from tests.workers import Workers

VENTURE = "Journey Ventures"
SHARED = ["mrr", "customers"]  # the cards the founder shares with investors
CSV = "email,plan\n" + "".join(f"user{n}@example.com,{'pro' if n % 3 else 'team'}\n" for n in range(1, 41))


async def test_a_founder_then_an_investor_and_an_analyst_go_through_the_console(
    tab: Tab,
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    founder: Account,
    worker: Workers,
    stripe: tuple[FakeStripe, str],
) -> None:
    created = await client.post("/api/v1/organizations", json={"name": VENTURE}, headers=founder.headers)
    assert created.status_code == 201, created.text
    venture = await login(client, founder, org_id=uuid.UUID(created.json()["data"]["id"]))  # the API's view of it
    totp = await enable_mfa(client, founder)

    await _sign_in_with_mfa_and_switch_org(tab, founder, venture, totp.now())
    integration_id = await _connect_stripe_and_watch_the_sync(tab, client, venture, stripe)
    await _read_mrr_as_the_api_gives_it(tab, client, venture)
    await _explain_a_month(tab, client, venture)
    await _preview_a_notification(tab, client, venture)
    await _upload_a_csv(tab, client, venture)
    await _create_and_revoke_an_api_key(tab, client, venture)
    await _find_the_journey_in_the_audit_log(tab, client, venture)

    shared = await client.patch("/api/v1/metrics/settings", headers=venture.headers, json={"investorMetrics": SHARED})
    assert shared.status_code == 200, shared.text
    await _investor_sees_only_what_is_shared(browser, console_url, client, venture, integration_id)
    await _analyst_reads_but_cannot_change(browser, console_url, client, venture, integration_id)
    assert tab.problems == []


async def _sign_in_with_mfa_and_switch_org(tab: Tab, founder: Account, venture: Account, code: str) -> None:
    page = tab.page
    await log_in(page, founder, code=code)  # the code is asked for after the password
    await expect(page.get_by_text("Signing in asks for a code")).to_be_visible()
    await expect(page.get_by_label("Organization")).to_have_value(str(founder.org_id))  # the org joined first
    await assert_accessible(page, context="account")
    await page.get_by_label("Organization").select_option(label=f"{VENTURE} (founder)")
    await page.wait_for_url("**/app/")
    await expect(page.get_by_label("Organization")).to_have_value(str(venture.org_id))
    await expect(page.locator(".page-head")).to_contain_text(VENTURE)
    await expect(page.get_by_text("Connect Stripe to see MRR")).to_be_visible()
    await assert_accessible(page, context="home without data")


async def _connect_stripe_and_watch_the_sync(
    tab: Tab, client: httpx.AsyncClient, venture: Account, stripe: tuple[FakeStripe, str]
) -> str:
    fake, url = stripe
    await set_fx_rates(client, venture, fake)  # the account bills in three currencies
    page = tab.page
    await page.get_by_role("link", name="Connect Stripe").click()  # the home's empty state, then the list's
    await page.wait_for_url("**/app/integrations")
    await page.get_by_role("link", name="Connect Stripe").click()
    await expect(page.get_by_role("heading", name="Connect Stripe")).to_be_visible()
    await assert_accessible(page, context="connect form")
    await page.get_by_label("Name").fill("Billing")
    await page.get_by_label("API key").fill(fake.api_key)
    await page.get_by_label("Base URL").fill(url)
    await page.get_by_label("Check the credentials with one request first").check()
    await page.get_by_role("button", name="Connect").click()
    await page.wait_for_url(re.compile(r"/app/integrations/[0-9a-f-]{36}$"))
    integration_id = page.url.rsplit("/", 1)[1]
    await expect(page.get_by_role("heading", level=1)).to_have_text("Billing")
    await wait_for_sync_end(page)
    run = await latest_run(client, venture, integration_id)
    assert (run["trigger"], run["status"]) == ("connect", "succeeded"), run
    await expect(page.locator("#sync-progress")).to_contain_text(f"succeeded, {sum(run['fetched'].values())} rows")
    await assert_accessible(page, context="synced integration")
    return integration_id


async def _read_mrr_as_the_api_gives_it(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    page = tab.page
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Dashboard", exact=True).click()
    await page.wait_for_url("**/app/")
    cards = {card["metric"]: card for card in (await api_data(client, venture, "/dashboard"))["cards"]}
    mrr = cards["mrr"]
    assert mrr["value"]["amount"] > 0, mrr  # the synced account has paying customers
    mrr_card = page.locator('.kpi-card[data-metric="mrr"]')
    await expect(mrr_card.locator(".kpi-value")).to_contain_text(show("mrr", mrr["value"]))
    await expect(mrr_card.locator(".kpi-change")).to_contain_text(show("mrr", mrr["change"]))
    spark = await chart_data(tab, "spark-mrr")
    assert spark["series"][0]["values"] == [plotted(value) for value in mrr["sparkline"]]
    shown = await page.locator(".kpi-card").evaluate_all("cards => cards.map(card => card.dataset.metric)")
    assert shown == list(cards)
    await expect(mrr_card.locator("figure .chart-plot")).to_have_count(1)
    await assert_accessible(page, context="home")


async def _explain_a_month(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    """On the MRR page by month, the newest month that had movements is explained in the drawer."""
    page = tab.page
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="MRR", exact=True).click()
    await page.wait_for_url("**/app/kpis/mrr")
    await page.get_by_role("link", name="By month").click()
    await expect(page.locator("#values-title")).to_have_text("Values by month")
    by_month = await api_data(client, venture, "/dashboard/series", metric="mrr", grain="month")
    chart = await chart_data(tab, "kpi-chart")
    assert chart["series"][0]["values"] == [plotted(point["value"]) for point in by_month["points"]]
    await assert_accessible(page, context="MRR by month")

    buttons = page.locator(".kpi-values [data-explain]")
    await expect(buttons).to_have_count(len(by_month["points"]))
    for index in range(await buttons.count()):
        period = dict(parse_qsl(urlsplit(await buttons.nth(index).get_attribute("hx-get") or "").query))
        explained: list[dict[str, Any]] = await api_data(client, venture, "/metrics/explain", **period)
        if explained:
            break
    assert explained, "no month of the synced account has an MRR movement"
    await buttons.nth(index).click()
    drawer = page.locator("#explain-drawer")
    await expect(drawer).to_be_visible()
    await expect(page.locator("#explain-title")).to_be_focused()
    await expect(drawer.locator(".movement")).to_have_count(len(explained))
    for movement in explained:
        await expect(drawer).to_contain_text(movement["customer"]["externalId"])
        for line in movement["lines"]:
            await expect(drawer).to_contain_text(line["externalId"])
    await assert_accessible(page, context="explain drawer")
    await page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()
    await expect(buttons.nth(index)).to_be_focused()


async def _preview_a_notification(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    page = tab.page
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Sites").click()
    await expect(page.get_by_role("heading", name="No sites yet")).to_be_visible()
    await accessible(tab, "sites")
    domain = f"shop-{uuid.uuid4().hex[:8]}.example.com"
    await page.get_by_label("Name", exact=True).fill("Trail shop")
    await page.get_by_label("Domain").fill(domain)
    await page.get_by_role("button", name="Add site").click()
    await page.wait_for_url("**/app/sites/*")
    site_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("#embed-snippet")).to_have_value(
        (await api_data(client, venture, f"/sites/{site_id}"))["snippet"]
    )
    await accessible(tab, "site")

    await page.get_by_role("link", name="New notification").click()
    await expect(page.locator(PREVIEW)).to_contain_text("Anna from Berlin bought Trail Shoes")
    await page.get_by_label("Name", exact=True).fill("Recent buyers")
    await page.get_by_label("Status").select_option("active")
    await accessible(tab, "notification editor")
    await page.get_by_role("button", name="Create notification").click()
    await expect(page.get_by_role("heading", name="Recent buyers")).to_be_visible()
    await expect(page.locator(PREVIEW)).to_contain_text("Anna from Berlin bought Trail Shoes")
    notification_id = page.url.rsplit("/", 1)[1]
    stored = await api_data(client, venture, f"/sites/{site_id}/notifications/{notification_id}")
    assert (stored["name"], stored["status"]) == ("Recent buyers", "active")
    await accessible(tab, "notification")


async def _upload_a_csv(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    page = tab.page
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Upload").click()
    await page.wait_for_url("**/app/upload")
    await assert_accessible(page, context="upload")
    await page.get_by_label("Dataset name").fill("Signups")
    await drop_file(page, "signups.csv", CSV)
    await expect(page.locator("#chosen")).to_have_text("Chosen: signups.csv")
    await page.get_by_role("button", name="Upload").click()
    await page.wait_for_url("**/app/jobs/*")
    await expect(page.locator("[data-job-status]")).to_have_text("completed", timeout=60_000)
    await expect(page.locator("progress[data-job-progress]")).to_have_js_property("value", 1)
    await expect(page.get_by_role("link", name="Browse the dataset")).to_be_visible()
    job = await api_data(client, venture, f"/status/{page.url.rsplit('/', 1)[1]}")
    assert (job["type"], job["status"], job["result"]["rowsLoaded"]) == ("upload", "completed", 40), job
    await assert_accessible(page, context="upload job")


async def _create_and_revoke_an_api_key(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    page = tab.page
    nav = page.get_by_role("navigation", name="Console")
    await nav.get_by_role("link", name="API keys").click()
    await expect(page.get_by_text("No API keys yet")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("Board deck")
    await page.locator("#field-role").select_option("analyst")
    await page.get_by_role("button", name="Create key").click()
    secret = await page.locator("#new-key").input_value()
    assert secret
    await assert_accessible(page, context="API key created")
    assert (await client.get("/api/v1/dashboard", headers={"X-API-Key": secret})).status_code == 200

    await nav.get_by_role("link", name="API keys").click()
    await expect(page.locator("#new-key")).to_have_count(0)  # the secret is shown once
    await page.get_by_role("button", name="Revoke Board deck").click()
    await expect(page.get_by_text("revoked")).to_be_visible()
    assert (await client.get("/api/v1/dashboard", headers={"X-API-Key": secret})).status_code == 401
    [key] = await api_data(client, venture, "/api-keys")
    assert (key["name"], key["role"], key["revokedAt"] is not None) == ("Board deck", "analyst", True)


async def _find_the_journey_in_the_audit_log(tab: Tab, client: httpx.AsyncClient, venture: Account) -> None:
    page = tab.page
    await page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log").click()
    await expect(page.locator("#chain-state")).to_contain_text("Verified")
    await page.get_by_label("Action starts with").fill("console.")
    await page.get_by_label("Actor id").fill(str(venture.user_id))
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url(re.compile(r"/app/audit\?.*action=console\."))
    listed = await api_data(client, venture, "/audit", action="console.", actorId=str(venture.user_id))
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(len(listed))
    assert await rows.locator("td:nth-child(1)").all_text_contents() == [str(entry["seq"]) for entry in listed]
    actions = await rows.locator("td:nth-child(3)").all_text_contents()
    drawn = "console.socialproof_notification_preview"  # the editor's preview, redrawn as the form changes
    assert drawn in actions
    assert [action for action in actions if action != drawn] == [  # newest first
        "console.accounts_api_key_revoke",
        "console.accounts_api_key_create",
        "console.datasets_upload_submit",
        "console.socialproof_notification_create",
        "console.socialproof_site_create",
        "console.integrations_connect",
    ]
    await assert_accessible(page, context="audit log")


async def _investor_sees_only_what_is_shared(
    browser: Browser, console_url: str, client: httpx.AsyncClient, venture: Account, integration_id: str
) -> None:
    investor = await add_member(client, venture, "investor")
    tab = await open_tab(browser, console_url)
    try:
        page = tab.page
        await log_in(page, investor, path="/app/")
        shown = await page.locator(".kpi-card").evaluate_all("cards => cards.map(card => card.dataset.metric)")
        assert shown == [card["metric"] for card in (await api_data(client, investor, "/dashboard"))["cards"]]
        assert shown == SHARED
        await expect(page.locator("[data-explain]")).to_have_count(0)
        nav = page.get_by_role("navigation", name="Console")
        await expect(nav.get_by_role("link", name="Dashboard", exact=True)).to_be_visible()
        for hidden in ("MRR movements", "Integrations", "Sites", "Upload", "API keys", "Audit log", "Engineering"):
            await expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
        await assert_accessible(page, context="investor home")
        await nav.get_by_role("link", name="MRR", exact=True).click()
        await page.wait_for_url("**/app/kpis/mrr")
        await expect(page.locator("[data-explain]")).to_have_count(0)
        assert tab.problems == []
    finally:
        await tab.context.close()

    detail = f"/app/integrations/{integration_id}"
    async with console_client(console_url, investor) as http:
        for path in ("/app/kpis/mrr/explain", "/app/kpis/mrr/movements", "/app/integrations", detail, "/app/api-keys"):
            assert (await http.get(path)).status_code == 403, path
        token = csrf_of((await http.get("/app/")).text)
        for path in (f"{detail}/sync", f"{detail}/pause", "/app/integrations/new?provider=stripe"):
            assert (await http.post(path, data={"csrf_token": token})).status_code == 403, path


async def _analyst_reads_but_cannot_change(
    browser: Browser, console_url: str, client: httpx.AsyncClient, venture: Account, integration_id: str
) -> None:
    analyst = await add_member(client, venture, "analyst")
    tab = await open_tab(browser, console_url)
    try:
        page = tab.page
        await log_in(page, analyst, path="/app/")
        cards = (await api_data(client, analyst, "/dashboard"))["cards"]
        shown = await page.locator(".kpi-card").evaluate_all("cards => cards.map(card => card.dataset.metric)")
        assert shown == [card["metric"] for card in cards]
        await expect(page.locator('.kpi-card[data-metric="mrr"] .kpi-value')).to_contain_text(
            show("mrr", cards[0]["value"])
        )
        nav = page.get_by_role("navigation", name="Console")
        for visible in ("Dashboard", "MRR movements", "Integrations"):
            await expect(nav.get_by_role("link", name=visible, exact=True)).to_be_visible()
        for hidden in ("API keys", "Audit log", "Upload"):
            await expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
        await assert_accessible(page, context="analyst home")
        await nav.get_by_role("link", name="Integrations").click()
        await expect(page.get_by_role("link", name="Billing")).to_be_visible()
        await expect(page.get_by_role("link", name="Connect a provider")).to_have_count(0)
        await page.get_by_role("link", name="Billing").click()
        await expect(page.locator("#sync-progress")).to_contain_text("succeeded")
        for button in ("Sync now", "Pause", "Test connection"):
            await expect(page.get_by_role("button", name=button)).to_have_count(0)
        await assert_accessible(page, context="analyst integration")
        assert tab.problems == []
    finally:
        await tab.context.close()

    detail = f"/app/integrations/{integration_id}"
    async with console_client(console_url, analyst) as http:
        assert (await http.get("/app/kpis/mrr/movements")).status_code == 200
        for path in ("/app/api-keys", "/app/integrations/new?provider=stripe"):
            assert (await http.get(path)).status_code == 403, path
        token = csrf_of((await http.get("/app/")).text)
        refused = {
            "/app/api-keys": {"name": "Mine", "role": "analyst"},
            "/app/integrations/new?provider=stripe": {"name": "Mine", "credential_api_key": "sk_test_mine"},
            f"{detail}/sync": {},
        }
        for path, data in refused.items():
            assert (await http.post(path, data={**data, "csrf_token": token})).status_code == 403, path
    assert [key["name"] for key in await api_data(client, venture, "/api-keys")] == ["Board deck"]
