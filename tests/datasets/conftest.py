"""Data service harness: real queue workers as separate processes, and helpers to follow a job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.factories import Account
from tests.workers import Workers, stop_worker

FINISHED = ("completed", "failed", "cancelled")


@pytest.fixture(scope="package")  # stops after these tests: later suites enqueue jobs nobody should run
def worker(database_url: str) -> Iterator[Workers]:
    workers = Workers(database_url)
    yield workers
    stop_worker(workers.process)


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    """The app behind uvicorn on a loopback port: streaming responses need a real server."""
    async with serving(create_app(settings)) as url:
        yield url


async def wait_for_job(
    client: httpx.AsyncClient, account: Account, job_id: str, *, until: tuple[str, ...] = FINISHED, within: float = 60.0
) -> dict[str, Any]:
    """Poll ``/status/{id}`` as a client would until the job reaches one of ``until``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await client.get(f"/api/v1/status/{job_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()["data"]
        if job["status"] in until:
            return job
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"job {job_id} still {job['status']} after {within}s: {job}")
        await asyncio.sleep(0.1)


async def wait_until_midway(client: httpx.AsyncClient, account: Account, job_id: str) -> dict[str, Any]:
    """The job running with some batches committed and more to come: the moment to kill its worker."""
    while True:
        job = await wait_for_job(client, account, job_id, until=("in-progress", "completed"))
        assert job["status"] == "in-progress", "the job finished before the worker could be killed"
        if job["rowsDone"] > 0:
            return job
        await asyncio.sleep(0.02)


async def run_job(client: httpx.AsyncClient, account: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=account.headers)
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, account, response.json()["data"]["jobId"])
    assert job["status"] == "completed", f"{job['status']}: {job['errorMessage']}"
    return job
