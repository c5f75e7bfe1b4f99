"""The DevBizOps API: the DORA report per scope with bands and team names, repositories and their teams, who may
read and change them, and another org's objects answered as missing."""

from __future__ import annotations

import uuid

import httpx

from northstar.core.db import Database
from northstar.demo.engineering_history import generate
from northstar.devbizops import service
from northstar.metrics import service as metrics_service
from tests.devbizops.conftest import create_team, store_history
from tests.factories import Account, add_member


async def _history(client: httpx.AsyncClient, database: Database, founder: Account) -> uuid.UUID:
    team = await create_team(client, founder, "Platform")
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        today = await metrics_service.org_today(session, org_id=founder.org_id)
    await store_history(database, founder, generate(repositories=3, months=4, end=today, teams=[team], seed=3))
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await service.recompute(session, org_id=founder.org_id)
    return team


async def test_the_report_has_every_scope_with_bands_and_trends(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    team = await _history(client, database, founder)
    response = await client.get("/api/v1/devbizops/dora", headers=founder.headers, params={"months": 4})
    assert response.status_code == 200, response.text
    scopes = response.json()["data"]
    assert [scope["kind"] for scope in scopes] == ["overall", "team", "repository", "repository", "repository"]
    assert scopes[1]["name"] == "Platform" and scopes[1]["dims"] == f"team={team}"
    overall = scopes[0]
    assert len(overall["months"]) == 4
    for metric in ("deploymentFrequency", "leadTimeHours", "changeFailureRate", "timeToRestoreHours"):
        assert overall[metric]["band"] in ("elite", "high", "medium", "low"), metric
        assert len(overall[metric]["trend"]) == 4
    assert set(overall["flow"]) >= {"throughput", "workInProgress", "reviewLoad", "pickupTimeHours"}
    only_teams = await client.get("/api/v1/devbizops/dora", headers=founder.headers, params={"scope": "team"})
    assert [scope["kind"] for scope in only_teams.json()["data"]] == ["team"]
    bad = await client.get("/api/v1/devbizops/dora", headers=founder.headers, params={"months": 0})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"


async def test_a_repository_moves_to_a_team_and_its_metrics_follow(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    await _history(client, database, founder)
    other_team = await create_team(client, founder, "Growth")
    repositories = (await client.get("/api/v1/devbizops/repositories", headers=founder.headers)).json()
    assert repositories["meta"]["total"] == 3
    unteamed = next(repo for repo in repositories["data"] if repo["teamId"] is None)
    moved = await client.patch(
        f"/api/v1/devbizops/repositories/{unteamed['id']}", headers=founder.headers, json={"teamId": str(other_team)}
    )
    assert moved.status_code == 200 and moved.json()["data"]["teamId"] == str(other_team)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await service.recompute(session, org_id=founder.org_id)
    growth = await client.get("/api/v1/devbizops/dora", headers=founder.headers, params={"scope": "team"})
    assert "Growth" in {scope["name"] for scope in growth.json()["data"]}
    listed = await client.get(
        "/api/v1/devbizops/repositories", headers=founder.headers, params={"teamId": str(other_team)}
    )
    assert [repo["id"] for repo in listed.json()["data"]] == [unteamed["id"]]
    unknown = await client.patch(
        f"/api/v1/devbizops/repositories/{unteamed['id']}", headers=founder.headers, json={"teamId": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404
    extra = await client.patch(
        f"/api/v1/devbizops/repositories/{unteamed['id']}", headers=founder.headers, json={"team": None}
    )
    assert extra.status_code == 422


async def test_roles_and_other_orgs(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database: Database
) -> None:
    await _history(client, database, founder)
    repository = (await client.get("/api/v1/devbizops/repositories", headers=founder.headers)).json()["data"][0]
    path = f"/api/v1/devbizops/repositories/{repository['id']}"
    member = await add_member(client, founder, "member")
    investor = await add_member(client, founder, "investor")
    assert (await client.get("/api/v1/devbizops/dora", headers=member.headers)).status_code == 200
    assert (await client.patch(path, headers=member.headers, json={"teamId": None})).status_code == 403
    assert (await client.get("/api/v1/devbizops/dora", headers=investor.headers)).status_code == 403
    assert (await client.get(path, headers=other_founder.headers)).status_code == 404
    theirs = await client.get("/api/v1/devbizops/dora", headers=other_founder.headers)
    assert theirs.status_code == 200 and theirs.json()["data"] == []
    other_team = await create_team(client, other_founder, "Theirs")
    stolen = await client.patch(path, headers=founder.headers, json={"teamId": str(other_team)})
    assert stolen.status_code == 404  # another org's team is not one of this org's


async def test_the_dashboard_and_goals_read_the_engineering_metrics_unchanged(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    await _history(client, database, founder)
    lead = await client.get(
        "/api/v1/dashboard/series", headers=founder.headers, params={"metric": "lead_time_hours", "grain": "month"}
    )
    assert lead.status_code == 200, lead.text
    assert lead.json()["data"]["grain"] == "month" and len(lead.json()["data"]["points"]) >= 4
    daily = await client.get(
        "/api/v1/dashboard/series", headers=founder.headers, params={"metric": "deployments", "grain": "day"}
    )
    assert daily.status_code == 200 and daily.json()["data"]["points"]
    goal = await client.post(
        "/api/v1/dashboard/goals",
        headers=founder.headers,
        json={"metric": "deployments", "target": 100, "targetDate": "2030-01-01"},
    )
    assert goal.status_code == 201, goal.text
    goals = (await client.get("/api/v1/dashboard/goals", headers=founder.headers)).json()["data"]
    assert [found["metric"] for found in goals] == ["deployments"] and goals[0]["current"] is not None
