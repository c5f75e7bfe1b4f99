"""Archives of raw event months: written to Parquet (zstd) on the moto S3 server, verified by reading back before the
partition is dropped (a corrupted or changed archive keeps it), restored for one org under its RLS, expired."""

from __future__ import annotations

import datetime as dt
import functools
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest

from northstar.core.db import Database
from northstar.core.queue import task_storage, tasks_using
from northstar.core.storage import ObjectStore, open_object_store
from northstar.settings import Settings
from northstar.socialproof.service import archives, restores, rollups
from tests.conftest import BUCKET, Moto
from tests.factories import Account, add_member, signup

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


async def _site(client: httpx.AsyncClient, account: Account) -> uuid.UUID:
    response = await client.post(
        "/api/v1/sites",
        headers=account.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["data"]["id"])


async def _drop(database: Database, month: Month, store: ObjectStore, *, row_group_rows: int = 4) -> list[dt.date]:
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


async def _archived(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, founder: Account, other: Account
) -> Archived:
    """The founder's site has 9 events in the month (3 with awkward text), the other org's 5; the month is archived
    and dropped."""
    site = await _site(client, founder)
    other_site = await _site(client, other)
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
        payload={"text": "línea\nnueva, \"quoted\"", "empty": "", "nested": {"a": [1, 2.5, None]}},
    )
    month.add(other.org_id, other_site, 5, event_name="")
    founder_rows = month.rows(founder.org_id)
    assert await _drop(database, month, store) == [month.month]
    return Archived(uuid.UUID(str(month.archive()["id"])), site, other_site, founder_rows)


async def test_a_month_is_archived_verified_dropped_and_restored_for_one_org(
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    moto: Moto,
    founder: Account,
    other_founder: Account,
    work: Run,
    tmp_path: Path,
) -> None:
    archived = await _archived(client, database, month, store, founder, other_founder)
    expected, other_site = archived.founder_rows, archived.other_site
    assert not month.partition_exists()
    archive = month.archive()
    assert archive["status"] == "verified" and archive["rows"] == 14 and archive["schema_version"] == 1
    assert archive["range_start"] == dt.datetime(month.month.year, month.month.month, 1, tzinfo=dt.UTC)
    assert archive["first_occurred_at"].day == 1 and archive["verified_at"] is not None

    # the object really is on the S3 server: Parquet, zstd, in row groups, with the recorded checksum
    local = tmp_path / "archive.parquet"
    local.write_bytes(moto.client.get_object(Bucket=BUCKET, Key=f"platform/{archive['object_key']}")["Body"].read())
    assert archives.hashlib.sha256(local.read_bytes()).hexdigest() == archive["checksum"]
    parquet = pq.ParquetFile(local)
    assert parquet.metadata.num_rows == 14 and parquet.metadata.num_row_groups >= 3
    assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"

    # each org sees its own share of the archive, and nothing of the other's
    listed = await client.get("/api/v1/archives", headers=founder.headers)
    assert listed.status_code == 200, listed.text
    mine = [item for item in listed.json()["data"] if item["id"] == str(archive["id"])]
    assert len(mine) == 1 and mine[0]["rows"] == 9 and mine[0]["status"] == "verified"
    theirs = await client.get(f"/api/v1/archives/{archive['id']}", headers=other_founder.headers)
    assert theirs.json()["data"]["rows"] == 5

    restore = await client.post(f"/api/v1/archives/{archive['id']}/restore", headers=founder.headers, json={})
    assert restore.status_code == 202, restore.text
    assert restore.json()["data"]["status"] == "pending"
    restore_id = restore.json()["data"]["id"]
    await work()
    done = (await client.get(f"/api/v1/archive-restores/{restore_id}", headers=founder.headers)).json()["data"]
    assert done["status"] == "ready", done
    assert done["rows"] == 9 and done["expiresAt"] is not None

    page = await client.get(f"/api/v1/archive-restores/{restore_id}/events?limit=100", headers=founder.headers)
    assert page.status_code == 200, page.text
    events = page.json()["data"]
    assert page.json()["meta"]["total"] == 9
    restored = [
        (
            uuid.UUID(event["id"]),
            uuid.UUID(event["siteId"]),
            event["eventType"],
            event["eventName"],
            uuid.UUID(event["notificationId"]) if event["notificationId"] else None,
            event["visitorId"],
            event["url"],
            event["payload"],
            dt.datetime.fromisoformat(event["occurredAt"]),
            dt.datetime.fromisoformat(event["receivedAt"]),
        )
        for event in events
    ]
    assert sorted(restored, key=lambda row: (row[8], row[0])) == [tuple(row) for row in expected]
    custom = [event for event in events if event["eventType"] == "custom"]
    assert custom[0]["url"] == "https://shop.example.com/a,b\nc" and custom[0]["eventName"] == 'Said "hi", twice'

    # the other org's restore holds its own rows only; neither sees the other's restore
    other_restore = await client.post(
        f"/api/v1/archives/{archive['id']}/restore", headers=other_founder.headers, json={"siteId": str(other_site)}
    )
    assert other_restore.status_code == 202, other_restore.text
    await work()
    other_id = other_restore.json()["data"]["id"]
    other_page = await client.get(f"/api/v1/archive-restores/{other_id}/events", headers=other_founder.headers)
    assert other_page.json()["meta"]["total"] == 5
    assert {event["eventName"] for event in other_page.json()["data"]} == {""}
    for path in (f"/api/v1/archive-restores/{other_id}", f"/api/v1/archive-restores/{other_id}/events"):
        assert (await client.get(path, headers=founder.headers)).status_code == 404
    listed_restores = await client.get("/api/v1/archive-restores", headers=founder.headers)
    assert [item["id"] for item in listed_restores.json()["data"]] == [restore_id]


async def test_a_restore_of_a_period_and_its_expiry(
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
    work: Run,
) -> None:
    archive_id = (await _archived(client, database, month, store, founder, other_founder)).archive_id
    start, _ = archives.month_range(month.month)
    period = {"start": start.isoformat(), "end": (start + dt.timedelta(days=3)).isoformat(), "keepDays": 2}
    created = await client.post(f"/api/v1/archives/{archive_id}/restore", headers=founder.headers, json=period)
    assert created.status_code == 202, created.text
    restore_id = uuid.UUID(created.json()["data"]["id"])
    pending = await client.get(f"/api/v1/archive-restores/{restore_id}/events", headers=founder.headers)
    assert pending.status_code == 409 and pending.json()["error"]["code"] == "restore_not_ready"
    await work()
    ready = (await client.get(f"/api/v1/archive-restores/{restore_id}", headers=founder.headers)).json()["data"]
    assert ready["status"] == "ready" and ready["keepDays"] == 2
    # the founder's events fall on days 1 to 6 and 1 to 3: six in the first three days
    assert ready["rows"] == 6
    expires = dt.datetime.fromisoformat(ready["expiresAt"])
    assert dt.timedelta(days=2) - dt.timedelta(minutes=5) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=2)

    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await restores.expire_restores(session, now=expires - dt.timedelta(seconds=1)) == 0
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await restores.expire_restores(session, now=expires + dt.timedelta(seconds=1)) == 6
    gone = await client.get(f"/api/v1/archive-restores/{restore_id}/events", headers=founder.headers)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "restore_expired"
    expired = (await client.get(f"/api/v1/archive-restores/{restore_id}", headers=founder.headers)).json()["data"]
    assert expired["status"] == "expired"
    with psycopg.connect(month.database_url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM socialproof.restored_events WHERE restore_id = %s", (restore_id,)
        ).fetchone()
    assert left == (0,)


async def test_a_corrupted_archive_keeps_the_partition_and_is_recorded(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, moto: Moto, founder: Account
) -> None:
    site = await _site(client, founder)
    month.add(founder.org_id, site, 12)
    async with database.engine.begin() as connection:
        archive_id = await archives.write_archive(connection, month.month, store=store, row_group_rows=5)
    key = f"platform/{month.archive()['object_key']}"
    data = bytearray(moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    moto.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))

    with pytest.raises(archives.ArchiveMismatch, match="checksum mismatch"):
        await _drop(database, month, store)
    assert month.partition_exists()
    failed = month.archive()
    assert failed["id"] == archive_id and failed["status"] == "failed" and "checksum" in failed["error"]

    # the next run writes a new archive, which verifies, and only then the month goes
    assert await _drop(database, month, store) == [month.month]
    assert not month.partition_exists()
    assert month.archive()["status"] == "verified" and month.archive()["id"] != archive_id


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("UPDATE socialproof.notification_events SET url = 'https://changed.example.com/' WHERE site_id = %s",
         "spot check"),
        ("INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, occurred_at)"
         " SELECT gen_random_uuid(), org_id, site_id, 'page_view', occurred_at FROM socialproof.notification_events"
         " WHERE site_id = %s LIMIT 1", "row count mismatch"),
    ],
)
async def test_a_partition_that_changed_after_archiving_is_kept(
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    change: str,
    problem: str,
) -> None:
    site = await _site(client, founder)
    month.add(founder.org_id, site, 10)
    async with database.engine.begin() as connection:
        await archives.write_archive(connection, month.month, store=store, row_group_rows=3)
    month.execute(change, site)
    with pytest.raises(archives.ArchiveMismatch, match=problem):
        await _drop(database, month, store)
    assert month.partition_exists() and month.archive()["status"] == "failed"
    assert problem in month.archive()["error"]


async def test_archive_routes_by_role(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await _archived(client, database, month, store, founder, other_founder)).archive_id
    for role, may_read, may_restore in (
        ("admin", True, True),
        ("member", True, False),
        ("analyst", True, False),
        ("investor", False, False),
    ):
        account = await add_member(client, founder, role)
        listed = await client.get("/api/v1/archives", headers=account.headers)
        assert listed.status_code == (200 if may_read else 403), (role, listed.text)
        one = await client.get(f"/api/v1/archives/{archive_id}", headers=account.headers)
        assert one.status_code == (200 if may_read else 403), role
        restores_listed = await client.get("/api/v1/archive-restores", headers=account.headers)
        assert restores_listed.status_code == (200 if may_read else 403), role
        restore = await client.post(f"/api/v1/archives/{archive_id}/restore", headers=account.headers, json={})
        assert restore.status_code == (202 if may_restore else 403), (role, restore.text)
        if not may_restore:
            assert restore.json()["error"]["code"] == "forbidden"


async def test_archives_of_another_org_answer_like_missing_ones(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await _archived(client, database, month, store, founder, other_founder)).archive_id
    created = await client.post(f"/api/v1/archives/{archive_id}/restore", headers=founder.headers, json={})
    restore_id = created.json()["data"]["id"]
    outsider = await signup(client)
    for method, path in (
        ("GET", f"/api/v1/archives/{archive_id}"),
        ("POST", f"/api/v1/archives/{archive_id}/restore"),
        ("GET", f"/api/v1/archive-restores/{restore_id}"),
        ("GET", f"/api/v1/archive-restores/{restore_id}/events"),
        ("GET", f"/api/v1/archives/{uuid.uuid4()}"),
        ("POST", f"/api/v1/archives/{uuid.uuid4()}/restore"),
    ):
        response = await client.request(method, path, headers=outsider.headers, json={} if method == "POST" else None)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] in ("archive_not_found", "not_found")
    assert (await client.get("/api/v1/archives", headers=outsider.headers)).json()["data"] == []
    listed = await client.get(f"/api/v1/archive-restores?archiveId={archive_id}", headers=outsider.headers)
    assert listed.json()["data"] == []


async def test_bad_restore_requests_are_refused_and_write_nothing(
    client: httpx.AsyncClient, database: Database, month: Month, store: ObjectStore, founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await _archived(client, database, month, store, founder, other_founder)).archive_id
    other_site = await _site(client, other_founder)
    start, end = archives.month_range(month.month)
    path = f"/api/v1/archives/{archive_id}/restore"
    for body, status, field in (
        ({"start": end.isoformat(), "end": start.isoformat()}, 422, "body.end"),
        ({"start": (end + dt.timedelta(days=3)).isoformat()}, 422, "body.start"),
        ({"keepDays": 0}, 422, "body.keepDays"),
        ({"keepDays": 365}, 422, "body.keepDays"),
        ({"unknown": 1}, 422, None),
        ({"start": "yesterday"}, 422, None),
        ({"siteId": "not-a-uuid"}, 422, None),
        ({"siteId": str(other_site)}, 404, None),
    ):
        response = await client.post(path, headers=founder.headers, json=body)
        assert response.status_code == status, (body, response.text)
        if field is not None:
            assert field in json.dumps(response.json()["error"]["details"]), response.text
    assert (await client.post("/api/v1/archives/not-a-uuid/restore", headers=founder.headers, json={})).status_code == 422
    assert (await client.get("/api/v1/archives?status=lost", headers=founder.headers)).status_code == 422
    assert (await client.get("/api/v1/archives?limit=1000", headers=founder.headers)).status_code == 422
    listed = await client.get(f"/api/v1/archive-restores?archiveId={archive_id}", headers=founder.headers)
    assert listed.json()["data"] == []  # nothing half-written

    month.execute("UPDATE socialproof.archives SET status = 'failed' WHERE id = %s", archive_id)
    refused = await client.post(path, headers=founder.headers, json={})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "archive_not_verified"
