"""Several API processes: events stored by one reach the live streams of another (PostgreSQL NOTIFY, or Redis
pub/sub when configured), and with Redis the "viewing now" counts are shared."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from northstar.app import create_app
from northstar.core.pubsub import EventHub
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@asynccontextmanager
async def two_processes(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient, httpx.AsyncClient]]:
    """Two app instances over the same database (and Redis), each with its own hub, caches and writer."""
    first, second = create_app(settings), create_app(settings)
    async with running(first) as first_client, running(second) as second_client:
        yield first, first_client, second_client


async def _site(client: httpx.AsyncClient, founder: Account) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    return dict(response.json()["data"])


async def _page_views(client: httpx.AsyncClient, site: dict[str, Any], *, agent: str = CHROME) -> None:
    body = {
        "siteKey": site["siteKey"],
        "events": [{"id": str(uuid.uuid4()), "type": "page_view", "url": f"https://{site['domain']}/product"}],
    }
    response = await client.post(
        "/api/v1/collect",
        content=orjson.dumps(body),
        headers={"Origin": f"https://{site['domain']}", "User-Agent": agent},
    )
    assert response.status_code == 202, response.text


@pytest.fixture(params=["postgres", "redis"])
def deployment(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "redis":
        return settings.model_copy(update={"redis_url": request.getfixturevalue("redis_url")})
    return settings


async def test_events_stored_by_one_process_reach_the_others_streams(deployment: Settings, founder: Account) -> None:
    async with two_processes(deployment) as (first, first_client, second_client):
        site = await _site(first_client, founder)
        hub: EventHub = first.state.events
        async with hub.subscribe(founder.org_id) as subscription:
            await _page_views(second_client, site)
            async with asyncio.timeout(10):
                while (event := await subscription.queue.get()).topic != "socialproof.events":
                    pass
    assert event.data["siteId"] == site["id"] and event.data["counts"] == {"page_view": 1}


async def test_viewing_now_is_shared_through_redis(settings: Settings, redis_url: str, founder: Account) -> None:
    async with two_processes(settings.model_copy(update={"redis_url": redis_url})) as (_, first, second):
        site = await _site(first, founder)
        created = await first.post(
            f"/api/v1/sites/{site['id']}/notifications",
            headers=founder.headers,
            json={"name": "Viewing", "type": "live_visitors", "status": "active", "source": {"scope": "page"}},
        )
        assert created.status_code == 201
        await _page_views(first, site, agent=f"{CHROME} One")
        await _page_views(second, site, agent=f"{CHROME} Two")
        await _page_views(second, site, agent=f"{CHROME} Two")  # the same visitor again
        feed = await first.get(
            f"/api/v1/widget/{site['siteKey']}/feed",
            headers={"Origin": f"https://{site['domain']}"},
            params={"url": f"https://{site['domain']}/product?ref=ad"},
        )
    assert feed.json()["data"]["notifications"][0]["items"][0]["parts"] == ["2 people are viewing this page"]
