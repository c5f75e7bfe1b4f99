"""The investor dashboard in a browser: a founder asks for it, follows the run, reads the narrative, risks and
charts the agent published, and shares it; an investor reads the same page and nothing else of DevBizOps; every
page passes axe."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from playwright.async_api import Browser, expect

from northstar.core.db import Database
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, chart_data, console_client, log_in, open_tab
from tests.console.screenshots import shot
from tests.devbizops.test_investors import finish_run, investing  # noqa: F401  (the fixture)
from tests.factories import Account, add_member
from tests.metrics.test_queries import billing  # noqa: F401  (investing's fixture)


async def test_a_founder_makes_reads_and_shares_it_and_an_investor_reads_only_it(
    tab: Tab,
    browser: Browser,
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    investing: Account,  # noqa: F811
    console_url: str,
) -> None:
    founder = investing
    page = tab.page
    await log_in(page, founder, path="/app/investor-dashboard")
    await expect(page.get_by_text("No investor dashboard yet")).to_be_visible()
    await assert_accessible(page, context="investor dashboard, empty")
    await page.get_by_role("button", name="Make the dashboard").click()
    await page.wait_for_url("**/app/engineering/runs/*")
    run_id = uuid.UUID(page.url.rsplit("/", 1)[-1])
    await finish_run(app, database, founder.org_id, run_id)
    await page.reload()
    await expect(page.get_by_role("heading", name="InvestorDashboardAgent run")).to_be_visible()
    await expect(page.locator("#published-title + p a")).to_contain_text("investor dashboard")
    await assert_accessible(page, context="investor dashboard run")

    await page.locator("#published-title + p a").click()
    await page.wait_for_url("**/app/investor-dashboard")
    published = (await client.get("/api/v1/investor-dashboard", headers=founder.headers)).json()["data"]
    narrative = page.locator("#dashboard-narrative")
    await expect(narrative).to_contain_text("MRR in")
    await expect(narrative.locator("li")).to_have_count(len(published["risks"]))
    run = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=founder.headers)).json()["data"]
    await expect(page.locator("figure[data-chart]")).to_have_count(len(run["output"]["charts"]))
    deployments = await chart_data(tab, "investor-chart-2")
    assert deployments["title"] == "Deployments a month"
    assert deployments["series"][0]["values"] == run["output"]["charts"][1]["series"][0]["values"]
    await assert_accessible(page, context="investor dashboard")
    await page.screenshot(path=shot("investor-dashboard-1440.png"), full_page=True)

    await page.get_by_role("link", name="Share with investors").click()
    await page.wait_for_url(f"**/app/reports/{published['reportId']}*")
    await page.get_by_label("For").fill("Seed investors")
    await page.get_by_role("button", name="Create share link").click()
    shared = await page.locator("#share-url").input_value()
    await page.goto(shared.replace("http://127.0.0.1:8000", console_url))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("investor dashboard")
    assert tab.script_problems() == []

    investor = await add_member(client, founder, "investor")
    theirs = await open_tab(browser, console_url)
    page = theirs.page
    await log_in(page, investor, path="/app/investor-dashboard")
    await expect(page.locator("#dashboard-narrative")).to_contain_text("MRR in")
    await expect(page.get_by_role("button", name="Make a new dashboard")).to_have_count(0)
    await expect(page.get_by_role("link", name="Share with investors")).to_have_count(0)
    await expect(page.get_by_role("link", name="Engineering")).to_have_count(0)
    await assert_accessible(page, context="investor dashboard, investor")
    assert theirs.script_problems() == []
    await theirs.context.close()
    async with console_client(console_url, investor) as http:
        for path in ("/app/engineering", "/app/engineering/roadmap", f"/app/engineering/runs/{run_id}"):
            assert (await http.get(path)).status_code == 403, path
        refused = await http.post("/app/engineering/investor-dashboard/run", data={"mode": "deterministic"})
        assert refused.status_code in (403, 400), refused.status_code
