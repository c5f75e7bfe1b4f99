"""The queue worker killed under ``northstar run``: it is started again, and the job it held completes."""

from __future__ import annotations

import httpx

from tests.datasets.conftest import wait_for_job, wait_until_midway
from tests.factories import signup
from tests.faults.servers import Platform, healthy

ROWS = 300_000


async def test_a_killed_worker_is_restarted_and_its_job_completes(http: httpx.AsyncClient, platform: Platform) -> None:
    founder = await signup(http)
    first = platform.worker()
    accepted = await http.post(
        "/api/v1/generate",
        headers=founder.headers,
        json={"rows": ROWS, "seed": 5, "columns": [{"name": "n", "type": "int"}, {"name": "at", "type": "datetime"}]},
    )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["data"]["jobId"]
    await wait_until_midway(http, founder, job_id)
    first.kill()
    job = await wait_for_job(http, founder, job_id, within=120)
    assert job["status"] == "completed", job
    assert job["rowsDone"] == ROWS and job["attempts"] == 2
    health = await healthy(http, worker=True)
    assert health["workers"] == 1
    assert platform.worker().pid != first.pid
