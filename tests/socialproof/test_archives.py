"""Archives of raw event months: written to Parquet (zstd) on the moto S3 server, verified by reading back before the
partition is dropped (a corrupted or changed archive keeps it), restored for one org under its RLS, expired."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest

from northstar.core.db import Database
from northstar.core.storage import ObjectStore
from northstar.socialproof.service import archives, restores
from tests.conftest import BUCKET, Moto
from tests.factories import Account, add_member, signup
from tests.socialproof.archiving import (
    Month,
    Run,
    archived_month,
    drop_month,
    month,
    new_site,
    store,
    work,
    worker_database,
)

__all__ = ["month", "store", "work", "worker_database"]  # fixtures


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
    archived = await archived_month(client, database, month, store, founder, other_founder)
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
    archive_id = (await archived_month(client, database, month, store, founder, other_founder)).archive_id
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
    site = await new_site(client, founder)
    month.add(founder.org_id, site, 12)
    async with database.engine.begin() as connection:
        archive_id = await archives.write_archive(connection, month.month, store=store, row_group_rows=5)
    key = f"platform/{month.archive()['object_key']}"
    data = bytearray(moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    moto.client.put_object(Bucket=BUCKET, Key=key, Body=bytes(data))

    with pytest.raises(archives.ArchiveMismatch, match="checksum mismatch"):
        await drop_month(database, month, store)
    assert month.partition_exists()
    failed = month.archive()
    assert failed["id"] == archive_id and failed["status"] == "failed" and "checksum" in failed["error"]

    # the next run writes a new archive, which verifies, and only then the month goes
    assert await drop_month(database, month, store) == [month.month]
    assert not month.partition_exists()
    assert month.archive()["status"] == "verified" and month.archive()["id"] != archive_id


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            "UPDATE socialproof.notification_events SET url = 'https://changed.example.com/' WHERE site_id = %s",
            "spot check",
        ),
        (
            "INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, occurred_at)"
            " SELECT gen_random_uuid(), org_id, site_id, 'page_view', occurred_at FROM socialproof.notification_events"
            " WHERE site_id = %s LIMIT 1",
            "row count mismatch",
        ),
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
    site = await new_site(client, founder)
    month.add(founder.org_id, site, 10)
    async with database.engine.begin() as connection:
        await archives.write_archive(connection, month.month, store=store, row_group_rows=3)
    month.execute(change, site)
    with pytest.raises(archives.ArchiveMismatch, match=problem):
        await drop_month(database, month, store)
    assert month.partition_exists() and month.archive()["status"] == "failed"
    assert problem in month.archive()["error"]


async def test_archive_routes_by_role(
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await archived_month(client, database, month, store, founder, other_founder)).archive_id
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
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await archived_month(client, database, month, store, founder, other_founder)).archive_id
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
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    founder: Account,
    other_founder: Account,
) -> None:
    archive_id = (await archived_month(client, database, month, store, founder, other_founder)).archive_id
    other_site = await new_site(client, other_founder)
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
    assert (
        await client.post("/api/v1/archives/not-a-uuid/restore", headers=founder.headers, json={})
    ).status_code == 422
    assert (await client.get("/api/v1/archives?status=lost", headers=founder.headers)).status_code == 422
    assert (await client.get("/api/v1/archives?limit=1000", headers=founder.headers)).status_code == 422
    listed = await client.get(f"/api/v1/archive-restores?archiveId={archive_id}", headers=founder.headers)
    assert listed.json()["data"] == []  # nothing half-written

    month.execute("UPDATE socialproof.archives SET status = 'failed' WHERE id = %s", archive_id)
    refused = await client.post(path, headers=founder.headers, json={})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "archive_not_verified"


async def test_a_restore_of_an_archive_changed_in_storage_fails_and_writes_nothing(
    client: httpx.AsyncClient,
    database: Database,
    month: Month,
    store: ObjectStore,
    moto: Moto,
    founder: Account,
    other_founder: Account,
    work: Run,
) -> None:
    archive_id = (await archived_month(client, database, month, store, founder, other_founder)).archive_id
    key = f"platform/{month.archive()['object_key']}"
    data = moto.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    moto.client.put_object(Bucket=BUCKET, Key=key, Body=data[:-10] + b"0123456789")
    created = await client.post(f"/api/v1/archives/{archive_id}/restore", headers=founder.headers, json={})
    restore_id = created.json()["data"]["id"]
    await work()
    failed = (await client.get(f"/api/v1/archive-restores/{restore_id}", headers=founder.headers)).json()["data"]
    assert failed["status"] == "failed" and failed["rows"] == 0
    assert "checksum" in failed["error"]
    events = await client.get(f"/api/v1/archive-restores/{restore_id}/events", headers=founder.headers)
    assert events.status_code == 409 and events.json()["error"]["code"] == "restore_not_ready"
    with psycopg.connect(month.database_url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM socialproof.restored_events WHERE restore_id = %s", (restore_id,)
        ).fetchone()
    assert left == (0,)
