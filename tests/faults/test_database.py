"""PostgreSQL hung (SIGSTOP) or killed under a running platform: what the API answers, and that nothing is lost.

While the database is gone, authenticated routes and event collection answer 503 with ``Retry-After`` (never a
500, never a hang: the client's 10 s timeout would fail the test), the widget feed serves what it last rendered,
and ``GET /`` reports ``database: error``. Once the database is back, the platform serves again without a restart,
every event acknowledged before the fault is stored, and a job accepted before it completes.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.datasets.conftest import wait_for_job
from tests.factories import Account, signup
from tests.faults.servers import PrivatePostgres, healthy
from tests.socialproof.conftest import WidgetSite, widget_event


async def _shop(http: httpx.AsyncClient, postgres: PrivatePostgres) -> tuple[Account, WidgetSite]:
    founder = await signup(http)
    created = await http.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com"},
    )
    assert created.status_code == 201, created.text
    site = WidgetSite(client=http, account=founder, database_url=postgres.url, site=created.json()["data"])
    await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})
    return founder, site


async def _acknowledged(site: WidgetSite, count: int) -> set[str]:
    """Purchases sent as the widget sends them, each answered 202 (stored, the platform says)."""
    ids = set()
    for number in range(count):
        event = widget_event("purchase", site.page("/"), details={"firstName": f"Ada{number}", "product": "Boots"})
        response = await site.collect(event)
        assert response.status_code == 202, response.text
        ids.add(event["id"])
    return ids


def _stored(postgres: PrivatePostgres, ids: set[str]) -> set[str]:
    with psycopg.connect(postgres.url) as connection:
        rows = connection.execute(
            "SELECT id::text FROM socialproof.notification_events WHERE id = ANY(%s::uuid[])", (list(ids),)
        ).fetchall()
    return {row[0] for row in rows}


def _assert_unavailable(response: httpx.Response, *codes: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] in codes
    assert int(response.headers["retry-after"]) >= 1


async def _answers_while_down(
    http: httpx.AsyncClient, founder: Account, site: WidgetSite, feed_before: httpx.Response
) -> None:
    """What every route answers while the database is gone."""
    _assert_unavailable(await http.get("/api/v1/projects", headers=founder.headers), "database_unavailable")
    _assert_unavailable(
        await http.post("/api/v1/auth/login", json={"email": founder.email, "password": founder.password}),
        "database_unavailable",
    )
    _assert_unavailable(
        await site.collect(widget_event("purchase", site.page("/"))), "database_unavailable", "events_unavailable"
    )
    feed = await site.feed()
    assert feed.status_code == 200, feed.text
    assert feed.content == feed_before.content  # the last rendered feed, served stale
    health = await http.get("/")
    assert health.status_code == 503
    assert health.json()["data"]["database"] == "error"


async def _feed_with_items(site: WidgetSite) -> httpx.Response:
    feed = await site.feed()
    assert feed.status_code == 200, feed.text
    assert feed.json()["data"]["notifications"], "the purchases should show"
    return feed


async def test_a_hung_database_answers_503_and_the_platform_recovers(
    http: httpx.AsyncClient, postgres: PrivatePostgres
) -> None:
    founder, site = await _shop(http, postgres)
    acknowledged = await _acknowledged(site, 5)
    feed_before = await _feed_with_items(site)
    postgres.pause()
    try:
        await _answers_while_down(http, founder, site, feed_before)
    finally:
        postgres.resume()
    await healthy(http)
    assert _stored(postgres, acknowledged) == acknowledged
    assert (await http.get("/api/v1/projects", headers=founder.headers)).status_code == 200
    assert len(await _acknowledged(site, 1)) == 1


async def test_a_killed_database_answers_503_and_the_platform_recovers(
    http: httpx.AsyncClient, postgres: PrivatePostgres
) -> None:
    founder, site = await _shop(http, postgres)
    acknowledged = await _acknowledged(site, 5)
    feed_before = await _feed_with_items(site)
    accepted = await http.post(
        "/api/v1/generate",
        headers=founder.headers,
        json={"rows": 20_000, "seed": 3, "columns": [{"name": "n", "type": "int"}]},
    )
    assert accepted.status_code == 202, accepted.text
    postgres.kill()
    try:
        await _answers_while_down(http, founder, site, feed_before)
    finally:
        postgres.start()
    await healthy(http)
    assert _stored(postgres, acknowledged) == acknowledged
    job: dict[str, Any] = await wait_for_job(http, founder, accepted.json()["data"]["jobId"], within=120)
    assert job["status"] == "completed", job
    assert job["rowsDone"] == 20_000
    assert (await http.get("/api/v1/projects", headers=founder.headers)).status_code == 200
    assert len(await _acknowledged(site, 1)) == 1
