"""Integrations harness: vendors faked on loopback, a real worker process running the syncs, and helpers to follow
a sync through the API as a merchant would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from northstar.app import create_app
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account
from tests.workers import Workers, reaching_loopback, stop_worker

FINISHED = ("succeeded", "failed")


@pytest.fixture(scope="package")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The platform these tests talk to, configured as its workers are (``tests.workers.LOOPBACK_VENDORS``)."""
    async with running(create_app(reaching_loopback(settings))) as http:
        yield http


@pytest.fixture(scope="package")  # stops after these tests: later suites enqueue jobs nobody should run
def worker(database_url: str) -> Iterator[Workers]:
    workers = Workers(database_url)
    yield workers
    stop_worker(workers.process)


async def connect(
    client: httpx.AsyncClient,
    account: Account,
    provider: str,
    *,
    credentials: dict[str, str],
    config: dict[str, Any],
    test: bool = True,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/integrations",
        headers=account.headers,
        json={
            "provider": provider,
            "name": f"{provider} account",
            "credentials": credentials,
            "config": config,
            "test": test,
        },
    )
    assert response.status_code == 201, response.text
    integration: dict[str, Any] = response.json()["data"]
    return integration


async def integration_of(client: httpx.AsyncClient, account: Account, integration_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/integrations/{integration_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def latest_run(client: httpx.AsyncClient, account: Account, integration_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/integrations/{integration_id}/runs", headers=account.headers)
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()["data"]
    assert runs, "no sync was queued"
    return runs[0]


async def wait_for_sync(
    client: httpx.AsyncClient,
    account: Account,
    integration_id: str,
    *,
    until: tuple[str, ...] = FINISHED,
    within: float = 90.0,
) -> dict[str, Any]:
    """Poll the integration's latest sync run until it reaches one of ``until``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        run = await latest_run(client, account, integration_id)
        if run["status"] in until:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"sync of {integration_id} still {run['status']} after {within}s: {run}")
        await asyncio.sleep(0.1)


async def sync_now(client: httpx.AsyncClient, account: Account, integration_id: str) -> dict[str, Any]:
    """Ask for a sync and wait until it succeeded."""
    response = await client.post(f"/api/v1/integrations/{integration_id}/sync", headers=account.headers)
    assert response.status_code == 202, response.text
    run = await wait_for_sync(client, account, integration_id)
    assert run["status"] == "succeeded", run
    return run
