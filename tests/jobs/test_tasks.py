"""Jobs survive a worker crash: a SIGKILLed worker's job is picked up again and finishes exactly once."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from tests.factories import Account
from tests.jobs.conftest import Workers, wait_for_job

ROWS = 1_500_000


async def test_killed_worker_job_completes_once(client: httpx.AsyncClient, founder: Account, worker: Workers,
                                                database_url: str) -> None:
    body = {"rows": ROWS, "seed": 1, "columns": [
        {"name": "id", "type": "int", "unique": True, "min": 1, "max": 10_000_000},
        {"name": "kind", "type": "enum", "values": ["a", "b", "c"]}]}
    response = await client.post("/api/v1/generate", json=body, headers=founder.headers)
    job_id = response.json()["data"]["jobId"]
    while True:  # kill it mid-job, with some batches committed and more to come
        job = await wait_for_job(client, founder, job_id, until=("in-progress", "completed"))
        assert job["status"] == "in-progress", "the job finished before the worker could be killed"
        if job["rowsDone"] > 0:
            break
    worker.kill()
    worker.restart()
    job = await wait_for_job(client, founder, job_id, within=120)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2 and job["rowsDone"] == ROWS
    table = f"datasets.d_{uuid.UUID(job['result']['datasetId']).hex}"
    with psycopg.connect(database_url) as connection:
        count, distinct_rows, distinct_ids = connection.execute(
            f"SELECT count(*), count(DISTINCT _row), count(DISTINCT id) FROM {table}").fetchone() or (0, 0, 0)
    assert count == distinct_rows == distinct_ids == ROWS
