"""Alerts harness: Slack faked on loopback, the SMTP server on loopback (``mailbox``), the platform and a queue worker
configured to reach them, and helpers to write metric values, make rules and run what was queued."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from northstar.alerts.service import evaluation
from northstar.app import create_app
from northstar.core.db import Database
from northstar.core.queue import tasks_using
from northstar.demo.loopback import serving
from northstar.metrics.series import Point, replace_series
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account
from tests.fakes.slack import FakeSlack
from tests.workers import reaching_loopback

Run = Callable[[], Awaitable[None]]


@dataclass
class Slack:
    fake: FakeSlack
    url: str

    @property
    def webhook_url(self) -> str:
        return self.fake.webhook_url(self.url)


@pytest.fixture(scope="package")
async def slack() -> AsyncIterator[Slack]:
    fake = FakeSlack()
    async with serving(fake.vendor.app) as url:
        yield Slack(fake, url)


@pytest.fixture(scope="package")
def alert_settings(settings: Settings, slack: Slack) -> Settings:
    """The platform's settings with the outbound guard open to loopback and Slack's Web API on the fake."""
    configured = reaching_loopback(settings)
    alerts = configured.alerts.model_copy(update={"slack_api_url": f"{slack.url}/api"})
    return configured.model_copy(update={"alerts": alerts})


@pytest.fixture(scope="package")
async def client(alert_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(alert_settings)) as http:
        yield http


@pytest.fixture(scope="package")
async def worker_database(database_url: str, alert_settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_url, settings=alert_settings, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def work(run_jobs: Run, worker_database: Database) -> Run:
    """Run what is queued (and due) now, as a worker configured like ``alert_settings`` would."""

    async def run() -> None:
        with tasks_using(worker_database):
            await run_jobs()

    return run


def today() -> dt.date:
    """The organizations here count in UTC (no reporting settings): their today is today in UTC."""
    return dt.datetime.now(dt.UTC).date()


async def write_points(
    database: Database, account: Account, metric: str, values: dict[dt.date, float], *, source: str = "test"
) -> None:
    """Daily values of a metric, straight into the KPI store (replacing ``source``'s)."""
    async with database.tenant_transaction(org_id=account.org_id) as session:
        points = [Point(metric, "day", day, value) for day, value in values.items()]
        await replace_series(session, org_id=account.org_id, source=source, points=points)


async def evaluate(database: Database, account: Account) -> int:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return await evaluation.evaluate(session, org_id=account.org_id)


async def make_rule(
    client: httpx.AsyncClient, account: Account, condition: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    body = {"name": f"{condition['kind']} rule", "condition": condition, **fields}
    response = await client.post("/api/v1/notifications/rules", json=body, headers=account.headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def make_channel(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/notifications/channels", json=fields, headers=account.headers)
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def set_preferences(client: httpx.AsyncClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = await client.patch("/api/v1/notifications/preferences", json=fields, headers=account.headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()["data"]
    return found


async def history(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/notifications/history", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def inbox_of(client: httpx.AsyncClient, account: Account, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/notifications/inbox", params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def firings_of(database: Database, account: Account, rule_id: str) -> list[dict[str, Any]]:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        rows = await session.execute(
            text(
                "SELECT id, day, subject, title, resolved_at FROM alerts.firings WHERE rule_id = :rule"
                " ORDER BY fired_at, day"
            ),
            {"rule": uuid.UUID(rule_id)},
        )
        return [dict(row._mapping) for row in rows]


async def delivery_job(database: Database, delivery_id: str) -> dict[str, Any]:
    """The latest queue job of a delivery (its status, attempts, when it runs)."""
    async with database.sessionmaker() as session:
        row = (
            await session.execute(
                text(
                    "SELECT id, status::text, attempts, scheduled_at FROM procrastinate_jobs"
                    " WHERE task_name = 'alerts.deliver' AND args->>'delivery_id' = :id ORDER BY id DESC LIMIT 1"
                ),
                {"id": delivery_id},
            )
        ).one()
        return dict(row._mapping)


async def run_now(database: Database, delivery_id: str) -> None:
    """Bring a delivery's waiting job (a retry, the end of quiet hours) to now, as time passing would."""
    async with database.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() WHERE task_name = 'alerts.deliver'"
                " AND args->>'delivery_id' = :id AND status = 'todo'"
            ),
            {"id": delivery_id},
        )
