"""Rate limits: per IP and per account on auth routes, per principal elsewhere; Redis or in-process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from northstar.app import create_app, open_redis
from northstar.core.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from northstar.settings import Settings
from tests.conftest import free_port, running
from tests.factories import PASSWORD, Account, unique_email


def _strict(settings: Settings, **overrides: object) -> Settings:
    limits = settings.rate_limit.model_copy(
        update={
            "auth_per_ip_per_minute": 5,
            "auth_per_account_per_minute": 3,
            "api_per_principal_per_minute": 4,
            **overrides,
        }
    )
    return settings.model_copy(update={"rate_limit": limits})


@pytest.fixture(params=["memory", "redis"])
async def strict_client(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    strict = _strict(settings)
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        await aioredis.from_url(url).flushdb()  # each test starts with fresh windows
        strict = strict.model_copy(update={"redis_url": url})
    async with running(create_app(strict)) as client:
        if time.time() % 60 > 55:  # windows are fixed minutes: a test's few requests must not straddle two
            await asyncio.sleep(60.05 - time.time() % 60)
        yield client


async def test_login_is_limited_per_account_with_retry_after(
    strict_client: httpx.AsyncClient, founder: Account
) -> None:
    statuses = []
    for _ in range(4):
        response = await strict_client.post(
            "/api/v1/auth/login", json={"email": founder.email, "password": "Wrong-password-1"}
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429]
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"]["code"] == "rate_limited"


async def test_auth_routes_are_limited_per_ip(strict_client: httpx.AsyncClient) -> None:
    statuses = [
        (
            await strict_client.post("/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD})
        ).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429


async def test_api_is_limited_per_principal(
    strict_client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    statuses = [(await strict_client.get("/api/v1/projects", headers=founder.headers)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    other = await strict_client.get("/api/v1/projects", headers=other_founder.headers)
    assert other.status_code == 200


async def test_health_reports_redis_when_configured(settings: Settings, redis_url: str) -> None:
    async with running(create_app(settings.model_copy(update={"redis_url": redis_url}))) as client:
        assert (await client.get("/")).json()["data"]["redis"] == "ok"


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_windows_reset(backend: str, redis_url: str) -> None:
    limiter: RateLimiter = (
        MemoryRateLimiter() if backend == "memory" else RedisRateLimiter(aioredis.from_url(redis_url))
    )
    key = unique_email()
    first = [await limiter.hit(key, limit=2, window_seconds=1) for _ in range(3)]
    assert [d.allowed for d in first] == [True, True, False]
    assert first[2].retry_after == 1
    await limiter.close()


async def test_limits_hold_in_process_while_redis_is_down() -> None:
    limiter = RedisRateLimiter(open_redis(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    key = unique_email()
    decisions = [await limiter.hit(key, limit=2, window_seconds=60) for _ in range(3)]
    assert [decision.allowed for decision in decisions] == [True, True, False]
    await limiter.close()
