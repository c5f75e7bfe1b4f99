"""The engineering pages in a browser: the DORA dashboard shows the API's values and bands with their trends, per
scope; work items show the customers and deals waiting on them; empty orgs get a way in; investors are kept out;
every page passes axe."""

from __future__ import annotations

import uuid

import httpx
from opentelemetry import trace
from playwright.async_api import expect

from northstar.core.db import Database
from northstar.demo.engineering_history import generate
from northstar.devbizops import service
from northstar.devbizops.service import agents
from northstar.metrics import service as metrics_service
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, api_data, chart_data, console_client, log_in
from tests.console.screenshots import shot
from tests.devbizops.conftest import create_team, store_history
from tests.devbizops.test_links import _business
from tests.devbizops.transcripts import CALLS
from tests.factories import Account, add_member


async def test_the_dashboard_shows_each_scopes_keys_bands_and_trends(
    tab: Tab, client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    team = await create_team(client, founder, "Platform")
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        today = await metrics_service.org_today(session, org_id=founder.org_id)
    await store_history(database, founder, generate(repositories=4, months=12, end=today, teams=[team], seed=5))
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await service.recompute(session, org_id=founder.org_id)
    report = await api_data(client, founder, "/devbizops/dora")
    overall = report[0]
    page = tab.page
    await log_in(page, founder, path="/app/engineering")
    for card, key in (
        ("lead_time_hours", "leadTimeHours"),
        ("change_failure_rate", "changeFailureRate"),
        ("time_to_restore_hours", "timeToRestoreHours"),
    ):
        badge = page.locator(f'[data-metric="{card}"] .badge')
        await expect(badge).to_have_attribute("data-band", overall[key]["band"])
        chart = await chart_data(tab, f"chart-{card}")
        expected = overall[key]["trend"]
        if card == "change_failure_rate":
            expected = [value / 100 if value is not None else None for value in expected]
        assert chart["series"][0]["values"] == expected
    await expect(page.locator('[data-metric="deployments"] .badge')).to_have_attribute(
        "data-band", overall["deploymentFrequency"]["band"]
    )
    await assert_accessible(page, context="engineering dashboard")
    await page.screenshot(path=shot("engineering-1440.png"), full_page=True)
    await page.get_by_role("link", name="Platform").click()
    await page.wait_for_url("**/app/engineering?scope=team*")
    await expect(page.locator("#keys-title")).to_have_text("Platform")
    platform = next(scope for scope in report if scope["kind"] == "team")
    chart = await chart_data(tab, "chart-lead_time_hours")
    assert chart["series"][0]["values"] == platform["leadTimeHours"]["trend"]
    assert tab.script_problems() == []


async def test_an_org_without_engineering_data_is_shown_the_way_in(tab: Tab, other_founder: Account) -> None:
    await log_in(tab.page, other_founder, path="/app/engineering")
    await expect(tab.page.get_by_text("No engineering data yet")).to_be_visible()
    await assert_accessible(tab.page, context="engineering, empty")


async def test_work_items_show_what_waits_on_them(
    tab: Tab, client: httpx.AsyncClient, founder: Account, database: Database, console_url: str
) -> None:
    made = await _business(database, founder)
    page = tab.page
    await log_in(page, founder, path="/app/engineering/work-items")
    await page.get_by_label("Search by key or title").fill("audit")
    await page.get_by_role("button", name="Search").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await assert_accessible(page, context="work items")
    await page.get_by_role("link", name="ENG-7").click()
    await page.wait_for_url(f"**/app/engineering/work-items/{made['items']['ENG-7']}")
    await expect(page.get_by_text("12,000.50 EUR").first).to_be_visible()
    await expect(page.locator("q")).to_contain_text("Blocked on ENG-7")
    await assert_accessible(page, context="work item")
    await page.screenshot(path=shot("engineering-work-item-1440.png"), full_page=True)

    investor = await add_member(client, founder, "investor")
    async with console_client(console_url, investor) as http:
        assert (await http.get("/app/engineering")).status_code == 403
        assert (await http.get(f"/app/engineering/work-items/{made['items']['ENG-7']}")).status_code == 403
    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        assert (await http.get("/app/engineering/work-items")).status_code == 200


async def test_a_pasted_call_becomes_proposals_with_highlighted_evidence_approved_in_the_page(
    tab: Tab, client: httpx.AsyncClient, founder: Account, database: Database, console_url: str
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/engineering/calls")
    await assert_accessible(page, context="calls, empty")
    await page.get_by_role("button", name="Read the call").click()  # nothing pasted
    await expect(page.locator("#error-transcript")).to_be_visible()
    await page.get_by_label("Transcript").fill(CALLS[0].transcript)
    await page.get_by_label("Customer").fill("Globex")
    await page.get_by_role("button", name="Read the call").click()
    await page.wait_for_url("**/app/engineering/runs/*")
    run_id = page.url.rsplit("/", 1)[-1]
    async with database.tenant_transaction(org_id=founder.org_id) as session:  # what the worker does
        await agents.execute(
            session, org_id=founder.org_id, run_id=uuid.UUID(run_id), model=None, tracer=trace.NoOpTracer()
        )
    await page.reload()
    await expect(page.locator("article.panel")).to_have_count(3)
    first = page.locator("#proposal-1")
    await expect(first.locator("mark").first).to_have_text("Honestly, the blocker for us is single sign-on.")
    await expect(first.get_by_text("Connect Jira or Linear to file tickets.")).to_be_visible()
    await assert_accessible(page, context="agent run")
    await page.screenshot(path=shot("engineering-run-1440.png"), full_page=True)
    await page.locator("#proposal-2").get_by_role("button", name="Reject").click()
    await page.wait_for_url(f"**/app/engineering/runs/{run_id}*")
    await expect(page.locator("#proposal-2")).to_contain_text("rejected")
    member = await add_member(client, founder, "member")
    async with console_client(console_url, member) as http:
        assert (await http.get(f"/app/engineering/runs/{run_id}")).status_code == 200
        html = (await http.get(f"/app/engineering/runs/{run_id}")).text
        assert "Reject</button>" not in html  # members see proposals, founders and admins decide


async def test_the_roadmap_board_shows_each_quarters_items_and_runs_the_agent(
    tab: Tab, client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    page = tab.page
    await log_in(page, founder, path="/app/engineering/roadmap")
    await expect(page.get_by_text("No roadmap yet")).to_be_visible()
    for title, quarter in (("SSO", "2027-Q1"), ("Mobile app", "2027-Q2"), ("Audit export", "2027-Q1")):
        made = await client.post(
            "/api/v1/devbizops/roadmap", headers=founder.headers, json={"title": title, "targetQuarter": quarter}
        )
        assert made.status_code == 201, made.text
    await page.reload()
    await expect(page.locator("#quarter-2027-Q1 + ol li h3")).to_have_text(["SSO", "Audit export"])
    await expect(page.locator("#quarter-2027-Q2 + ol li h3")).to_have_text(["Mobile app"])
    await assert_accessible(page, context="roadmap")
    await page.get_by_role("button", name="Ask RoadmapAgent").click()
    await page.wait_for_url("**/app/engineering/runs/*")
    await expect(page.get_by_role("heading", name="TechTranslator run")).to_have_count(0)
