"""TechTranslator runs end to end with a real worker: a call read into proposals, approvals only by founders and
admins (audited), approved tickets filed in the fake Jira and Linear and linked to the deal, an existing work item
commented on instead of a duplicate, rejections, replays, and other orgs kept out."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.jira_api import FakeJira
from northstar.demo.linear_api import FakeLinear
from northstar.demo.loopback import serving
from northstar.metrics import service as metrics_service
from northstar.metrics.inputs import PipelineDeal, SourceBatch
from tests.devbizops.conftest import paused_integration
from tests.devbizops.transcripts import CALLS
from tests.factories import Account, add_member
from tests.integrations.conftest import connect, wait_for_sync
from tests.workers import Workers

CALL = CALLS[0].transcript


async def _deal(database: Database, account: Account) -> dict[str, str]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        hubspot = await paused_integration(session, account.org_id, "hubspot")
        deal = PipelineDeal(
            external_id="77", name="Globex", pipeline="default", stage="contractsent", amount=5_000_000,
            currency="USD", created_at=None, close_date=None, closed=False, won=False,
        )  # fmt: skip
        await metrics_service.store_batch(
            session, org_id=account.org_id, integration_id=hubspot, batch=SourceBatch(deals=[deal])
        )
    return {"integrationId": str(hubspot), "externalId": "77"}


async def _run(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    started = await client.post(
        "/api/v1/devbizops/agents/tech-translator/runs",
        headers=account.headers,
        json={"transcript": CALL, "customer": "Globex", **body},
    )
    assert started.status_code == 202, started.text
    return await _finished(client, account, started.json()["data"]["id"])


async def _finished(client: httpx.AsyncClient, account: Account, run_id: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        found = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=account.headers)).json()["data"]
        if found["status"] in ("succeeded", "failed"):
            return dict(found)
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.1)


async def _proposal(
    client: httpx.AsyncClient, account: Account, run_id: str, position: int, status: str
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        run = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=account.headers)).json()["data"]
        proposal: dict[str, Any] = run["proposals"][position]
        if proposal["status"] == status:
            return proposal
        assert asyncio.get_running_loop().time() < deadline, proposal
        await asyncio.sleep(0.1)


async def test_a_call_becomes_proposals_and_approved_ones_become_jira_tickets_linked_to_the_deal(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database, worker: Workers
) -> None:
    jira = FakeJira()
    deal = await _deal(database, founder)
    async with serving(jira.app) as url:
        integration = await connect(
            client, founder, "jira", credentials={"apiToken": jira.token},
            config={"baseUrl": url, "email": jira.email, "projects": ["ENG"]},
        )  # fmt: skip
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
        run = await _run(client, founder, deal=deal)
        assert run["status"] == "succeeded", run
        assert [step["name"] for step in run["steps"]] == ["parse", "read", "propose"]
        assert run["steps"][1]["detail"]["generator"] == "deterministic" and run["generator"] == "deterministic"
        assert [proposal["kind"] for proposal in run["proposals"]] == ["create_ticket"] * 3
        sso, export, slack = run["proposals"]
        for proposal in run["proposals"]:
            for quote in proposal["requirement"]["evidence"]:
                assert CALL[quote["start"] : quote["end"]] == quote["text"]

        member = await add_member(client, founder, "member")
        approve = f"/api/v1/devbizops/proposals/{sso['id']}/approve"
        refused = await client.post(approve, headers=member.headers, json={"integrationId": integration["id"]})
        assert refused.status_code == 403  # members propose; founders and admins approve
        assert (await client.post(approve, headers=founder.headers, json={})).status_code == 422  # where to file it?
        not_a_tracker = await client.post(
            approve, headers=founder.headers, json={"integrationId": deal["integrationId"]}
        )
        assert not_a_tracker.status_code == 422 and "Jira or Linear" in not_a_tracker.json()["error"]["message"]
        assert (await client.post(approve, headers=other_founder.headers, json={})).status_code == 404
        assert jira.issues == {}  # nothing outside changed before the approval
        approved = await client.post(approve, headers=founder.headers, json={"integrationId": integration["id"]})
        assert approved.status_code == 200 and approved.json()["data"]["status"] == "approved", approved.text
        applied = await _proposal(client, founder, run["id"], 0, "applied")
        [filed] = jira.issues.values()
        assert applied["externalKey"] == filed["key"] == "ENG-1"
        assert filed["fields"]["summary"] == sso["requirement"]["title"]
        assert "We need SSO with Okta" in str(filed["fields"]["description"])

        again = await client.post(approve, headers=founder.headers, json={"integrationId": integration["id"]})
        assert again.status_code == 409 and again.json()["error"]["code"] == "proposal_decided"
        rejected = await client.post(
            f"/api/v1/devbizops/proposals/{export['id']}/reject", headers=founder.headers, json={"reason": "later"}
        )
        assert rejected.json()["data"]["status"] == "rejected" and rejected.json()["data"]["reason"] == "later"

    async with database.tenant_transaction(org_id=founder.org_id) as session:
        links = (
            await session.execute(
                text(
                    "SELECT w.key, l.source, l.deal_external_id FROM devbizops.links l"
                    " JOIN devbizops.work_items w ON w.id = l.work_item_id"
                )
            )
        ).all()
        audited = await session.scalar(
            text("SELECT count(*) FROM core.audit_events WHERE target_type = 'proposal' AND target_id = :id"),
            {"id": sso["id"]},
        )
    assert [tuple(link) for link in links] == [("ENG-1", "agent", "77")]
    assert audited >= 1
    assert slack["status"] == "proposed"
    other = await client.get(f"/api/v1/devbizops/agents/runs/{run['id']}", headers=other_founder.headers)
    assert other.status_code == 404
    investor = await add_member(client, founder, "investor")
    assert (await client.get("/api/v1/devbizops/agents/runs", headers=investor.headers)).status_code == 403


async def test_a_repeated_ask_becomes_a_comment_on_linear_and_a_run_can_be_replayed(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    linear = FakeLinear()
    existing = linear.add_issue(
        created=__import__("datetime").datetime(2026, 1, 1), title="Single sign-on with Okta (SSO)"
    )
    async with serving(linear.app) as url:
        integration = await connect(
            client, founder, "linear", credentials={"apiKey": linear.api_key}, config={"baseUrl": url}
        )
        assert (await wait_for_sync(client, founder, integration["id"]))["status"] == "succeeded"
        run = await _run(client, founder)
        sso, export, _ = run["proposals"]
        assert sso["kind"] == "add_to_work_item" and sso["requirement"]["duplicateOf"]["key"] == existing["identifier"]
        assert export["kind"] == "create_ticket"
        for proposal, body in ((sso, {}), (export, {"integrationId": integration["id"]})):
            response = await client.post(
                f"/api/v1/devbizops/proposals/{proposal['id']}/approve", headers=founder.headers, json=body
            )
            assert response.status_code == 200, response.text
        await _proposal(client, founder, run["id"], 0, "applied")
        made = await _proposal(client, founder, run["id"], 1, "applied")
        assert [comment["issueId"] for comment in linear.comments] == [existing["id"]]
        assert made["externalKey"] == "ENG-2" and any(
            issue["title"] == export["requirement"]["title"] for issue in linear.issues.values()
        )

        replayed = await client.post(f"/api/v1/devbizops/agents/runs/{run['id']}/replay", headers=founder.headers)
        assert replayed.status_code == 202, replayed.text
        second = await _finished(client, founder, replayed.json()["data"]["id"])
    assert second["replayOf"] == run["id"] and second["input"] == run["input"]
    assert [proposal["requirement"]["title"] for proposal in second["proposals"]] == [
        proposal["requirement"]["title"] for proposal in run["proposals"]
    ]
    listed = (await client.get("/api/v1/devbizops/agents/runs", headers=founder.headers)).json()
    assert listed["meta"]["total"] == 2


async def test_bad_runs_are_refused(client: httpx.AsyncClient, founder: Account) -> None:
    path = "/api/v1/devbizops/agents/tech-translator/runs"
    assert (await client.post(path, headers=founder.headers, json={"transcript": ""})).status_code == 422
    missing = await client.post(
        path, headers=founder.headers, json={"transcript": CALL, "customerId": str(uuid.uuid4())}
    )
    assert missing.status_code == 404
    deal = {"integrationId": str(uuid.uuid4()), "externalId": "1"}
    assert (
        await client.post(path, headers=founder.headers, json={"transcript": CALL, "deal": deal})
    ).status_code == 404
    analyst = await add_member(client, founder, "analyst")
    assert (await client.post(path, headers=analyst.headers, json={"transcript": CALL})).status_code == 403
