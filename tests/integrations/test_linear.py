"""Linear through its fake GraphQL API: issues as work items and incidents, cursor paging and the update mark, the
stated budget and a RATELIMITED refusal, a killed sync resuming at its cursor, and signed, timestamped webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from typing import Any

import httpx
import orjson

from northstar.core.db import Database
from northstar.demo.linear_api import FakeLinear, sign
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.integrations.conftest import connect, sync_now, wait_for_sync
from tests.rows import rows_of
from tests.workers import Workers

SECRET = "lin_wh_" + uuid.uuid4().hex
HOUR = dt.timedelta(hours=1)


def _start() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=30)


async def _connect(client: httpx.AsyncClient, account: Account, fake: FakeLinear, url: str, **config: Any) -> str:
    integration = await connect(
        client,
        account,
        "linear",
        credentials={"apiKey": fake.api_key, "webhookSecret": SECRET},
        config={"baseUrl": url, **config},
    )
    return str(integration["id"])


async def test_issues_become_work_items_and_incidents(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeLinear()
    start = _start()
    fake.add_issue(created=start, state="completed", started=start + HOUR, completed=start + 5 * HOUR)
    fake.add_issue(created=start, state="started", started=start + 2 * HOUR)
    fake.add_issue(created=start, state="canceled", completed=start + HOUR)
    fake.add_issue(created=start, state="backlog")
    fake.add_issue(created=start, state="completed", completed=start + 3 * HOUR, labels=("Incident",))
    fake.add_cycle(1, starts=start, ends=start + dt.timedelta(days=14))
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"issues": 5, "cycles": 1, "projects": 0}
    items = {
        row.key: row
        for row in await rows_of(
            database, founder.org_id, "SELECT key, status, started_at, completed_at FROM devbizops.work_items"
        )
    }
    assert {key: row.status for key, row in items.items()} == {
        "ENG-1": "done", "ENG-2": "in_progress", "ENG-3": "canceled", "ENG-4": "todo"
    }  # fmt: skip
    assert items["ENG-1"].started_at == start + HOUR and items["ENG-1"].completed_at == start + 5 * HOUR
    [incident] = await rows_of(database, founder.org_id, "SELECT started_at, resolved_at FROM devbizops.incidents")
    assert incident.resolved_at == start + 3 * HOUR


async def test_cursor_pages_the_update_mark_and_the_budget(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeLinear(limit=2, window_seconds=1.0)  # two requests a second, then RATELIMITED
    start = _start()
    for index in range(230):
        fake.add_issue(created=start + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        first = await wait_for_sync(client, founder, integration_id)
        assert first["status"] == "succeeded", first
        assert first["fetched"]["issues"] == 230
        issue_queries = [query["variables"] for query in fake.queries if "issues(" in query["query"]]
        assert [variables.get("after") is not None for variables in issue_queries] == [False, True, True]
        fake.limit = fake.stated.limit = 10_000
        fake.add_issue(created=dt.datetime.now(dt.UTC))
        second = await sync_now(client, founder, integration_id)
    newest = max(issue["updatedAt"] for issue in list(fake.issues.values())[:230])
    assert fake.queries[-3]["variables"]["since"] == newest  # the issues query of the second sync
    assert second["fetched"]["issues"] == 2
    assert fake.stated.limited <= 1  # the stated budget is waited for
    assert len(await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items")) == 231


async def test_a_sync_killed_midway_resumes_at_its_cursor(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeLinear()
    for index in range(300):
        fake.add_issue(created=_start() + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=0.5)
        deadline = asyncio.get_running_loop().time() + 60
        while len(await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items")) < 100:
            assert asyncio.get_running_loop().time() < deadline, "the first page was never stored"
            await asyncio.sleep(0.05)
        worker.kill()
        asked = len(fake.queries)
        worker.restart()
        run = await wait_for_sync(client, founder, integration_id, within=120)
        assert run["status"] == "succeeded", run
    resumed = [query["variables"] for query in fake.queries[asked:] if "issues(" in query["query"]]
    assert resumed[0]["after"] is not None  # the next page of the same query, not the first again
    rows = await rows_of(
        database, founder.org_id, "SELECT count(*), count(DISTINCT external_id) FROM devbizops.work_items"
    )
    assert tuple(rows[0]) == (300, 300)


async def test_webhooks_need_a_fresh_valid_signature(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeLinear()
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
        issue = fake.add_issue(created=_start(), state="completed", completed=_start() + HOUR)
        path = f"/api/v1/integrations/{integration_id}/webhooks/linear"

        def delivery(sent_ms: int) -> bytes:
            return orjson.dumps(
                {"action": "update", "type": "Issue", "data": {"id": issue["id"]}, "webhookTimestamp": sent_ms}
            )

        now_ms = int(time.time() * 1000)
        body = delivery(now_ms)
        headers = {"Linear-Delivery": str(uuid.uuid4())}
        forged = await client.post(path, content=body, headers={**headers, "Linear-Signature": sign(body, "other")})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
        stale = delivery(now_ms - 5 * 60_000)
        replayed = await client.post(path, content=stale, headers={**headers, "Linear-Signature": sign(stale, SECRET)})
        assert replayed.status_code == 401 and replayed.json()["error"]["code"] == "signature_expired"
        good = await client.post(path, content=body, headers={**headers, "Linear-Signature": sign(body, SECRET)})
        assert good.status_code == 200 and good.json()["data"]["duplicate"] is False, good.text
        deadline = asyncio.get_running_loop().time() + 60
        while not await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items WHERE status = 'done'"):
            assert asyncio.get_running_loop().time() < deadline, "the delivery was not applied"
            await asyncio.sleep(0.1)
