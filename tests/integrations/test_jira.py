"""Jira Cloud through its fake: issues and their changelog as work items and incidents, JQL paging and the high-water
mark in the API user's time zone, 429s waited out, a killed sync resuming, sprints, and signed webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import zoneinfo
from typing import Any

import httpx
import orjson

from northstar.core.db import Database
from northstar.demo.jira_api import FakeJira, sign
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.integrations.conftest import connect, sync_now, wait_for_sync
from tests.rows import rows_of
from tests.workers import Workers

SECRET = "jira-" + uuid.uuid4().hex
HOUR = dt.timedelta(hours=1)
IN_PROGRESS, IN_REVIEW, DONE = "3", "4", "10001"


def _start() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today.replace(day=1) - dt.timedelta(days=40)


async def _connect(client: httpx.AsyncClient, account: Account, fake: FakeJira, url: str, **config: Any) -> str:
    integration = await connect(
        client,
        account,
        "jira",
        credentials={"apiToken": fake.token, "webhookSecret": SECRET},
        config={"baseUrl": url, "email": fake.email, "projects": ["ENG"], **config},
    )
    return str(integration["id"])


async def test_issues_become_work_items_and_incidents_with_their_transitions(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeJira()
    start = _start()
    fake.add_issue(
        "ENG",
        created=start,
        transitions=[
            (IN_PROGRESS, start + HOUR),
            (IN_REVIEW, start + 5 * HOUR),
            (IN_PROGRESS, start + 6 * HOUR),
            (DONE, start + 8 * HOUR),
            (IN_PROGRESS, start + 9 * HOUR),
            (DONE, start + 10 * HOUR),
        ],
        description="Customers at Acme need SSO",
    )
    fake.add_issue("ENG", created=start, transitions=[(DONE, start + 2 * HOUR)], resolution="Won't Do")
    fake.add_issue("ENG", created=start, transitions=[(IN_PROGRESS, start + 3 * HOUR)])
    fake.add_issue("ENG", created=start + HOUR, kind="Incident", transitions=[(DONE, start + 4 * HOUR)])
    fake.add_issue("OPS", created=start)  # not a configured project
    fake.add_sprint("ENG", "Sprint 1", start=start, end=start + dt.timedelta(days=14))
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert run["fetched"] == {"statuses": 4, "issues": 4, "sprints": 1}
    items = {
        row.key: row
        for row in await rows_of(
            database, founder.org_id, "SELECT key, status, started_at, completed_at, body FROM devbizops.work_items"
        )
    }
    assert set(items) == {"ENG-1", "ENG-2", "ENG-3"}
    assert items["ENG-1"].status == "done"
    assert items["ENG-1"].started_at == start + HOUR and items["ENG-1"].completed_at == start + 10 * HOUR
    assert items["ENG-1"].body == "Customers at Acme need SSO"
    assert items["ENG-2"].status == "canceled" and items["ENG-2"].completed_at is None
    assert items["ENG-3"].status == "in_progress" and items["ENG-3"].completed_at is None
    [incident] = await rows_of(database, founder.org_id, "SELECT started_at, resolved_at FROM devbizops.incidents")
    assert (incident.started_at, incident.resolved_at) == (start + HOUR, start + 4 * HOUR)


async def test_jql_pages_and_the_mark_in_the_users_time_zone(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeJira(requests_per_second=3)  # beyond it: 429 with Retry-After
    start = _start()
    for index in range(230):
        fake.add_issue("ENG", created=start + index * dt.timedelta(minutes=7))
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=50)
        first = await wait_for_sync(client, founder, integration_id)
        assert first["status"] == "succeeded", first
        assert first["fetched"]["issues"] == 230
        assert [bool(search.get("nextPageToken")) for search in fake.searches] == [False, True, True]
        newest = start + 229 * dt.timedelta(minutes=7)
        later = dt.datetime.now(dt.UTC)
        fake.add_issue("ENG", created=later)
        second = await sync_now(client, founder, integration_id)
    local = newest.astimezone(zoneinfo.ZoneInfo(fake.time_zone)).strftime("%Y/%m/%d %H:%M")
    assert f'updated >= "{local}"' in fake.searches[-1]["jql"]
    assert second["fetched"]["issues"] == 2  # the newest of the last sync again, and the new one
    assert fake.vendor.throttled >= 1
    assert len(await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items")) == 231


async def test_a_sync_killed_midway_resumes_from_its_mark(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeJira()
    start = _start()
    for index in range(300):
        fake.add_issue("ENG", created=start + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=0.5)
        deadline = asyncio.get_running_loop().time() + 60
        while len(await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items")) < 100:
            assert asyncio.get_running_loop().time() < deadline, "the first page was never stored"
            await asyncio.sleep(0.05)
        worker.kill()
        searched = len(fake.searches)
        worker.restart()
        run = await wait_for_sync(client, founder, integration_id, within=120)
        assert run["status"] == "succeeded", run
    assert "updated >=" in fake.searches[searched]["jql"]  # started again from the stored mark, not from nothing
    rows = await rows_of(
        database, founder.org_id, "SELECT count(*), count(DISTINCT external_id) FROM devbizops.work_items"
    )
    assert tuple(rows[0]) == (300, 300)


async def test_webhooks_need_the_secrets_signature(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeJira()
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
        issue = fake.add_issue("ENG", created=_start(), transitions=[(DONE, _start() + HOUR)])
        body = orjson.dumps({"timestamp": 1, "webhookEvent": "jira:issue_updated", "issue": {"id": issue["id"]}})
        path = f"/api/v1/integrations/{integration_id}/webhooks/jira"
        headers = {"X-Atlassian-Webhook-Identifier": str(uuid.uuid4())}
        bad = await client.post(path, content=body, headers={**headers, "X-Hub-Signature": sign(body, "other")})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_signature"
        good = await client.post(path, content=body, headers={**headers, "X-Hub-Signature": sign(body, SECRET)})
        assert good.status_code == 200 and good.json()["data"]["duplicate"] is False, good.text
        deadline = asyncio.get_running_loop().time() + 60
        while not await rows_of(database, founder.org_id, "SELECT id FROM devbizops.work_items WHERE status = 'done'"):
            assert asyncio.get_running_loop().time() < deadline, "the delivery was not applied"
            await asyncio.sleep(0.1)
