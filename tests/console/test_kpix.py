"""The KPIx pages in headless Chromium: the dashboard's cards equal the API's, a metric's chart by day, week and
month, the explain drawer, MRR movements and cohorts, goals, exports, and who may see what.

The organization's billing history is the one of the dashboard API tests (tests/metrics/test_queries.py), stored
and computed with its helpers, so the numbers shown can be compared with what the API answers."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
import pytest
from playwright.async_api import Browser, expect

from northstar.core.db import Database
from northstar.metrics.console import show
from tests.console.accessibility import assert_accessible
from tests.console.conftest import Tab, api_data, chart_data, console_client, csrf_of, log_in, open_tab, plotted
from tests.console.screenshots import shot
from tests.factories import Account, add_member
from tests.metrics.test_queries import MRR, Billing, _integration, _store_and_recompute, _utc_today


@pytest.fixture
async def kpix(client: httpx.AsyncClient, founder: Account, database: Database) -> Billing:
    found = Billing(founder, _utc_today())
    await _store_and_recompute(database, founder, await _integration(client, founder), found.lines())
    return found


async def test_founder_sees_the_api_numbers_explains_them_and_switches_granularity(
    tab: Tab, client: httpx.AsyncClient, kpix: Billing
) -> None:
    founder = kpix.account
    dashboard = await api_data(client, founder, "/dashboard")
    cards = {card["metric"]: card for card in dashboard["cards"]}
    await log_in(tab.page, founder, path="/app/")

    mrr_card = tab.page.locator('.kpi-card[data-metric="mrr"]')
    assert cards["mrr"]["value"]["amount"] == MRR[0]
    await expect(mrr_card.locator(".kpi-value")).to_contain_text(show("mrr", cards["mrr"]["value"]))
    await expect(mrr_card.locator(".kpi-change")).to_contain_text(show("mrr", cards["mrr"]["change"]))
    shown = await tab.page.locator(".kpi-card").evaluate_all("cards => cards.map(card => card.dataset.metric)")
    assert shown == list(cards)
    spark = await chart_data(tab, "spark-mrr")
    assert spark["series"][0]["values"] == [plotted(value) for value in cards["mrr"]["sparkline"]]
    await expect(mrr_card.locator("figure .chart-plot")).to_have_count(1)
    await assert_accessible(tab.page, context="home")
    await tab.page.screenshot(path=shot("kpix-home-1440.png"), full_page=True)

    # the card's value explains this month's movements
    await mrr_card.locator("[data-explain]").click()
    drawer = tab.page.locator("#explain-drawer")
    await expect(drawer).to_be_visible()
    await expect(tab.page.locator("#explain-title")).to_be_focused()
    explained = await api_data(
        client, founder, "/metrics/explain", start=kpix.month(0).isoformat(), end=kpix.today.isoformat()
    )
    lines = [line["externalId"] for movement in explained for line in movement["lines"]]
    assert lines
    for line in lines:
        await expect(drawer).to_contain_text(line)
    await assert_accessible(tab.page, context="explain drawer")
    await tab.page.keyboard.press("Escape")
    await expect(drawer).to_be_hidden()

    # the metric page: by day by default, as the series API answers
    await tab.page.get_by_role("link", name="MRR", exact=True).first.click()
    await tab.page.wait_for_url("**/app/kpis/mrr")
    chart = await chart_data(tab, "kpi-chart")
    by_day = await api_data(client, founder, "/dashboard/series", metric="mrr")
    assert chart["x"] == [point["day"] for point in by_day["points"]]
    assert chart["series"][0]["values"] == [point["value"]["amount"] for point in by_day["points"]]
    assert chart["format"] == {"currency": "USD", "exponent": 2}
    anomalies = await api_data(
        client, founder, "/dashboard/anomalies", metric="mrr", start=chart["x"][0], end=kpix.today.isoformat()
    )
    assert [item["x"] for item in chart["anomalies"]] == [item["day"] for item in anomalies]
    await assert_accessible(tab.page, context="metric by day")
    await tab.page.screenshot(path=shot("kpix-metric-1440.png"), full_page=True)

    # by month through htmx: the chart is replaced and equals the API's months
    await tab.page.get_by_role("link", name="By month").click()
    await expect(tab.page.locator("#values-title")).to_have_text("Values by month")
    await tab.page.wait_for_url("**/app/kpis/mrr?grain=month")
    chart = await chart_data(tab, "kpi-chart")
    by_month = await api_data(client, founder, "/dashboard/series", metric="mrr", grain="month")
    assert chart["series"][0]["values"] == [point["value"]["amount"] for point in by_month["points"]]
    assert chart["series"][0]["values"][-1] == MRR[0]
    await expect(tab.page.locator("figure[data-chart] .chart-plot")).to_have_count(1)

    # a month's value explains the movements of that month
    first_row = tab.page.locator(".kpi-values tbody tr").first
    await expect(first_row).to_contain_text(show("mrr", by_month["points"][-1]["value"]))
    await first_row.locator("[data-explain]").click()
    await expect(drawer).to_be_visible()
    for line in lines:
        await expect(drawer).to_contain_text(line)
    await drawer.get_by_role("button", name="Close").click()
    await expect(drawer).to_be_hidden()
    await expect(first_row.locator("[data-explain]")).to_be_focused()

    await tab.page.get_by_role("link", name="By week").click()
    await expect(tab.page.locator("#values-title")).to_have_text("Values by week")
    by_week = await api_data(client, founder, "/dashboard/series", metric="mrr", grain="week")
    assert (await chart_data(tab, "kpi-chart"))["series"][0]["values"] == [
        point["value"]["amount"] for point in by_week["points"]
    ]
    await assert_accessible(tab.page, context="metric by week")
    assert tab.problems == []


async def test_movements_cohorts_goals_and_export(tab: Tab, client: httpx.AsyncClient, kpix: Billing) -> None:
    founder = kpix.account
    created = await client.post(
        "/api/v1/dashboard/goals",
        headers=founder.headers,
        json={"metric": "mrr", "target": 30000, "targetDate": (kpix.today + dt.timedelta(days=60)).isoformat()},
    )
    assert created.status_code == 201, created.text
    goal = created.json()["data"]
    await log_in(tab.page, founder, path="/app/kpis/mrr/movements")

    waterfall = await api_data(client, founder, "/dashboard/waterfall")
    chart = await chart_data(tab, "waterfall-chart")
    last = waterfall[-1]
    assert chart["series"][0]["values"] == [
        last[name]["amount"] for name in ("start", "new", "expansion", "reactivation", "contraction", "churn", "fx")
    ]
    assert sum(chart["series"][0]["values"]) == last["end"]["amount"] == MRR[0]
    cohorts = await api_data(client, founder, "/dashboard/cohorts")
    cells = tab.page.locator("table.cohorts td[class*=heat-]")
    await expect(cells).to_have_count(len(cohorts))
    assert await tab.page.locator("table.cohorts [style]").count() == 0
    await expect(cells.first).to_contain_text(f"{cohorts[0]['nrr']:.1f} %")
    await assert_accessible(tab.page, context="movements")

    await tab.page.goto("/app/")
    goal_row = tab.page.locator(".goal-list li")
    await expect(goal_row).to_contain_text(goal["status"].replace("_", " "))
    await expect(goal_row.locator("progress")).to_have_count(1)
    await goal_row.get_by_role("link", name="MRR").click()
    await tab.page.wait_for_url(f"**/app/goals/{goal['id']}")
    await expect(tab.page.locator(".goal-detail")).to_contain_text(show("mrr", goal["target"]))
    await assert_accessible(tab.page, context="goal")

    await tab.page.goto("/app/kpis/mrr")
    await tab.page.get_by_role("button", name="Export Parquet").click()
    await tab.page.wait_for_url(re.compile(r"/app/exports/[0-9a-f-]{36}$"))
    job_id = tab.page.url.rsplit("/", 1)[1]
    job = await api_data(client, founder, f"/status/{job_id}")
    assert (job["type"], job["params"]["format"]) == ("export", "parquet")
    await expect(tab.page.locator("#export-job")).to_contain_text(job["status"])
    await assert_accessible(tab.page, context="export")
    assert tab.problems == []


async def test_narrow_screens_fit(browser: Browser, console_url: str, kpix: Billing) -> None:
    tab = await open_tab(browser, console_url, width=390)
    try:
        await log_in(tab.page, kpix.account, path="/app/")
        for path, name in (("/app/", "home"), ("/app/kpis/mrr", "metric"), ("/app/kpis/mrr/movements", "movements")):
            await tab.page.goto(path)
            await expect(tab.page.locator("figure[data-chart] .chart-plot").first).to_be_visible()
            width = await tab.page.evaluate("document.documentElement.scrollWidth")
            wide = await tab.page.evaluate(
                "[...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 391)"
                ".slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"
            )
            assert width <= 390, (path, width, wide)
            if name != "movements":
                await tab.page.screenshot(path=shot(f"kpix-{name}-390.png"), full_page=True)
            await assert_accessible(tab.page, context=f"{name} at 390 px")
        assert tab.problems == []
    finally:
        await tab.context.close()


async def test_investors_see_only_shared_cards_and_nothing_at_customer_level(
    tab: Tab, console_url: str, client: httpx.AsyncClient, kpix: Billing
) -> None:
    founder = kpix.account
    investor = await add_member(client, founder, "investor")
    async with console_client(console_url, investor) as http:
        assert "Nothing shared yet" in (await http.get("/app/")).text
    shared = await client.patch(
        "/api/v1/metrics/settings", headers=founder.headers, json={"investorMetrics": ["mrr", "customers"]}
    )
    assert shared.status_code == 200, shared.text

    await log_in(tab.page, investor, path="/app/")
    metrics = await tab.page.locator(".kpi-card").evaluate_all("cards => cards.map(card => card.dataset.metric)")
    assert metrics == [card["metric"] for card in (await api_data(client, investor, "/dashboard"))["cards"]]
    assert metrics == ["mrr", "customers"]
    await expect(tab.page.locator("[data-explain]")).to_have_count(0)
    await expect(tab.page.get_by_role("link", name="MRR movements")).to_have_count(0)
    await assert_accessible(tab.page, context="investor home")
    await tab.page.goto("/app/kpis/mrr")
    await expect(tab.page.locator("[data-explain]")).to_have_count(0)
    await expect(tab.page.get_by_role("button", name="Export CSV")).to_have_count(0)
    assert tab.problems == []

    async with console_client(console_url, investor) as http:
        assert (await http.get("/app/kpis/arr")).status_code == 404  # not shared, as the API's metric_not_shared
        for path in ("/app/kpis/mrr/movements", f"/app/kpis/mrr/explain?start={kpix.month(0)}"):
            assert (await http.get(path)).status_code == 403, path
        page = await http.get("/app/kpis/mrr")
        refused = await http.post("/app/kpis/mrr/export", data={"format": "csv", "csrf_token": csrf_of(page.text)})
        assert refused.status_code == 403


async def test_analysts_see_the_dashboard(console_url: str, client: httpx.AsyncClient, kpix: Billing) -> None:
    analyst = await add_member(client, kpix.account, "analyst")
    cards = (await api_data(client, analyst, "/dashboard"))["cards"]
    async with console_client(console_url, analyst) as http:
        home = await http.get("/app/")
        assert home.status_code == 200
        assert re.findall(r'data-metric="(\w+)"', home.text) == [card["metric"] for card in cards]
        assert show("mrr", cards[0]["value"]) in home.text
        assert (await http.get("/app/kpis/mrr/movements")).status_code == 200


async def test_another_orgs_ids_are_not_found_and_an_empty_org_is_told_what_to_do(
    console_url: str, client: httpx.AsyncClient, kpix: Billing, other_founder: Account
) -> None:
    founder = kpix.account
    created = await client.post(
        "/api/v1/dashboard/goals",
        headers=founder.headers,
        json={"metric": "customers", "target": 10, "targetDate": (kpix.today + dt.timedelta(days=30)).isoformat()},
    )
    assert created.status_code == 201, created.text
    goal_id = created.json()["data"]["id"]
    async with console_client(console_url, founder) as http:
        page = await http.get("/app/kpis/mrr")
        exported = await http.post("/app/kpis/mrr/export", data={"format": "csv", "csrf_token": csrf_of(page.text)})
        assert exported.status_code == 303, exported.text
        job_path = exported.headers["location"]
        assert (await http.get(job_path)).status_code == 200
        assert (await http.get(f"/app/goals/{goal_id}")).status_code == 200
    async with console_client(console_url, other_founder) as http:
        home = await http.get("/app/")
        assert "Connect Stripe to see MRR" in home.text and 'href="/app/integrations"' in home.text
        assert (await http.get("/app/kpis/mrr")).status_code == 404  # no values of mrr in this org
        for path in (f"/app/goals/{goal_id}", job_path, f"/app/goals/{uuid.uuid4()}", "/app/kpis/Not-A-Metric"):
            assert (await http.get(path)).status_code == 404, path
