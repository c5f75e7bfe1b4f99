"""GitHub through its fake REST API: the engineering model and the DORA metrics from a sync, Link paging and
conditional requests, the rate limit waited out, a killed sync resuming from its cursor, and signed webhooks."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.github_api import FakeGitHub, sign
from northstar.demo.loopback import serving
from tests.factories import Account
from tests.integrations.conftest import connect, sync_now, wait_for_sync
from tests.rows import rows_of
from tests.workers import Workers

SECRET = "whsec-" + uuid.uuid4().hex
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def _start() -> dt.datetime:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today.replace(day=1) - dt.timedelta(days=40)


async def _connect(client: httpx.AsyncClient, account: Account, fake: FakeGitHub, url: str, **config: Any) -> str:
    integration = await connect(
        client,
        account,
        "github",
        credentials={"accessToken": fake.token, "webhookSecret": SECRET},
        config={"owner": fake.owner, "baseUrl": url, **config},
    )
    return str(integration["id"])


async def _one(database: Database, account: Account, sql: str, **params: Any) -> Any:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return (await session.execute(text(sql), params)).one()


async def _wait_for_points(database: Database, account: Account, metric: str, dims: str = "") -> dict[Any, Any]:
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        async with database.tenant_transaction(org_id=account.org_id) as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT day, value FROM metrics.kpis WHERE source = 'engineering' AND grain = 'month'"
                        " AND metric = :metric AND dims = :dims"
                    ),
                    {"metric": metric, "dims": dims},
                )
            ).all()
        if rows:
            return {row.day: row.value for row in rows}
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {metric} points")
        await asyncio.sleep(0.2)


async def test_a_sync_fills_the_engineering_model_and_the_dora_metrics(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub()
    fake.add_repo("api")
    fake.add_repo("web")
    start = _start()
    # one change: first commit 10 h before it opened, reviewed 2 h after, merged 3 h later, shipped 1 h after that
    fake.add_pull(
        "api",
        created=start + 10 * HOUR,
        first_commit=start,
        reviews=[("bo", start + 12 * HOUR)],
        merged=start + 15 * HOUR,
    )
    fake.add_pull("api", created=start + 20 * HOUR)  # still open
    fake.add_deployment(
        "api",
        created=start + 15 * HOUR + 30 * dt.timedelta(minutes=1),
        statuses=[
            ("in_progress", start + 15 * HOUR + 40 * dt.timedelta(minutes=1)),
            ("success", start + 16 * HOUR),
            # GitHub marks a replaced deployment inactive: the outcome is on the second page of statuses
            *(("inactive", start + 17 * HOUR + index * dt.timedelta(minutes=1)) for index in range(120)),
        ],
    )
    fake.add_deployment("api", created=start + 2 * DAY, statuses=[("failure", start + 2 * DAY + HOUR)])
    fake.add_deployment("api", created=start + 2 * DAY, environment="staging", statuses=[("success", start + 3 * DAY)])
    fake.add_issue("api", created=start + 17 * HOUR, closed=start + 19 * HOUR, labels=("incident",))
    fake.add_issue("web", created=start, closed=start + 3 * DAY, assignee="cy")
    fake.add_issue("web", created=start + DAY)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "succeeded", run
        assert run["fetched"] == {"repositories": 2, "pull_requests": 2, "deployments": 3, "issues": 3}
        counts = await _one(
            database,
            founder,
            "SELECT (SELECT count(*) FROM devbizops.repositories), (SELECT count(*) FROM devbizops.changes),"
            " (SELECT count(*) FROM devbizops.reviews), (SELECT count(*) FROM devbizops.deployments),"
            " (SELECT count(*) FROM devbizops.incidents), (SELECT count(*) FROM devbizops.work_items)",
        )
        assert tuple(counts) == (2, 2, 1, 2, 1, 2)  # the staging deployment is not production
        merged = await _one(
            database, founder, "SELECT first_commit_at, merged_at, state FROM devbizops.changes WHERE state = 'merged'"
        )
        assert merged.first_commit_at == start and merged.merged_at == start + 15 * HOUR
        month = start.date().replace(day=1)
        lead = await _wait_for_points(database, founder, "lead_time_hours")
        assert lead[month] == 16  # first commit to the successful deployment
        assert (await _wait_for_points(database, founder, "pickup_time_hours"))[month] == 2
        assert (await _wait_for_points(database, founder, "review_time_hours"))[month] == 3
        assert (await _wait_for_points(database, founder, "coding_time_hours"))[month] == 10
        assert (await _wait_for_points(database, founder, "deploy_time_hours"))[month] == 1
        # two production deployments ended: one failed, the other preceded the incident
        assert (await _wait_for_points(database, founder, "change_failure_rate"))[month] == 100
        assert (await _wait_for_points(database, founder, "time_to_restore_hours"))[month] == 2
        assert (await _wait_for_points(database, founder, "work_items_done", "repo=acme/web"))[month] == 1

        report = await client.get("/api/v1/devbizops/dora", headers=founder.headers, params={"months": 3})
        assert report.status_code == 200, report.text
        overall = report.json()["data"][0]
        assert overall["kind"] == "overall"
        assert overall["leadTimeHours"]["value"] == 16 and overall["leadTimeHours"]["band"] == "elite"
        assert overall["changeFailureRate"]["band"] == "low"
        assert overall["timeToRestoreHours"]["band"] == "high"


async def test_pages_follow_the_link_header_and_unchanged_repositories_answer_304(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub()
    fake.add_repo("api")
    fake.add_repo("quiet")
    start = _start()
    for index in range(230):
        fake.add_pull("api", created=start + index * dt.timedelta(minutes=10))
    fake.add_pull("quiet", created=start)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        first = await wait_for_sync(client, founder, integration_id)
        assert first["status"] == "succeeded", first
        assert first["fetched"]["pull_requests"] == 231
        pages = [
            seen.query.get("page")
            for seen in fake.vendor.requests_to("/repos/acme/api/pulls")
            if "/pulls/" not in seen.path and seen.path.endswith("/pulls")
        ]
        assert pages == [None, "2", "3"]
        before = fake.not_modified
        fake.update_pull("api", 5, at=dt.datetime.now(dt.UTC), title="Renamed")
        second = await sync_now(client, founder, integration_id)
        # read down to the high-water mark: the changed one, and the newest of the last sync again (updates in the
        # same second as the mark are not missed)
        assert second["fetched"]["pull_requests"] == 2
        assert fake.not_modified - before >= 4  # quiet's pulls, both repos' deployments and issues
        title = await _one(
            database,
            founder,
            "SELECT title FROM devbizops.changes WHERE number = 5 AND repository = :repo",
            repo=str(fake.repos["acme/api"]["id"]),
        )
        assert title.title == "Renamed"
        assert (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0] == 231


async def test_a_spent_rate_limit_is_waited_for_and_refusals_and_errors_are_retried(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub(limit=15, window_seconds=1.0)
    fake.add_repo("api")
    for index in range(40):
        fake.add_pull("api", created=_start() + index * HOUR)
    fake.vendor.fail_next("rate_limited", path_prefix="/repos/acme/api/pulls", count=2)  # a secondary limit's 429
    fake.vendor.fail_next("server_error", path_prefix="/repos/acme/api/issues", count=2)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=1000)
        run = await wait_for_sync(client, founder, integration_id)
    assert run["status"] == "succeeded", run
    assert (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0] == 40
    # more requests than one window allows: the sync waited for resets, and hardly ever ran into a refusal
    assert len(fake.vendor.seen) - fake.limited > 2 * fake.limit
    assert fake.limited <= 2  # requests are counted against the stated budget as they are sent


async def test_a_rate_limit_reset_too_far_away_stops_the_sync_and_the_next_resumes(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub(limit=1000, window_seconds=3600.0)
    fake.add_repo("api")
    for index in range(250):
        fake.add_pull("api", created=_start() + index * HOUR)
    async with serving(fake.app) as url:
        fake.limit = 2 + 100 + 1  # repositories, pulls page 1 and its reviews, pulls page 2: then spent
        integration_id = await _connect(client, founder, fake, url, maxWaitSeconds=5)
        failed = await wait_for_sync(client, founder, integration_id)
        assert failed["status"] == "failed"
        assert "rate limit" in failed["error"]
        assert failed["fetched"]["pull_requests"] == 100
        state = (await client.get(f"/api/v1/integrations/{integration_id}", headers=founder.headers)).json()["data"]
        assert state["streams"]["pull_requests"]["at"]["page"].endswith("page=2")

        fake.limit = 100_000
        requested = len(fake.vendor.requests_to("/repos/acme/api/pulls"))
        resumed = await sync_now(client, founder, integration_id)
        assert resumed["fetched"]["pull_requests"] == 150
        lists = [
            seen.query.get("page")
            for seen in fake.vendor.requests_to("/repos/acme/api/pulls")[requested:]
            if seen.path.endswith("/pulls")
        ]
        assert lists == ["2", "3"]  # resumed at the page it stopped on
    assert (await _one(database, founder, "SELECT count(*), count(DISTINCT external_id) FROM devbizops.changes"))[
        :
    ] == (250, 250)


async def test_a_sync_killed_midway_resumes_from_its_cursor(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub()
    fake.add_repo("api")
    for index in range(300):
        fake.add_pull("api", created=_start() + index * HOUR)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, requestsPerSecond=60)
        deadline = asyncio.get_running_loop().time() + 60
        while (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0] < 100:
            assert asyncio.get_running_loop().time() < deadline, "the first page was never stored"
            await asyncio.sleep(0.05)
        worker.kill()
        stored = (await _one(database, founder, "SELECT count(*) FROM devbizops.changes"))[0]
        assert stored < 300
        worker.restart()
        run = await wait_for_sync(client, founder, integration_id, within=120)
        assert run["status"] == "succeeded", run
        firsts = [
            seen
            for seen in fake.vendor.requests_to("/repos/acme/api/pulls")
            if seen.path.endswith("/pulls") and "page" not in seen.query
        ]
        assert len(firsts) == 1  # the first page was not read again
    assert tuple(
        await _one(database, founder, "SELECT count(*), count(DISTINCT external_id) FROM devbizops.changes")
    ) == (300, 300)


async def test_webhooks_need_a_valid_signature_and_update_the_model(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub()
    repo = fake.add_repo("api")
    start = _start()
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url)
        assert (await wait_for_sync(client, founder, integration_id))["status"] == "succeeded"
        pull = fake.add_pull("api", created=start, reviews=[("bo", start + HOUR)], merged=start + 2 * HOUR)
        body = orjson.dumps({"action": "closed", "pull_request": pull, "repository": repo})
        path = f"/api/v1/integrations/{integration_id}/webhooks/github"
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4())}
        forged = await client.post(path, content=body, headers={**headers, "X-Hub-Signature-256": sign(body, "wrong")})
        assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
        unsigned = await client.post(path, content=body, headers=headers)
        assert unsigned.status_code == 401
        accepted = await client.post(path, content=body, headers={**headers, "X-Hub-Signature-256": sign(body, SECRET)})
        assert accepted.status_code == 200 and accepted.json()["data"]["duplicate"] is False, accepted.text
        replay = await client.post(path, content=body, headers={**headers, "X-Hub-Signature-256": sign(body, SECRET)})
        assert replay.status_code == 200 and replay.json()["data"]["duplicate"] is True
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            async with database.tenant_transaction(org_id=founder.org_id) as session:
                found = (
                    await session.execute(
                        text("SELECT state, (SELECT count(*) FROM devbizops.reviews) AS reviews FROM devbizops.changes")
                    )
                ).all()
            if found:
                break
            assert asyncio.get_running_loop().time() < deadline, "the delivery was not applied"
            await asyncio.sleep(0.1)
        assert found[0].state == "merged" and found[0].reviews == 1


async def test_releases_count_as_deployments_when_asked_and_bad_settings_are_refused(
    client: httpx.AsyncClient, founder: Account, database: Database, worker: Workers
) -> None:
    fake = FakeGitHub()
    fake.add_repo("api")
    start = _start()
    fake.add_pull("api", created=start, first_commit=start - HOUR, merged=start + HOUR)
    fake.add_release("api", published=start + 3 * HOUR, tag="v1.0.0")
    fake.add_release("api", published=start + 4 * HOUR, tag="v1.1.0-draft", draft=True)
    async with serving(fake.app) as url:
        integration_id = await _connect(client, founder, fake, url, releasesAsDeployments=True)
        run = await wait_for_sync(client, founder, integration_id)
        assert run["status"] == "succeeded", run
        assert run["fetched"]["releases"] == 2
        [deployment] = await rows_of(
            database, founder.org_id, "SELECT ref, status, production FROM devbizops.deployments"
        )
        assert tuple(deployment) == ("v1.0.0", "success", True)
        assert (await _wait_for_points(database, founder, "lead_time_hours"))[start.date().replace(day=1)] == 4
        for config, field in (
            ({"owner": "not a name!"}, "config.owner"),
            ({"owner": "acme", "concurrency": 0}, "config.concurrency"),
            ({"owner": "acme", "repositories": "api"}, "config.repositories"),
            ({}, "config.owner"),
        ):
            refused = await client.post(
                "/api/v1/integrations",
                headers=founder.headers,
                json={"provider": "github", "name": "GitHub", "credentials": {"accessToken": "t"}, "config": config},
            )
            assert refused.status_code == 422, refused.text
            assert field in {detail["field"].removeprefix("body.") for detail in refused.json()["error"]["details"]}
        wrong_token = await client.post(
            "/api/v1/integrations",
            headers=founder.headers,
            json={
                "provider": "github",
                "name": "GitHub",
                "credentials": {"accessToken": "nope"},
                "config": {"owner": fake.owner, "baseUrl": url},
            },
        )
        assert wrong_token.status_code == 422 and wrong_token.json()["error"]["code"] == "connection_failed"
