"""The platform as ``northstar run`` starts it, on a PostgreSQL and a Redis of the fault tests' own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from northstar.migrations import upgrade
from tests.faults.servers import Platform, PrivatePostgres, PrivateRedis, healthy


@pytest.fixture(scope="package")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(tmp_path_factory.mktemp("faults-pg"))
    server.start()
    upgrade(server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("faults-redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="package")
def platform(
    postgres: PrivatePostgres, redis_server: PrivateRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("faults-run"), database_url=postgres.url, redis_url=redis_server.url)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def http(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running platform; its 10 s timeout is there to detect a hang, not to time anything."""
    async with httpx.AsyncClient(base_url=platform.url, timeout=10) as client:
        await healthy(client, worker=True)
        yield client
