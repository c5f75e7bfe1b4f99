"""Archiving helpers shared by the API and console tests: a past month with its partition, events written into it
as the owner, the retention step for that month only, and a worker whose object store is the moto S3 server."""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from northstar.core.db import Database
from northstar.core.queue import task_storage, tasks_using
from northstar.core.storage import ObjectStore, open_object_store
from northstar.settings import Settings
from northstar.socialproof.service import archives, rollups
from tests.factories import Account

Run = Callable[[], Awaitable[None]]
_USED_MONTHS: set[dt.date] = set()


def _fresh_month() -> dt.date:
    """A month long ago that no other test of this run uses (other files use 2024)."""
    while True:
        month = dt.date(secrets.choice(range(2001, 2016)), secrets.choice(range(1, 13)), 1)
        if month not in _USED_MONTHS:
            _USED_MONTHS.add(month)
            return month


@pytest.fixture(scope="module")
def store(settings: Settings) -> ObjectStore:
    return open_object_store(settings.storage_url, data_dir=settings.data_dir, s3_endpoint_url=settings.s3_endpoint_url)


@pytest.fixture(scope="module")
async def worker_database(database_url: str, settings: Settings) -> AsyncIterator[Database]:
    database = Database(database_url, settings=settings, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def work(run_jobs: Run, worker_database: Database) -> Iterator[Run]:
    """Run what is queued now, as a worker whose object store is the moto S3 server."""

    async def run() -> None:
        with tasks_using(worker_database):
            await run_jobs()

    task_storage.cache_clear()
    with tasks_using(worker_database):
        task_storage()
    yield run
    task_storage.cache_clear()


@dataclass
class Month:
    month: dt.date
    database_url: str

    def add(self, org_id: uuid.UUID, site_id: uuid.UUID, count: int, **fields: Any) -> list[uuid.UUID]:
        """``count`` raw events of one site, straight into the month's partition (as the owner)."""
        ids = [uuid.uuid4() for _ in range(count)]
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            for number, event_id in enumerate(ids):
                at = dt.datetime(self.month.year, self.month.month, 1 + number % 27, 10, number % 60, tzinfo=dt.UTC)
                connection.execute(
                    "INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, event_name,"
                    " notification_id, visitor_id, url, payload, occurred_at, received_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        event_id,
                        org_id,
                        site_id,
                        fields.get("event_type", "purchase"),
                        fields.get("event_name"),
                        fields.get("notification_id"),
                        fields.get("visitor_id", f"v{number}"),
                        fields.get("url", f"https://shop.example.com/p/{number}"),
                        json.dumps(fields.get("payload", {"firstName": "Anna", "n": number})),
                        at,
                        at + dt.timedelta(seconds=1, microseconds=number),
                    ),
                )
        return ids

    def rows(self, org_id: uuid.UUID) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            return connection.execute(
                "SELECT id, site_id, event_type, event_name, notification_id, visitor_id, url, payload, occurred_at,"
                " received_at FROM socialproof.notification_events WHERE org_id = %s AND occurred_at >= %s"
                " AND occurred_at < %s ORDER BY occurred_at, id",
                (org_id, *archives.month_range(self.month)),
            ).fetchall()

    def partition_exists(self) -> bool:
        with psycopg.connect(self.database_url) as connection:
            found = connection.execute(
                "SELECT to_regclass(%s)", (f"socialproof.notification_events_{self.month:%Y_%m}",)
            ).fetchone()
        return found != (None,)

    def archive(self) -> dict[str, Any]:
        with psycopg.connect(self.database_url, row_factory=psycopg.rows.dict_row) as connection:
            found = connection.execute(
                "SELECT * FROM socialproof.archives WHERE month = %s ORDER BY created_at DESC LIMIT 1", (self.month,)
            ).fetchone()
        assert found is not None
        return found

    def execute(self, statement: str, *params: Any) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute(statement, params)


@pytest.fixture
def month(database_url: str) -> Iterator[Month]:
    """A month past retention with its partitions, counted as rolled up (as the fold task would)."""
    chosen = Month(_fresh_month(), database_url)
    chosen.execute("SELECT socialproof.ensure_event_partitions(%s)", chosen.month)
    chosen.execute(
        "INSERT INTO socialproof.event_months (month, rolled_up_at) VALUES (%s, now())"
        " ON CONFLICT (month) DO UPDATE SET rolled_up_at = now(), dropped_at = NULL",
        chosen.month,
    )
    yield chosen
    chosen.execute("SELECT socialproof.drop_event_month(%s)", chosen.month)


async def new_site(client: httpx.AsyncClient, account: Account) -> uuid.UUID:
    response = await client.post(
        "/api/v1/sites",
        headers=account.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def drop_month(database: Database, month: Month, store: ObjectStore, *, row_group_rows: int = 4) -> list[dt.date]:
    """The retention step for this month only: ``now`` is when it has just passed retention."""
    now = rollups._as_utc(rollups.next_month(month.month)) + dt.timedelta(days=91)
    archiver = functools.partial(archives.archive_month, store=store, row_group_rows=row_group_rows)
    async with database.engine.begin() as connection:
        return await rollups.drop_expired_months(connection, retention_days=90, now=now, archivers=[archiver])


@dataclass
class Archived:
    archive_id: uuid.UUID
    site: uuid.UUID
    other_site: uuid.UUID
    founder_rows: list[tuple[Any, ...]]


async def archived_month(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, founder: Account, other: Account
) -> Archived:
    """The founder's site has 9 events in the month (3 with awkward text), the other org's 5; the month is archived
    and dropped."""
    site = await new_site(client, founder)
    other_site = await new_site(client, other)
    month.add(founder.org_id, site, 6)
    month.add(
        founder.org_id,
        site,
        3,
        event_type="custom",
        event_name='Said "hi", twice',
        notification_id=uuid.uuid4(),
        visitor_id=None,
        url="https://shop.example.com/a,b\nc",
        payload={"text": 'línea\nnueva, "quoted"', "empty": "", "nested": {"a": [1, 2.5, None]}},
    )
    month.add(other.org_id, other_site, 5, event_name="")
    founder_rows = month.rows(founder.org_id)
    assert await drop_month(database, month, store) == [month.month]
    return Archived(uuid.UUID(str(month.archive()["id"])), site, other_site, founder_rows)
