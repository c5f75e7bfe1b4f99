"""InvestorDashboardAgent: the engine's facts, risks and narrative on a scripted org (every number checked, and the
check bites); then the agent end to end on a real org (written by DevBizOps, published by the reports module as the
worker's reaction would), its page and PDF, a model that lies, the roles (investors read the dashboard and nothing
else of DevBizOps), share links, and other orgs."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace

from northstar.core.db import Database
from northstar.core.documents import Chart
from northstar.core.numbers import tokens, unsupported
from northstar.demo.engineering_history import generate
from northstar.devbizops import dora, investors, roadmap
from northstar.devbizops import service as engineering
from northstar.devbizops.service import agents
from northstar.metrics.statements import Fact
from northstar.reports.service import publishing
from tests.devbizops.conftest import create_team, store_history
from tests.factories import Account, add_member
from tests.fakes.llm_server import FakeLlm
from tests.metrics.test_queries import Billing, billing  # noqa: F401  (the fixture)
from tests.reports.test_coach_model import fake  # noqa: F401  (the fixture: the app's model on a fake server)

TODAY = dt.date(2026, 12, 7)
MONTHS = [dt.date(2025 + (11 + n) // 12, (11 + n) % 12 + 1, 1) for n in range(13)]  # December 2025 to 2026


def _series(**overrides: list[Any]) -> investors.Engineering:
    """Thirteen months; November 2026 (the last one over) has 142 deployments, a change failure rate that fell
    from the elite band to the high one, and December so far has only a few days."""
    values: dict[str, list[Any]] = {metric: [None] * 13 for metric in dora.MONTH_METRICS}
    values["deployments"] = [80 + 5 * n for n in range(11)] + [142, 9]
    values["deployment_frequency_band"] = [dora.ELITE] * 13
    values["lead_time_hours"] = [Decimal("30.25")] * 11 + [Decimal("26.50"), Decimal("20.00")]
    values["lead_time_band"] = [dora.HIGH] * 11 + [dora.ELITE, dora.ELITE]
    values["change_failure_rate"] = [Decimal("10.0000")] * 11 + [Decimal("18.7500"), Decimal("0")]
    values["change_failure_band"] = [dora.ELITE] * 11 + [dora.HIGH, dora.ELITE]
    values["time_to_restore_hours"] = [Decimal("3.10")] * 13
    values["time_to_restore_band"] = [dora.HIGH] * 13
    values["throughput"] = [300] * 11 + [310, 20]
    values["work_items_done"] = [60 + n for n in range(11)] + [95, 4]
    values.update(overrides)
    return investors.Engineering(MONTHS, values)


def _item(title: str, status: str, quarter: str, rank: int, total: int, done: int, demand: int) -> roadmap.ItemFacts:
    return roadmap.ItemFacts(
        id=uuid.uuid5(uuid.NAMESPACE_URL, title),
        title=title,
        status=status,
        target_quarter=quarter,
        rank=rank,
        total=total,
        done=done,
        started=done,
        demand=demand,
    )


STATE = investors.RoadmapState(
    items=[
        _item("Okta single sign-on", "in_progress", "2026-Q4", 1, 30, 4, 12_000_000),  # 26 left, ~3.6 weeks at 2
        _item("Audit log export", "in_progress", "2026-Q4", 2, 40, 3, 0),  # slips, but nothing waits on it
        _item("Usage billing", "shipped", "2026-Q4", 3, 6, 6, 0),
        _item("Mobile app", "planned", "2027-Q2", 4, 20, 0, 4_500_000),
    ],
    pace=Fraction(2),
    currency="USD",
    exponent=2,
)
MRR = "MRR in December 2026: 225.00 USD, down 40.00 USD (15.1 %) from 265.00 USD."
GOAL = "Goal: ARR at 5,000.00 USD by 2026-12-31, now 2,700.00 USD: at risk."
KPIS = investors.Kpis(
    facts=[
        Fact("kpi.mrr", MRR, {"metric": "mrr", "change": -4000}),
        Fact("goal.1", GOAL, {"metric": "arr", "status": "at_risk"}),
    ],
    mrr=Chart("MRR by month", ["Nov 2026", "Dec 2026"], [Decimal("265"), Decimal("225")], "USD"),
)


def _build(**changes: Any) -> investors.Dashboard:
    given: dict[str, Any] = {"org_name": "Acme", "kpis": KPIS, "engineering": _series(), "state": STATE, "today": TODAY}
    return investors.build(**(given | changes))


def test_the_dashboard_reports_the_last_month_over_with_its_risks_in_order() -> None:
    dashboard = _build()
    assert dashboard.month == dt.date(2026, 11, 1) and dashboard.title == "Acme: investor dashboard, November 2026"
    facts = {fact.id: fact.text for fact in dashboard.facts}
    assert facts["eng.deployments"] == "Deployments in November 2026: 142 (October 2026: 130), elite band."
    assert facts["eng.lead_time_hours"] == (
        "Lead time for changes in November 2026: 26.5 hours (October 2026: 30.2 hours), elite band."
    )
    assert facts["eng.change_failure_rate"].startswith("Change failure rate in November 2026: 18.8 % (October")
    assert facts["eng.velocity"] == "In November 2026 the team merged 310 changes and finished 95 work items."
    assert (
        facts["eng.trend.deployments"] == "Deployments a month rose from 80 in December 2025 to 142 in November 2026."
    )
    assert facts["roadmap.summary"] == "The roadmap holds 4 items: 1 planned, 2 in progress, 1 shipped."
    assert facts["roadmap.quarter"] == "Of the 3 items targeted for 2026-Q4, 1 is shipped."
    assert [risk.kind for risk in dashboard.risks] == ["slip_with_demand", "band", "mrr_down", "goal_at_risk", "slip"]
    slip = dashboard.risks[0].fact.text
    assert slip.startswith("Okta single sign-on may miss 2026-Q4: 26 work items remain and 3.6 weeks are left")
    assert "120,000.00 USD of ARR and open pipeline waits on it." in slip
    assert dashboard.risks[1].fact.text.startswith("Change failure rate fell from the elite band to the high band.")
    assert [chart.title for chart in dashboard.charts] == [
        "MRR by month",
        "Deployments a month",
        "Lead time for changes (median)",
        "Change failure rate",
        "Work items finished a month",
    ]
    assert len(dashboard.charts[1].values) == 12  # December 2025 to November 2026: the partial month is left out
    assert dashboard.tables[0].rows[0] == ("Okta single sign-on", "in progress", "2026-Q4", "4 of 30", "120,000.00 USD")


def test_every_number_of_the_dashboard_is_a_facts_and_the_check_bites() -> None:
    dashboard = _build()
    stated = [fact.text for fact in dashboard.facts]
    text = "\n\n".join([*dashboard.prose, dashboard.risk_block()])
    assert len(tokens(text)) > 40 and unsupported(text, stated) == []
    cells = [cell for table in dashboard.tables for row in table.rows for cell in row]
    assert unsupported("\n".join(cells + [said for _, said in dashboard.metrics]), stated) == []
    assert set(unsupported(text.replace("142", "143"), stated)) == {"143 (plain)"}
    assert set(unsupported(text.replace("120,000.00 USD", "125,000.00 USD"), stated)) == {"125000.00 (money:USD)"}


def test_a_quiet_org_has_no_risk_and_a_new_one_no_month_yet() -> None:
    calm = investors.RoadmapState(
        items=[_item("Audit log export", "in_progress", "2026-Q4", 1, 4, 3, 0)], pace=Fraction(2), currency="USD",
        exponent=2,
    )  # fmt: skip
    steady = _series(change_failure_band=[dora.ELITE] * 13)
    quiet = _build(kpis=replace(KPIS, facts=[]), engineering=steady, state=calm)
    assert quiet.risks == [] and quiet.risk_block().startswith("No risk stands out")
    empty = investors.Engineering([], {metric: [] for metric in dora.MONTH_METRICS})
    new = _build(engineering=empty, state=investors.RoadmapState([], Fraction(0), "USD", 2))
    assert new.month is None and new.charts == [KPIS.mrr] and new.tables == []
    assert "no month of engineering data is complete yet" in new.prose[-1]


# -- the agent on a real org -----------------------------------------------------------------------------------------


@pytest.fixture
async def investing(client: httpx.AsyncClient, database: Database, billing: Billing) -> Account:  # noqa: F811
    """The founder of the billing org, sharing MRR and customers with investors, with a year of engineering and a
    roadmap."""
    founder = billing.account
    shared = {"investorMetrics": ["mrr", "customers"]}
    assert (await client.patch("/api/v1/metrics/settings", headers=founder.headers, json=shared)).status_code == 200
    team = await create_team(client, founder, "Platform")
    await store_history(
        database, founder, generate(repositories=3, months=13, end=billing.today, teams=[team], seed=11)
    )
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await engineering.recompute(session, org_id=founder.org_id)
    quarter = roadmap.quarter_of(billing.today)
    for title in ("Okta single sign-on", "Audit log export"):
        made = await client.post(
            "/api/v1/devbizops/roadmap", headers=founder.headers, json={"title": title, "targetQuarter": quarter}
        )
        assert made.status_code == 201, made.text
    return founder


async def finish_run(app: FastAPI, database: Database, org_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """What the workers do with a queued dashboard run: DevBizOps writes it, then the reports module publishes it."""
    async with database.tenant_transaction(org_id=org_id) as session:
        await agents.execute(session, org_id=org_id, run_id=run_id, model=app.state.llm, tracer=trace.NoOpTracer())
    async with database.tenant_transaction(org_id=org_id) as session:
        store, url = app.state.storage, app.state.settings.public_url
        assert await publishing.publish_written(session, org_id=org_id, store=store, public_url=url) == 1


async def _run(
    app: FastAPI, client: httpx.AsyncClient, database: Database, account: Account, **body: Any
) -> dict[str, Any]:
    started = await client.post("/api/v1/devbizops/agents/investor-dashboard/runs", headers=account.headers, json=body)
    assert started.status_code == 202, started.text
    run_id = uuid.UUID(started.json()["data"]["id"])
    await finish_run(app, database, account.org_id, run_id)
    run = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=account.headers)).json()["data"]
    assert run["status"] == "succeeded", run
    return dict(run)


async def _dashboard(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/api/v1/investor-dashboard", headers=account.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def test_the_agent_publishes_a_page_and_pdf_stating_only_its_facts(
    app: FastAPI, client: httpx.AsyncClient, database: Database, investing: Account
) -> None:
    founder = investing
    member = await add_member(client, founder, "member")
    run = await _run(app, client, database, member)
    assert [step["name"] for step in run["steps"]] == ["gather", "write", "verify", "publish"]
    assert run["steps"][2]["detail"]["unsupported"] == [] and run["steps"][2]["detail"]["numbers"] > 10
    assert run["steps"][3]["detail"]["reportId"] == run["output"]["reportId"] and "document" not in run["output"]
    assert run["generator"] == "deterministic" and run["proposals"] == []
    again = await client.post(f"/api/v1/devbizops/agents/runs/{run['id']}/replay", headers=member.headers)
    assert again.status_code == 202 and again.json()["data"]["agent"] == "investor_dashboard"
    assert again.json()["data"]["replayOf"] == run["id"] and again.json()["data"]["mode"] == "deterministic"
    published = await _dashboard(client, founder)
    assert published["reportId"] == run["output"]["reportId"]
    stated = [fact["text"] for fact in published["facts"]]
    assert {fact["id"] for fact in published["facts"]} >= {"kpi.mrr", "eng.deployments", "roadmap.summary"}
    assert unsupported(published["narrative"], stated) == []
    assert "225.00 USD" in published["narrative"] and "Deployments in" in published["narrative"]
    assert published["risks"] and published["risks"][0] in published["narrative"]
    assert "cus_" not in published["narrative"] and "ARPA" not in published["narrative"]  # shared metrics only
    async with httpx.AsyncClient() as browser:  # the expiring links, followed without credentials
        page = await browser.get(published["files"]["html"]["url"])
        pdf = await browser.get(published["files"]["pdf"]["url"])
    assert page.status_code == 200 and page.text.count("<svg") >= 4 and "Deployments a month" in page.text
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and b"/Image" in pdf.content

    share = await client.post(
        f"/api/v1/reports/{published['reportId']}/shares",
        headers=founder.headers,
        json={"label": "Seed investors", "expiresInDays": 14},
    )
    assert share.status_code == 201, share.text
    opened = await client.get(share.json()["data"]["url"].removeprefix("http://127.0.0.1:8000"))
    assert opened.status_code == 200 and "investor dashboard" in opened.text


async def test_a_lying_model_is_refused_and_an_honest_one_is_used(
    app: FastAPI,
    client: httpx.AsyncClient,
    database: Database,
    investing: Account,
    fake: FakeLlm,  # noqa: F811
) -> None:
    founder = investing
    lie = {"paragraphs": ["MRR tripled to 9,999.00 USD and the team ships 500 deployments a day."]}
    fake.answer(lie)
    fake.answer(lie)
    refused = await _run(app, client, database, founder, mode="llm")
    assert refused["generator"] == "deterministic"
    checks = refused["steps"][1]["detail"]["checks"]
    assert "9999.00 (money:USD)" in checks[0] and checks[-1] == "the deterministic text is used"
    assert "9,999.00" not in (await _dashboard(client, founder))["narrative"]

    honest = {"paragraphs": ["Acme's MRR was 225.00 USD this month, with 5 customers."]}
    fake.answer(honest)
    used = await _run(app, client, database, founder, mode="llm")
    assert used["generator"] == "llm:fake-model-1"
    narrative = (await _dashboard(client, founder))["narrative"]
    assert narrative.startswith("Acme's MRR was 225.00 USD this month") and "Top risks:" in narrative
    assert "Facts:" in fake.sent() and "cus_" not in fake.sent()


async def test_investors_read_the_dashboard_and_nothing_else_of_devbizops(
    app: FastAPI, client: httpx.AsyncClient, database: Database, investing: Account, other_founder: Account
) -> None:
    founder = investing
    investor = await add_member(client, founder, "investor")
    none_yet = await client.get("/api/v1/investor-dashboard", headers=investor.headers)
    assert none_yet.status_code == 404 and none_yet.json()["error"]["code"] == "no_dashboard"
    run = await _run(app, client, database, founder)
    assert (await _dashboard(client, investor))["reportId"] == run["output"]["reportId"]
    for path in (
        "/api/v1/devbizops/dora",
        "/api/v1/devbizops/repositories",
        "/api/v1/devbizops/work-items",
        "/api/v1/devbizops/roadmap",
        "/api/v1/devbizops/agents/runs",
        f"/api/v1/devbizops/agents/runs/{run['id']}",
    ):
        assert (await client.get(path, headers=investor.headers)).status_code == 403, path
    refused = await client.post("/api/v1/devbizops/agents/investor-dashboard/runs", headers=investor.headers, json={})
    assert refused.status_code == 403
    reports = (await client.get("/api/v1/reports", headers=investor.headers)).json()["data"]
    assert [report["kind"] for report in reports] == ["investor_dashboard"]
    analyst = await add_member(client, founder, "analyst")
    assert (await _dashboard(client, analyst))["reportId"] == run["output"]["reportId"]
    assert (
        await client.post("/api/v1/devbizops/agents/investor-dashboard/runs", headers=analyst.headers, json={})
    ).status_code == 403

    theirs = await client.get("/api/v1/investor-dashboard", headers=other_founder.headers)
    assert theirs.status_code == 404
    assert (
        await client.get(f"/api/v1/devbizops/agents/runs/{run['id']}", headers=other_founder.headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/v1/reports/{run['output']['reportId']}", headers=other_founder.headers)
    ).status_code == 404
    bad = await client.post(
        "/api/v1/devbizops/agents/investor-dashboard/runs", headers=founder.headers, json={"mode": "oracle"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_a_document_altered_after_its_check_is_refused_at_publication(
    app: FastAPI, client: httpx.AsyncClient, database: Database, investing: Account
) -> None:
    founder = investing
    started = await client.post("/api/v1/devbizops/agents/investor-dashboard/runs", headers=founder.headers, json={})
    run_id = uuid.UUID(started.json()["data"]["id"])
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await agents.execute(session, org_id=founder.org_id, run_id=run_id, model=None, tracer=trace.NoOpTracer())
        run = await agents.get_run(session, org_id=founder.org_id, run_id=run_id)
        assert run.status == "running" and run.output is not None  # written, waiting to be published
        document = dict(run.output["document"])
        document["blocks"] = [["MRR grew 900.0 % this month.", []], *document["blocks"]]
        run.output = {**run.output, "document": document}
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        store, url = app.state.storage, app.state.settings.public_url
        assert await publishing.publish_written(session, org_id=founder.org_id, store=store, public_url=url) == 0
    found = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=founder.headers)).json()["data"]
    assert found["status"] == "failed" and "900.0 (percent)" in found["error"]
    assert found["steps"][-1]["name"] == "publish" and "reportId" not in found["output"]
    missing = await client.get("/api/v1/investor-dashboard", headers=founder.headers)
    assert missing.status_code == 404
