"""GitLab through its fake REST API: the engineering model and DORA metrics from a sync, paging and incremental reads
by last update, the 429 budget waited out, a killed sync resuming from its cursor, and the webhook token."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.gitlab_api import FakeGitLab
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.integrations.conftest import connect, sync_now, wait_for_sync
from tests.workers import Workers

SECRET = "gl-" + uuid.uuid4().hex
HOUR = dt.timedelta(hours=1)


def _start() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today.replace(day=1) - dt.timedelta(days=40)


async def _connect(client: httpx.AsyncClient, account: Account, fake: FakeGitLab, url: str, **config: Any) -> str:
    integration = await connect(
        client,
        account,
        "gitlab",
        credentials={"accessToken": fake.token, "webhookSecret": SECRET},
        config={"group": fake.group, "baseUrl": url, **config},
    )
    return str(integration["id"])


async def _one(database: Database, account: Account, sql: str) -> Any:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return (await session.execute(text(sql))).one()


async def _point(database: Database, account: Account, metric: str, month: dt.date) -> Any:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with database.tenant_transaction(org_id=account.org_id) as session:
            value = await session.scalar(
                text(
                    "SELECT value FROM metrics.kpis WHERE source = 'engineering' AND grain = 'month' AND dims = ''"
                    " AND metric = :metric AND day = :month"
                ),
                {"metric": metric, "month": month},
            )
        if value is not None:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"no {metric} for {month}"
        await asyncio.sleep(0.2)


async def test_a_sync_fills_the_engineering_model_and_the_dora_metrics(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitLab()
    api = fake.add_project("api")["id"]
    start = _start()
    fake.add_merge_request(
        api,
        created=start + 4 * HOUR,
        first_commit=start,
        comments=[("dev", start + 5 * HOUR), ("bo", start + 6 * HOUR)],  # the author's own comment is not a review
        approvals=[("cy", start + 7 * HOUR)],
        merged=start + 9 * HOUR,
    )
    fake.add_merge_request(api, created=start + 10 * HOUR)
    fake.add_deployment(api, created=start + 10 * HOUR, status="success", finished=start + 11 * HOUR)
    fake.add_deployment(api, created=start + 12 * HOUR, status="failed", finished=start + 13 * HOUR)
    fake.add_deployment(
        api, created=start + 12 * HOUR, status="success", finished=start + 13 * HOUR, environment="staging"
    )
    fake.add_deployment(api, created=start + 14 * HOUR, status="running", finished=None)
    fake.add_issue(api, created=start + 20 * HOUR, closed=start + 23 * HOUR, incident=True)
    fake.add_issue(api, created=start, closed=start + 30 * HOUR)
    fake.add_pipeline(api, created=start)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"projects": 1, "merge_requests": 2, "pipelines": 1, "deployments": 4, "issues": 2}
    counts = await _one(
        database,
        founder,
        "SELECT (SELECT count(*) FROM devbizops.changes), (SELECT count(*) FROM devbizops.reviews),"
        " (SELECT count(*) FROM devbizops.deployments), (SELECT count(*) FROM devbizops.incidents),"
        " (SELECT count(*) FROM devbizops.work_items), (SELECT count(*) FROM integrations.records"
        " WHERE stream = 'pipelines')",
    )
    assert tuple(counts) == (2, 2, 3, 1, 1, 1)
    month = start.date().replace(day=1)
    assert await _point(database, founder, "lead_time_hours", month) == 11  # first commit to the deployment's end
    assert await _point(database, founder, "pickup_time_hours", month) == 2  # opened to bo's comment
    assert await _point(database, founder, "review_time_hours", month) == 3
    assert await _point(database, founder, "change_failure_rate", month) == 100  # one failed, one before the incident
    assert await _point(database, founder, "time_to_restore_hours", month) == 3


async def test_pages_incremental_reads_and_the_429_budget(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitLab(limit=20, window_seconds=1.0)
    api = fake.add_project("api")["id"]
    start = _start()
    for index in range(130):
        fake.add_merge_request(api, created=start + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=1000)
        first = await wait_for_sync(client, founder, integration_id)
        assert first["status"] == "succeeded", first
        assert first["fetched"]["merge_requests"] == 130
        fake.limit = 100_000
        fake.add_merge_request(api, created=dt.datetime.now(dt.UTC))
        second = await sync_now(client, founder, integration_id)
    # updated on or after the mark: the newest of the last sync again, and the new one
    assert second["fetched"]["merge_requests"] == 2
    asked = [
        seen.query
        for seen in fake.vendor.requests_to(f"/api/v4/projects/{api}/merge_requests")
        if seen.path.endswith("merge_requests")
    ]
    assert asked[0].get("updated_after") is None and asked[-1].get("updated_after")
    assert fake.stated.limited <= 2
    assert (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0] == 131


async def test_a_sync_killed_midway_resumes_from_its_cursor(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitLab()
    api = fake.add_project("api")["id"]
    for index in range(300):
        fake.add_merge_request(api, created=_start() + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=60)
        deadline = asyncio.get_running_loop().time() + 60
        while (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0] < 100:
            assert asyncio.get_running_loop().time() < deadline, "the first page was never stored"
            await asyncio.sleep(0.05)
        worker.kill()
        worker.restart()
        run = await wait_for_sync(client, founder, integration_id, within=120)
        assert run["status"] == "succeeded", run
        lists = [
            seen
            for seen in fake.vendor.requests_to(f"/api/v4/projects/{api}/merge_requests")
            if seen.path.endswith("merge_requests")
        ]
        assert len([seen for seen in lists if "page" not in seen.query]) == 1  # the first page was not read again
    assert tuple(
        await _one(database, founder, "SELECT count(*), count(DISTINCT external_id) FROM devbizops.changes")
    ) == (300, 300)


async def test_webhooks_need_the_token_and_update_the_model(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitLab()
    project = fake.add_project("api")
    start = _start()
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
        request = fake.add_merge_request(project["id"], created=start, merged=start + HOUR)
        body = orjson.dumps(
            {
                "object_kind": "merge_request",
                "project": project,
                "object_attributes": {"iid": request["iid"], "action": "merge"},
            }
        )
        path = f"/api/v1/integrations/{integration_id}/webhooks/gitlab"
        headers = {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Event-UUID": str(uuid.uuid4())}
        wrong = await client.post(path, content=body, headers={**headers, "X-Gitlab-Token": "guess"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_signature"
        assert (await client.post(path, content=body, headers=headers)).status_code == 401
        accepted = await client.post(path, content=body, headers={**headers, "X-Gitlab-Token": SECRET})
        assert accepted.status_code == 200 and accepted.json()["data"]["duplicate"] is False, accepted.text
        deadline = asyncio.get_running_loop().time() + 60
        while not (await _one(database, founder, "SELECT count(*) FROM devbizops.changes WHERE state = 'merged'"))[0]:
            assert asyncio.get_running_loop().time() < deadline, "the delivery was not applied"
            await asyncio.sleep(0.1)
