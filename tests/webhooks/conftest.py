"""Webhooks harness: a real HTTP receiver on loopback (it records what arrives and answers what a test tells it),
the platform and a queue runner configured to reach it, and helpers for endpoints and deliveries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from northstar.app import create_app
from northstar.core.db import Database
from northstar.core.outbound import close_posting_sessions
from northstar.core.queue import tasks_using
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account
from tests.workers import reaching_loopback

Run = Callable[[], Awaitable[None]]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A merchant's receiver: each path answers ``answers[path]`` (default 200, "ok") and records every request."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: dict[str, tuple[int, str]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # seconds a path waits before it answers

    def address(self, name: str | None = None) -> str:
        return f"{self.url}/hooks/{name or uuid.uuid4().hex}"

    def at(self, address: str) -> list[Received]:
        path = httpx.URL(address).path
        return [item for item in self.received if item.path == path]


def receiver_app(receiver: Receiver) -> FastAPI:
    app = FastAPI()

    @app.post("/hooks/{name}")
    async def hook(name: str, request: Request) -> Response:
        receiver.received.append(Received(request.url.path, dict(request.headers), await request.body()))
        await asyncio.sleep(receiver.delays.get(request.url.path, 0.0))
        status, body = receiver.answers.get(request.url.path, (200, "ok"))
        return Response(body, status_code=status, media_type="text/plain")

    return app


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver served on a loopback port while the block runs."""
    found = Receiver(url="")
    async with serving(receiver_app(found)) as url:
        found.url = url
        yield found


@pytest.fixture(scope="package")
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@pytest.fixture(scope="package", autouse=True)
async def posting_sessions() -> AsyncIterator[None]:
    """Deliveries made in the tests' event loop post through its sessions: closed with the package, as a worker
    closes them when it stops."""
    yield
    await close_posting_sessions()


@pytest.fixture(scope="package")
def webhook_settings(settings: Settings) -> Settings:
    """The platform with the outbound guard open to loopback; retries without waits, so a test sees all seven."""
    configured = reaching_loopback(settings)
    webhooks = configured.webhooks.model_copy(update={"retry_delays_seconds": (0.0,) * 6, "jitter": 0.0})
    return configured.model_copy(update={"webhooks": webhooks})


@pytest.fixture(scope="package")
async def client(webhook_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(webhook_settings)) as http:
        yield http


@pytest.fixture(scope="package")
async def worker_database(database_url: str, webhook_settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_url, settings=webhook_settings, pool_size=2)
    yield database
    await database.dispose()


def runner(run_jobs: Run, database: Database) -> Run:
    """Run what is queued (and due) now, as a worker whose database (and settings) is ``database``."""

    async def run() -> None:
        with tasks_using(database):
            await run_jobs()

    return run


@pytest.fixture
def work(run_jobs: Run, worker_database: Database) -> Run:
    """What is queued, run as a worker configured like ``webhook_settings``."""
    return runner(run_jobs, worker_database)


async def make_endpoint(
    client: httpx.AsyncClient, account: Account, url: str, event_types: list[str], **fields: Any
) -> dict[str, Any]:
    body = {"url": url, "eventTypes": event_types, **fields}
    response = await client.post("/api/v1/webhooks/endpoints", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def deliveries_of(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/webhooks/deliveries", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def delivery(client: httpx.AsyncClient, account: Account, delivery_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found
