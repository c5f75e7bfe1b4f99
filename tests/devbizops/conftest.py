"""DevBizOps harness: an organization's engineering history stored as a sync would store it."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import Database, settings_of
from northstar.demo.engineering_history import History
from northstar.devbizops import service
from northstar.integrations.grants import seal
from tests.factories import Account


async def create_team(client: httpx.AsyncClient, account: Account, name: str) -> uuid.UUID:
    response = await client.post("/api/v1/teams", headers=account.headers, json={"name": name})
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def paused_integration(session: AsyncSession, org_id: uuid.UUID, provider: str) -> uuid.UUID:
    """An integration of ``provider`` as connecting leaves it (its credentials sealed with the platform's key), but
    paused, so no sync runs: the rows a test stores stand for what its syncs would have written."""
    integration_id = uuid.uuid4()
    await session.execute(
        text(
            "INSERT INTO integrations.integrations (id, org_id, provider, name, status, config,"
            " credentials_encrypted) VALUES (:id, :org, :provider, :provider, 'paused', '{}', :sealed)"
        ),
        {
            "id": integration_id,
            "org": org_id,
            "provider": provider,
            "sealed": seal(settings_of(session), integration_id, {"access_token": "unused"}),
        },
    )
    return integration_id


async def store_history(database: Database, account: Account, history: History) -> uuid.UUID:
    """The history under a GitHub integration of the account's org, each repository in its team; returns the
    integration's id."""
    async with database.tenant_transaction(org_id=account.org_id) as session:
        integration_id = await paused_integration(session, account.org_id, "github")
        await service.store_batch(session, org_id=account.org_id, integration_id=integration_id, batch=history.batch)
        for repo, team in history.teams.items():
            if team is not None:
                await session.execute(
                    text("UPDATE devbizops.repositories SET team_id = :team WHERE external_id = :repo"),
                    {"team": team, "repo": repo},
                )
    return integration_id
