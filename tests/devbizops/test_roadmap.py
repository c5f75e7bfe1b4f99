"""The roadmap and RoadmapAgent on a scripted timeline: an org that finished 24 work items in the last eight weeks
(three a week) and three roadmap items, one done, one started, one too big for its quarter, with customers and
deals waiting on them. The agent proposes shipping, starting, slipping (to the first quarter with room at that
pace) and re-ranking by demand, each with its numbers; approving applies the change and pushes it to the org's
event stream; members run the agent but do not decide."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
import psycopg
from opentelemetry import trace
from sqlalchemy import text

from northstar.core.db import Database
from northstar.core.pubsub import CHANNEL
from northstar.devbizops import roadmap, service
from northstar.devbizops.inputs import EngineeringBatch, WorkItem, WorkStatus
from northstar.devbizops.service import agents
from tests.devbizops.conftest import paused_integration
from tests.factories import Account, add_member

NOW = dt.datetime.now(dt.UTC)


def _item(key: str, status: WorkStatus, *, done_days_ago: int | None = None) -> WorkItem:
    completed = NOW - dt.timedelta(days=done_days_ago) if done_days_ago is not None else None
    return WorkItem(
        external_id=key,
        key=key,
        title=key,
        status=status,
        created_at=NOW - dt.timedelta(days=90),
        completed_at=completed,
    )


async def _timeline(database: Database, account: Account) -> dict[str, uuid.UUID]:
    org = account.org_id
    async with database.tenant_transaction(org_id=org) as session:
        integration = await paused_integration(session, org, "jira")
        stripe = await paused_integration(session, org, "stripe")
        work = [_item(f"DONE-{n}", "done", done_days_ago=2 * n + 1) for n in range(24)]  # 24 in the last 8 weeks
        work += [_item(f"OLD-{n}", "done", done_days_ago=100) for n in range(5)]  # before the window
        work += [_item("SSO-1", "done", done_days_ago=200), _item("SSO-2", "done", done_days_ago=200)]
        work += [_item("AUD-1", "in_progress"), *(_item(f"AUD-{n}", "todo") for n in range(2, 5))]
        work += [_item(f"MOB-{n}", "todo") for n in range(1, 41)]  # 40 to go
        work += [_item("MOB-41", "canceled")]
        await service.store_batch(
            session, org_id=org, integration_id=integration, batch=EngineeringBatch(work_items=work)
        )
        customer = await session.scalar(
            text(
                "INSERT INTO metrics.customers (org_id, integration_id, external_id, name) VALUES"
                " (:org, :integration, 'c1', 'Initech') RETURNING id"
            ),
            {"org": org, "integration": stripe},
        )
        await session.execute(
            text(
                "INSERT INTO metrics.movements (org_id, customer_id, day, kind, amount, lines) VALUES"
                " (:org, :customer, :day, 'new', 20000, '{}')"
            ),
            {"org": org, "customer": customer, "day": dt.date.today() - dt.timedelta(days=30)},
        )
        ids = {
            row.key: row.id for row in (await session.execute(text("SELECT key, id FROM devbizops.work_items"))).all()
        }
        await session.execute(
            text(
                "INSERT INTO devbizops.links (org_id, work_item_id, customer_id, source)"
                " VALUES (:org, :item, :c, 'manual')"
            ),
            {"org": org, "item": ids["MOB-1"], "c": customer},
        )
    return {**ids, "customer": customer}


async def _create(
    client: httpx.AsyncClient, account: Account, title: str, quarter: str, keys: list[uuid.UUID]
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/devbizops/roadmap",
        headers=account.headers,
        json={"title": title, "targetQuarter": quarter, "workItemIds": [str(key) for key in keys]},
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def test_the_agent_proposes_shipping_starting_slipping_and_ranking_with_its_numbers(
    client: httpx.AsyncClient, founder: Account, database: Database, database_url: str
) -> None:
    ids = await _timeline(database, founder)
    quarter = roadmap.quarter_of(dt.date.today())
    sso = await _create(client, founder, "SSO", quarter, [ids["SSO-1"], ids["SSO-2"]])
    audit = await _create(client, founder, "Audit export", quarter, [ids[f"AUD-{n}"] for n in range(1, 5)])
    mobile = await _create(client, founder, "Mobile app", quarter, [ids[f"MOB-{n}"] for n in range(1, 42)])
    listed = (await client.get("/api/v1/devbizops/roadmap", headers=founder.headers)).json()["data"]
    assert [(item["title"], item["rank"], item["workItems"], item["done"], item["started"]) for item in listed] == [
        ("SSO", 1, 2, 2, 2), ("Audit export", 2, 4, 0, 1), ("Mobile app", 3, 40, 0, 0)
    ]  # fmt: skip
    assert listed[2]["demand"] == {"amount": 12 * 20000, "currency": "USD"}

    member = await add_member(client, founder, "member")
    started = await client.post("/api/v1/devbizops/agents/roadmap/runs", headers=member.headers)
    assert started.status_code == 202, started.text
    run_id = uuid.UUID(started.json()["data"]["id"])
    async with database.tenant_transaction(org_id=founder.org_id) as session:  # as the worker runs it
        await agents.execute(session, org_id=founder.org_id, run_id=run_id, model=None, tracer=trace.NoOpTracer())
    run = (await client.get(f"/api/v1/devbizops/agents/runs/{run_id}", headers=founder.headers)).json()["data"]
    assert run["status"] == "succeeded", run
    assert [step["name"] for step in run["steps"]] == ["gather", "propose"]
    assert run["steps"][0]["detail"]["perWeek"] == 3.0
    by_kind = {(proposal["kind"], proposal["requirement"]["title"]): proposal for proposal in run["proposals"]}
    assert by_kind[("roadmap_status", "SSO")]["requirement"]["change"] == {"status": "shipped"}
    assert by_kind[("roadmap_status", "Audit export")]["requirement"]["change"] == {"status": "in_progress"}
    slip = by_kind[("roadmap_slip", "Mobile app")]["requirement"]
    numbers = slip["numbers"]
    assert numbers["remaining"] == 40 and numbers["perWeek"] == 3.0
    assert numbers["remaining"] > numbers["perWeek"] * numbers["weeksLeft"]  # it does not fit
    target = slip["change"]["targetQuarter"]
    assert target > quarter
    weeks = ((roadmap.quarter_end(target) - dt.date.today()).days + 1) / 7
    assert 3 * weeks >= 40  # and fits in the quarter proposed
    assert "40 work items remain" in slip["reason"]
    ranks = {
        title: proposal["requirement"]["change"]["rank"]
        for (kind, title), proposal in by_kind.items()
        if kind == "roadmap_rank"
    }
    assert ranks == {"Mobile app": 1, "SSO": 2, "Audit export": 3}  # the most demand first, then the ranks as they were

    decide = f"/api/v1/devbizops/proposals/{by_kind[('roadmap_slip', 'Mobile app')]['id']}/approve"
    assert (await client.post(decide, headers=member.headers, json={})).status_code == 403
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {CHANNEL}")
        approved = await client.post(decide, headers=founder.headers, json={})
        assert approved.status_code == 200 and approved.json()["data"]["status"] == "applied", approved.text
        notice = await anext(listener.notifies(timeout=10))
    event = orjson.loads(notice.payload)
    assert event["topic"] == "devbizops.roadmap" and event["data"]["targetQuarter"] == target
    moved = next(
        item
        for item in (await client.get("/api/v1/devbizops/roadmap", headers=founder.headers)).json()["data"]
        if item["id"] == mobile["id"]
    )
    assert moved["targetQuarter"] == target
    assert sso["status"] == "planned" and audit["rank"] == 2


async def test_roadmap_input_checks_and_other_orgs(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    ids = await _timeline(database, founder)
    path = "/api/v1/devbizops/roadmap"
    assert (
        await client.post(path, headers=founder.headers, json={"title": "X", "targetQuarter": "2027-Q5"})
    ).status_code == 422
    foreign = await client.post(
        path,
        headers=other_founder.headers,
        json={"title": "X", "targetQuarter": "2027-Q1", "workItemIds": [str(ids["AUD-1"])]},
    )
    assert foreign.status_code == 422  # another org's work item
    made = await _create(client, founder, "Audit", "2027-Q1", [ids["AUD-1"]])
    assert (
        await client.patch(f"{path}/{made['id']}", headers=other_founder.headers, json={"rank": 1})
    ).status_code == 404
    assert (await client.get(path, headers=other_founder.headers)).json()["data"] == []
    member = await add_member(client, founder, "member")
    assert (
        await client.post(path, headers=member.headers, json={"title": "Y", "targetQuarter": "2027-Q1"})
    ).status_code == 403
    updated = await client.patch(
        f"{path}/{made['id']}", headers=founder.headers, json={"status": "dropped", "workItemIds": []}
    )
    assert updated.json()["data"]["status"] == "dropped" and updated.json()["data"]["workItems"] == 0
    assert (await client.delete(f"{path}/{made['id']}", headers=founder.headers)).status_code == 204
