"""The webhooks page in headless Chromium: an endpoint added (its secret shown once), a delivery to a real receiver
on loopback with its attempts, a replay, a rotation, turning the endpoint off; and what an analyst sees."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import expect
from standardwebhooks import Webhook

from northstar.core.db import Database
from northstar.settings import Settings
from northstar.webhooks import service as webhooks
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, log_in, open_tab
from tests.factories import Account, add_member
from tests.webhooks.conftest import Receiver, Run, receiving, runner
from tests.workers import reaching_loopback


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@pytest.fixture(scope="module")
async def worker_database(database_url: str, settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_url, settings=reaching_loopback(settings), pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def work(run_jobs: Run, worker_database: Database) -> Run:
    return runner(run_jobs, worker_database)


async def test_endpoints_deliveries_and_replay(
    tab: Tab,
    client: httpx.AsyncClient,
    founder: Account,
    receiver: Receiver,
    worker_database: Database,
    work: Run,
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/webhooks")
    await expect(page.get_by_text("No endpoints yet")).to_be_visible()
    await assert_accessible(page, context="webhooks, empty")
    address = receiver.address()
    await page.get_by_label("Address (https://)").fill(address)
    await page.get_by_role("button", name="Add endpoint").click()  # no event chosen
    await expect(page.locator("#event_types-error")).to_be_visible()
    await page.get_by_label("quota.reached").check()
    await page.get_by_role("button", name="Add endpoint").click()
    secret = await page.locator("[data-secret]").text_content()
    assert secret is not None and secret.startswith("whsec_")
    [endpoint] = (await client.get("/api/v1/webhooks/endpoints", headers=founder.headers)).json()["data"]
    assert endpoint["url"] == address and endpoint["eventTypes"] == ["quota.reached"]
    async with worker_database.tenant_transaction(org_id=founder.org_id) as session:
        await webhooks.emit(session, org_id=founder.org_id, event_type="quota.reached", data={"percent": 80})
    await work()
    [arrived] = receiver.at(address)
    assert Webhook(secret).verify(arrived.body, arrived.headers)["data"] == {"percent": 80}
    await page.goto("/app/webhooks")
    row = page.locator("tr[data-delivery]")
    await expect(row).to_contain_text("succeeded")
    await assert_accessible(page, context="webhooks with a delivery")
    await row.get_by_role("link").click()
    await expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    await expect(page.get_by_role("region", name="Attempts table")).to_contain_text("HTTP 200")
    await assert_accessible(page, context="webhook delivery")
    await page.get_by_role("button", name="Replay").click()
    await expect(page.locator("[data-status]")).to_have_text("pending")
    await work()
    await page.reload()
    await expect(page.locator("[data-status]")).to_have_text("succeeded")
    await expect(page.get_by_role("region", name="Attempts table")).to_contain_text("replay")
    assert len(receiver.at(address)) == 2
    await page.goto("/app/webhooks")
    endpoint_row = page.locator(f'tr[data-endpoint="{endpoint["id"]}"]')
    await endpoint_row.get_by_role("button", name="Rotate secret").click()
    rotated = await page.locator("[data-secret]").text_content()
    assert rotated is not None and rotated.startswith("whsec_") and rotated != secret
    await expect(endpoint_row).to_contain_text("rotating until")
    await endpoint_row.get_by_role("button", name="Turn off").click()
    await expect(endpoint_row).to_contain_text("off")
    found = (await client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=founder.headers)).json()
    assert found["data"]["status"] == "disabled"
    await assert_accessible(page, context="webhooks, endpoint off")
    assert tab.script_problems() == []


async def test_an_analyst_sees_the_log_but_changes_nothing(
    browser: object, console_url: str, client: httpx.AsyncClient, founder: Account, receiver: Receiver
) -> None:
    response = await client.post(
        "/api/v1/webhooks/endpoints",
        json={"url": "https://hooks.example.com/in", "eventTypes": ["event.received"]},
        headers=founder.headers,
    )
    assert response.status_code == 201
    analyst = await add_member(client, founder, "analyst")
    tab = await open_tab(browser, console_url)  # type: ignore[arg-type]
    try:
        await log_in(tab.page, analyst, path="/app/webhooks")
        await expect(tab.page.get_by_text("https://hooks.example.com/in")).to_be_visible()
        await expect(tab.page.get_by_role("button", name="Rotate secret")).to_have_count(0)
        await expect(tab.page.get_by_role("heading", name="Add an endpoint")).to_have_count(0)
        await assert_accessible(tab.page, context="webhooks, analyst")
        refused = await tab.page.request.post(f"{console_url}/app/webhooks/{response.json()['data']['id']}/rotate")
        assert refused.status in (403, 400)
    finally:
        await tab.context.close()
