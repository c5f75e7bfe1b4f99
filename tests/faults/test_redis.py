"""Redis killed under a running platform: rate limits, live fan-out, live counts and ``GET /`` degrade, never fail.

Redis is optional (it shares rate limits, fan-out and live counts between API processes), so while it is gone each
process counts its own limits, events reach live streams through PostgreSQL's NOTIFY, counts come from PostgreSQL,
and the health check says ``redis: error`` with ``status: degraded`` but 200.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson

from tests.factories import signup
from tests.faults.servers import PrivatePostgres, PrivateRedis, healthy
from tests.socialproof.conftest import WidgetSite, widget_event


async def test_redis_down_degrades_the_platform_without_failing_it(
    http: httpx.AsyncClient, postgres: PrivatePostgres, redis_server: PrivateRedis
) -> None:
    founder = await signup(http)
    created = await http.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com"},
    )
    assert created.status_code == 201, created.text
    site = WidgetSite(client=http, account=founder, database_url=postgres.url, site=created.json()["data"])
    await site.notification(type="live_visitors", source={"windowMinutes": 5, "scope": "page"})
    redis_server.kill()
    try:
        assert (await http.get("/api/v1/projects", headers=founder.headers)).status_code == 200  # rate limited
        health = await http.get("/")
        assert health.status_code == 200
        assert (health.json()["data"]["redis"], health.json()["data"]["status"]) == ("error", "degraded")
        async with (
            asyncio.timeout(10),
            http.stream(
                "GET",
                "/events/stream",
                headers=founder.headers,
                params={"topics": "socialproof.events", "siteId": site.id},
            ) as stream,
        ):
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("event: ready"):
                    break
            collected = await site.collect(widget_event("page_view", site.page("/boots")))
            assert collected.status_code == 202, collected.text
            async for line in lines:  # the live summary arrives over NOTIFY instead of Redis
                if line.startswith("data: ") and "counts" in line:
                    assert orjson.loads(line.removeprefix("data: "))["counts"] == {"page_view": 1}
                    break
        feed = await site.feed(site.page("/boots"))
        assert feed.status_code == 200, feed.text
        assert feed.json()["data"]["notifications"][0]["items"][0]["parts"][0].startswith("1 person")
    finally:
        redis_server.start()
    assert (await healthy(http))["redis"] == "ok"
