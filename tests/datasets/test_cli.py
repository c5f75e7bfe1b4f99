"""``northstar jobs list`` and ``northstar jobs follow`` against the running API, as the user who logged in: no
``--org`` needed, whole tables when the output is not a terminal, and JSON on request."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.datasets.conftest import run_job, wait_for_job
from tests.factories import Account
from tests.test_cli import northstar

pytestmark = pytest.mark.usefixtures("worker")


async def test_jobs_list_and_follow_in_the_logged_in_organization(
    client: httpx.AsyncClient, served: str, founder: Account, tmp_path: Path
) -> None:
    job = await run_job(
        client, founder, "/api/v1/generate", {"rows": 100, "seed": 5, "columns": [{"name": "n", "type": "int"}]}
    )
    upload = await client.post(
        "/api/v1/upload", headers=founder.headers, files={"file": ("empty.csv", b"just,a,header\n")}
    )
    failed = await wait_for_job(client, founder, upload.json()["data"]["jobId"])
    assert failed["status"] == "failed" and failed["errorMessage"]
    config = tmp_path / "config"
    logged_in = await northstar(
        config, "login", "--url", served, "--email", founder.email, "--password", founder.password
    )
    assert logged_in.exit_code == 0, logged_in.output

    listed = await northstar(config, "jobs", "list")
    assert listed.exit_code == 0, listed.output
    rows = {line.split()[1]: line for line in listed.output.splitlines() if line.startswith("│")}
    assert rows.keys() == {job["id"], failed["id"]}
    # not cut to 80 columns in a pipe: every id whole, the error message whole, each row on one line
    assert f"{failed['errorCode']}: {failed['errorMessage']}" in rows[failed["id"]] and len(rows[failed["id"]]) > 80
    assert "generation" in rows[job["id"]] and "completed" in rows[job["id"]] and "100 of 100" in rows[job["id"]]

    as_json = await northstar(config, "jobs", "list", "--json", "--status", "failed")
    assert as_json.exit_code == 0, as_json.output
    assert [(item["id"], item["errorMessage"]) for item in orjson.loads(as_json.output)] == [
        (failed["id"], failed["errorMessage"])
    ]

    followed = await northstar(config, "jobs", "follow", job["id"])
    assert followed.exit_code == 0 and "completed" in followed.output, followed.output
    not_completed = await northstar(config, "jobs", "follow", failed["id"])
    assert not_completed.exit_code == 1 and f"job failed: {failed['errorCode']}:" in not_completed.output
    other = await northstar(config, "jobs", "follow", job["id"], "--org", "00000000-0000-0000-0000-000000000000")
    assert other.exit_code == 1 and "Traceback" not in other.output
    missing = await northstar(config, "jobs", "follow", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and "No such job" in missing.output
