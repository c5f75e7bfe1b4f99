"""DevBizOps harness: an organization's engineering history stored as a sync would store it."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.engineering_history import History
from northstar.devbizops import service
from tests.factories import Account


async def create_team(client: httpx.AsyncClient, account: Account, name: str) -> uuid.UUID:
    response = await client.post("/api/v1/teams", headers=account.headers, json={"name": name})
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def store_history(database: Database, account: Account, history: History) -> uuid.UUID:
    """The history under a GitHub integration of the account's org, each repository in its team; returns the
    integration's id."""
    integration_id = uuid.uuid4()
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await session.execute(
            text(
                "INSERT INTO integrations.integrations (id, org_id, provider, name, status, config,"
                " credentials_encrypted) VALUES (:id, :org, 'github', 'GitHub', 'paused', '{}', 'sealed')"
            ),
            {"id": integration_id, "org": account.org_id},
        )
        await service.store_batch(session, org_id=account.org_id, integration_id=integration_id, batch=history.batch)
        for repo, team in history.teams.items():
            if team is not None:
                await session.execute(
                    text("UPDATE devbizops.repositories SET team_id = :team WHERE external_id = :repo"),
                    {"team": team, "repo": repo},
                )
    return integration_id
