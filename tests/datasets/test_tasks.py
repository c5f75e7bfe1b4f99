"""Queue behaviour of data jobs: exactly once after a worker crash, backoff with jitter, the retention sweep."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from procrastinate.jobs import Job as QueueJob

from northstar.core.db import Database
from northstar.core.queue import Backoff, runtime
from northstar.datasets import transfer
from northstar.datasets.formats import ColumnDef
from northstar.datasets.tasks import retention_sweep
from tests.conftest import BUCKET, Moto
from tests.datasets.conftest import Workers, run_job, wait_for_job, wait_until_midway
from tests.factories import Account

ROWS = 1_500_000


async def test_killed_worker_job_completes_once(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database_url: str
) -> None:
    body = {
        "rows": ROWS,
        "seed": 1,
        "columns": [
            {"name": "id", "type": "int", "unique": True, "min": 1, "max": 10_000_000},
            {"name": "kind", "type": "enum", "values": ["a", "b", "c"]},
        ],
    }
    response = await client.post("/api/v1/generate", json=body, headers=founder.headers)
    job_id = response.json()["data"]["jobId"]
    await wait_until_midway(client, founder, job_id)
    worker.kill()
    worker.restart()
    job = await wait_for_job(client, founder, job_id, within=120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2 and job["rowsDone"] == ROWS
    table = f"datasets.d_{uuid.UUID(job['result']['datasetId']).hex}"
    with psycopg.connect(database_url) as connection:
        count, distinct_rows, distinct_ids = connection.execute(
            f"SELECT count(*), count(DISTINCT _row), count(DISTINCT id) FROM {table}"
        ).fetchone() or (0, 0, 0)
    assert count == distinct_rows == distinct_ids == ROWS


async def test_upload_killed_midway_loads_every_row_once(
    client: httpx.AsyncClient, founder: Account, worker: Workers, database_url: str
) -> None:
    rows = 600_000  # 30 of the test workers' batches, loaded on two connections
    content = b"n,label\n" + b"".join(b"%d,row %d\n" % (n, n) for n in range(rows))
    response = await client.post(
        "/api/v1/upload",
        headers=founder.headers,
        files={"file": ("many.csv", content, "text/csv")},
    )
    assert response.status_code == 201, response.text
    job_id = response.json()["data"]["jobId"]
    await wait_until_midway(client, founder, job_id)
    worker.kill()
    worker.restart()
    job = await wait_for_job(client, founder, job_id, within=120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2 and job["result"]["rowsLoaded"] == rows
    table = f"datasets.d_{uuid.UUID(job['result']['datasetId']).hex}"
    with psycopg.connect(database_url) as connection:
        count, distinct_rows, distinct_values = connection.execute(
            f"SELECT count(*), count(DISTINCT _row), count(DISTINCT n) FROM {table}"
        ).fetchone() or (0, 0, 0)
    assert count == distinct_rows == distinct_values == rows


@pytest.mark.parametrize("failing", [0, 1])
def test_batches_loaded_in_parallel_commit_in_order(database_url: str, founder: Account, failing: int) -> None:
    """A batch fails on one connection: the batches after it, loaded on the other, do not commit (a gap would
    make a resumed job skip its rows); the ones before it stay, and the checkpoint names their end."""
    dataset_id = uuid.uuid4()
    transfer.create_dataset_table(database_url, dataset_id=dataset_id, columns=[ColumnDef("n", "int")])
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "INSERT INTO jobs.jobs (org_id, type, params) VALUES (%s, 'upload', '{}') RETURNING id", (founder.org_id,)
        ).fetchone()
    assert row is not None
    batches = [
        transfer.CopyBatch(["_row", "n"], b"".join(b"%d,%d\n" % (n, n) for n in range(start, start + 1000)))
        for start in (1, 1001, 2001)
    ]
    batches[failing] = transfer.CopyBatch(["_row", "n"], b"9999,not a number\n")
    load = transfer.OrderedLoad(
        database_url,
        org_id=founder.org_id,
        job_id=row[0],
        dataset_id=dataset_id,
        quota=2**40,
        rows_total=None,
        connections=2,
    )

    def load_all() -> None:
        with load:
            for number, batch in enumerate(batches, 1):
                load.submit(batch, rows_done=number * 1000)

    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        load_all()
    with psycopg.connect(database_url) as connection:
        loaded = connection.execute(f"SELECT count(*) FROM datasets.d_{dataset_id.hex}").fetchone()
        done = connection.execute("SELECT rows_done FROM jobs.jobs WHERE id = %s", (row[0],)).fetchone()
    assert loaded == done == (failing * 1000,)


async def test_retention_sweep_deletes_expired_exports_and_old_jobs(
    client: httpx.AsyncClient, founder: Account, database: Database, database_url: str, moto: Moto, worker: Workers
) -> None:
    job = await run_job(
        client,
        founder,
        "/api/v1/generate",
        {
            "rows": 10,
            "seed": 2,
            "columns": [{"name": "n", "type": "int"}],
            "output": {"dataset": False, "file": {"format": "csv"}},
        },
    )
    kept = await run_job(client, founder, "/api/v1/generate", {"rows": 10, "columns": [{"name": "n", "type": "int"}]})
    file_id = job["result"]["fileId"]
    with psycopg.connect(database_url) as connection:
        key = connection.execute("SELECT stored_path FROM jobs.files WHERE id = %s", (file_id,)).fetchone()
        connection.execute("UPDATE jobs.files SET expires_at = now() - interval '1 minute' WHERE id = %s", (file_id,))
        connection.execute("UPDATE jobs.jobs SET finished_at = now() - interval '400 days' WHERE id = %s", (job["id"],))
    assert key is not None
    runtime.database = database
    assert await retention_sweep(timestamp=0) >= 2
    assert (await client.get(f"/api/v1/status/{job['id']}", headers=founder.headers)).status_code == 404
    assert (await client.get(f"/api/v1/status/{kept['id']}", headers=founder.headers)).status_code == 200
    assert (await client.get(f"/api/v1/files/{file_id}", headers=founder.headers)).status_code == 404
    listed = moto.client.list_objects_v2(Bucket=BUCKET, Prefix=f"platform/{key[0]}")
    assert listed.get("KeyCount", 0) == 0


def test_backoff_grows_with_jitter_and_stops_on_permanent_errors() -> None:
    strategy = Backoff(max_attempts=4, base_seconds=2, max_seconds=5, transient=(OSError,))

    def wait_after(attempts: int, error: Exception) -> float | None:
        job = QueueJob(
            id=1, queue="datasets", lock=None, queueing_lock=None, task_name="t", attempts=attempts, task_kwargs={}
        )
        decision = strategy.get_retry_decision(exception=error, job=job)
        return None if decision is None else (decision.retry_at - datetime.now(UTC)).total_seconds()

    waits = [wait_after(n, OSError()) for n in range(3)]
    assert all(w is not None for w in waits)
    assert 0.9 <= waits[0] <= 2 and 1.9 <= waits[1] <= 4 and 2.4 <= waits[2] <= 5  # capped at max_seconds
    assert wait_after(3, OSError()) is None  # the fourth attempt was the last
    assert wait_after(0, ValueError("bad data")) is None
    assert len({round(wait_after(1, OSError()) or 0, 3) for _ in range(20)}) > 1  # jittered
