"""``northstar jobs list`` and ``northstar jobs follow`` against the same database the API writes."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from typer.testing import CliRunner

from northstar.cli import app
from tests.factories import Account
from tests.jobs.conftest import run_job

pytestmark = pytest.mark.usefixtures("worker")


async def test_jobs_list_and_follow(client: httpx.AsyncClient, founder: Account) -> None:
    job = await run_job(client, founder, "/api/v1/generate",
                        {"rows": 100, "seed": 5, "columns": [{"name": "n", "type": "int"}]})
    runner = CliRunner(env={"COLUMNS": "200"})
    listed = await asyncio.to_thread(runner.invoke, app, ["jobs", "list", "--org", str(founder.org_id)])
    assert listed.exit_code == 0, listed.output
    assert job["id"][:8] in listed.output and "generation" in listed.output
    followed = await asyncio.to_thread(runner.invoke, app, ["jobs", "follow", job["id"], "--org", str(founder.org_id)])
    assert followed.exit_code == 0 and "completed" in followed.output, followed.output
    other = await asyncio.to_thread(runner.invoke, app, ["jobs", "follow", job["id"], "--org",
                                                         "00000000-0000-0000-0000-000000000000"])
    assert other.exit_code == 1 and "No such job" in other.output
