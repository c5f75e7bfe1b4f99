"""The data service end to end: HTTP API → queue → a real worker process → PostgreSQL and object storage."""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyarrow.parquet as pq
import pytest

from tests.clients import download
from tests.datasets import hostile_files
from tests.datasets.conftest import run_job, wait_for_job
from tests.factories import Account, add_member

pytestmark = pytest.mark.usefixtures("worker")

USERS = {
    "rows": 500,
    "seed": 7,
    "name": "users",
    "columns": [
        {"name": "id", "type": "int", "unique": True, "min": 1, "max": 1_000_000},
        {"name": "plan", "type": "enum", "values": ["free", "pro", "team"], "weights": [6, 3, 1]},
        {"name": "email", "type": "email"},
        {"name": "score", "type": "float", "min": 0, "max": 1, "nullRatio": 0.1},
    ],
}


async def _generate(client: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    return await run_job(client, account, "/api/v1/generate", body)


async def test_generate_then_query_then_export_then_download(client: httpx.AsyncClient, founder: Account) -> None:
    job = await _generate(client, founder, USERS)
    assert job["progress"] == 1.0 and job["rowsDone"] == 500 and job["attempts"] == 1
    dataset_id = job["result"]["datasetId"]
    dataset = (await client.get(f"/api/v1/datasets/{dataset_id}", headers=founder.headers)).json()["data"]
    assert dataset["status"] == "ready" and dataset["rowCount"] == 500
    assert [column["name"] for column in dataset["columns"]] == ["id", "plan", "email", "score"]
    page = (await client.get(f"/api/v1/datasets/{dataset_id}/rows?limit=100&page=2", headers=founder.headers)).json()
    assert page["meta"] == {"page": 2, "limit": 100, "total": 500}
    assert [row["_row"] for row in page["data"]] == list(range(101, 201))
    assert all(row["plan"] in ("free", "pro", "team") for row in page["data"])

    export = await run_job(
        client,
        founder,
        "/api/v1/export",
        {
            "source": {"type": "dataset", "id": dataset_id},
            "format": "csv",
            "columns": ["id", "plan", "score"],
            "filters": [{"column": "plan", "op": "eq", "value": "pro"}],
        },
    )
    rows = list(csv.DictReader(io.StringIO((await download(export["resultUri"])).decode())))
    assert rows and all(row["plan"] == "pro" for row in rows) and list(rows[0]) == ["id", "plan", "score"]
    assert export["result"]["rows"] == len(rows)
    assert len({row["id"] for row in rows}) == len(rows)


async def test_deleting_a_dataset_drops_its_rows(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    job = await _generate(client, founder, {**USERS, "rows": 10})
    dataset_id = job["result"]["datasetId"]
    deleted = await client.delete(f"/api/v1/datasets/{dataset_id}", headers=founder.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"/api/v1/datasets/{dataset_id}", headers=founder.headers)).status_code == 404
    with psycopg.connect(database_url) as connection:
        table = connection.execute("SELECT to_regclass(%s)", (f"datasets.d_{uuid.UUID(dataset_id).hex}",)).fetchone()
    assert table == (None,)


async def test_references_point_into_another_dataset(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    users = await _generate(client, founder, USERS)
    users_id = users["result"]["datasetId"]
    orders = await _generate(
        client,
        founder,
        {
            "rows": 300,
            "seed": 11,
            "columns": [
                {"name": "order_id", "type": "pattern", "pattern": "ORD-[A-Z]{3}-\\d{6}"},
                {
                    "name": "user_id",
                    "type": "reference",
                    "dataset": users_id,
                    "column": "id",
                    "distribution": {"type": "zipf", "a": 1.3},
                },
                {"name": "total", "type": "amount", "min": 5, "max": 500},
            ],
        },
    )
    user_ids = set()
    for page in (1, 2, 3, 4, 5):
        rows = (
            await client.get(f"/api/v1/datasets/{users_id}/rows?limit=100&page={page}", headers=founder.headers)
        ).json()["data"]
        user_ids |= {row["id"] for row in rows}
    export = await run_job(
        client,
        founder,
        "/api/v1/export",
        {
            "source": {"type": "dataset", "id": orders["result"]["datasetId"]},
            "format": "ndjson",
            "filters": [{"column": "total", "op": "gte", "value": 5}, {"column": "user_id", "op": "notNull"}],
        },
    )
    lines = [json.loads(line) for line in (await download(export["resultUri"])).splitlines()]
    assert len(lines) == 300 and {line["user_id"] for line in lines} <= user_ids
    assert all(line["order_id"].startswith("ORD-") and len(line["order_id"]) == 14 for line in lines)
    foreign = await client.post(
        "/api/v1/generate",
        headers=other_founder.headers,
        json={"rows": 5, "columns": [{"name": "u", "type": "reference", "dataset": users_id}]},
    )
    assert foreign.status_code == 404


async def test_same_seed_gives_byte_identical_files(client: httpx.AsyncClient, founder: Account) -> None:
    body = {**USERS, "output": {"dataset": False, "file": {"format": "parquet"}}}
    first = await _generate(client, founder, body)
    second = await _generate(client, founder, body)
    other = await _generate(client, founder, {**body, "seed": 8})
    files = [await download(job["resultUri"]) for job in (first, second, other)]
    assert hashlib.sha256(files[0]).digest() == hashlib.sha256(files[1]).digest()
    assert files[0] != files[2]
    table = pq.read_table(io.BytesIO(files[0]))
    assert table.num_rows == 500 and table.column_names == ["id", "plan", "email", "score"]


async def test_generated_dataset_is_identical_to_the_generated_file(
    client: httpx.AsyncClient, founder: Account
) -> None:
    job = await _generate(client, founder, {**USERS, "output": {"dataset": True, "file": {"format": "ndjson"}}})
    from_file = [json.loads(line) for line in (await download(job["resultUri"])).splitlines()]
    rows = (
        await client.get(f"/api/v1/datasets/{job['result']['datasetId']}/rows?limit=100", headers=founder.headers)
    ).json()["data"]
    assert [{k: v for k, v in row.items() if k != "_row"} for row in rows] == from_file[:100]


async def test_presets_are_listed_and_generate(client: httpx.AsyncClient, founder: Account) -> None:
    listed = (await client.get("/api/v1/generate/presets", headers=founder.headers)).json()["data"]
    assert {preset["name"] for preset in listed} == {"users", "products", "orders", "events", "saas_subscriptions"}
    users = next(preset for preset in listed if preset["name"] == "users")
    assert {"name", "type"} <= set(users["columns"][0])
    job = await _generate(client, founder, {"preset": "users", "rows": 300, "seed": 3})
    rows = (
        await client.get(f"/api/v1/datasets/{job['result']['datasetId']}/rows?limit=3", headers=founder.headers)
    ).json()["data"]
    assert len(rows) == 3 and all("@" in row["email"] for row in rows)


async def test_bad_schema_is_422_with_the_field_path_and_enqueues_nothing(
    client: httpx.AsyncClient, founder: Account
) -> None:
    bad = {**USERS, "columns": [*USERS["columns"], {"name": "n", "type": "int", "min": 10, "max": 1}]}
    response = await client.post("/api/v1/generate", json=bad, headers=founder.headers)
    assert response.status_code == 422
    assert any(
        detail["field"].endswith("columns.4.int.max") or detail["field"].endswith("columns.4.max")
        for detail in response.json()["error"]["details"]
    ), response.text
    listed = await client.get("/api/v1/jobs", headers=founder.headers)
    assert listed.json()["meta"]["total"] == 0


async def _upload(
    client: httpx.AsyncClient, account: Account, content: bytes, filename: str, **params: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/upload",
        params=params,
        headers=account.headers,
        files={"file": (filename, content, "application/octet-stream")},
    )


CSV_WITH_BAD_ROWS = (
    "id;name;amount;signed_up\n"
    "1;Anna;12.50;2024-01-03\n"
    "2;Ben;not-a-number;2024-01-04\n"
    '3;"Chloé; the second";7.25;2024-02-29\n'
    "4;Dan;3.00;2024-02-30\n"
    "5;Eve;1.00;2024-03-01\n"
).encode()


async def test_upload_csv_loads_valid_rows_and_reports_rejects(client: httpx.AsyncClient, founder: Account) -> None:
    schema = {
        "columns": [
            {"name": "id", "type": "int", "nullable": False},
            {"name": "name", "type": "string"},
            {"name": "amount", "type": "decimal", "precision": 10, "scale": 2},
            {"name": "signed_up", "type": "date"},
        ]
    }
    response = await _upload(client, founder, CSV_WITH_BAD_ROWS, "customers.csv", schema=json.dumps(schema))
    assert response.status_code == 201, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == "completed", job["errorMessage"]
    assert job["result"]["rowsLoaded"] == 3 and job["result"]["rowsRejected"] == 2
    dataset = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}", headers=founder.headers)).json()[
        "data"
    ]
    assert [column["name"] for column in dataset["columns"]] == ["id", "name", "amount", "signed_up"]
    rows = (await client.get(f"/api/v1/datasets/{dataset['id']}/rows", headers=founder.headers)).json()["data"]
    assert "Chloé; the second" in {row["name"] for row in rows}
    rejects = await client.get(f"/api/v1/files/{job['result']['rejectsFileId']}/download", headers=founder.headers)
    assert rejects.status_code == 307
    reported = list(csv.DictReader(io.StringIO((await download(rejects.headers["location"])).decode())))
    assert {(int(r["row_number"]), r["column"]) for r in reported} == {(2, "amount"), (4, "signed_up")}
    bad_schema = await _upload(
        client, founder, b"a\n1\n", "x.csv", schema='{"columns": [{"name": "A b", "type": "int"}]}'
    )
    assert bad_schema.status_code == 422
    assert bad_schema.json()["error"]["details"][0]["field"].startswith("schema.columns.0.name")


@pytest.mark.parametrize("kind", ["json", "ndjson", "parquet", "csv.gz"])
async def test_upload_each_format(client: httpx.AsyncClient, founder: Account, kind: str) -> None:
    records = [{"sku": f"SKU-{n}", "price": n * 1.5, "active": n % 2 == 0} for n in range(1, 51)]
    if kind == "json":
        content = json.dumps(records).encode()
    elif kind == "ndjson":
        content = "\n".join(json.dumps(record) for record in records).encode()
    elif kind == "parquet":
        import pyarrow as pa

        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(records), sink)
        content = sink.getvalue()
    else:
        text = "sku,price,active\n" + "".join(f"{r['sku']},{r['price']},{str(r['active']).lower()}\n" for r in records)
        content = gzip.compress(text.encode())
    response = await _upload(client, founder, content, f"products.{kind}")
    assert response.status_code == 201, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == "completed", job["errorMessage"]
    assert job["result"]["rowsLoaded"] == 50 and job["result"]["rowsRejected"] == 0


async def test_duplicate_upload_is_detected_by_checksum(client: httpx.AsyncClient, founder: Account) -> None:
    content = b"a,b\n1,2\n3,4\n"
    first = await _upload(client, founder, content, "one.csv")
    again = await _upload(client, founder, content, "renamed.csv")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["data"]["duplicateOf"] == first.json()["data"]["fileId"]


async def test_raw_body_upload(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.post(
        "/api/v1/upload?filename=raw.ndjson",
        content=b'{"x": 1}\n{"x": 2}\n',
        headers={**founder.headers, "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 201, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == "completed" and job["result"]["rowsLoaded"] == 2


async def test_hostile_uploads_fail_clearly(client: httpx.AsyncClient, founder: Account) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(200)
    response = await _upload(client, founder, png, "innocent.csv")
    assert response.status_code == 415 and "PNG" in response.json()["error"]["message"]

    whole = gzip.compress(b"a,b\n" + "".join(f"{n},{n * 7919 % 104729}\n" for n in range(50_000)).encode())
    truncated = whole[: len(whole) // 2]
    job_id = (await _upload(client, founder, truncated, "cut.csv.gz")).json()["data"]["jobId"]
    failed = await wait_for_job(client, founder, job_id)
    assert failed["status"] == "failed" and failed["errorMessage"] and failed["attempts"] == 1

    header_only = (await _upload(client, founder, b"a,b,c\n", "empty.csv")).json()["data"]["jobId"]
    failed = await wait_for_job(client, founder, header_only)
    assert failed["status"] == "failed" and "row" in failed["errorMessage"]


@pytest.mark.parametrize(
    ("build", "outcome"),
    [
        (lambda d: hostile_files.wide_csv(d), "failed"),
        (lambda d: hostile_files.huge_line(d, line_bytes=4 << 20), "failed"),
        (lambda d: hostile_files.invalid_utf8(d, clean_rows=2000, bad_rows=(2001, 2003)), "completed"),
        (lambda d: hostile_files.legacy_encoding_csv(d), "completed"),
        (lambda d: hostile_files.unclosed_json_array(d), "failed"),
    ],
    ids=["10k-columns", "huge-line", "invalid-utf8-rows", "latin-1", "unclosed-json"],
)
async def test_hostile_files_end_in_a_clear_state(
    client: httpx.AsyncClient, founder: Account, tmp_path: Path, build: Callable[[Path], Path], outcome: str
) -> None:
    path = build(tmp_path)
    response = await _upload(client, founder, path.read_bytes(), path.name)
    assert response.status_code == 201, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == outcome and job["attempts"] == 1, job
    if outcome == "failed":
        assert job["errorMessage"] and "Traceback" not in job["errorMessage"]
    else:
        assert job["result"]["rowsLoaded"] > 0


async def test_csv_export_neutralises_formulas(client: httpx.AsyncClient, founder: Account) -> None:
    content = b'name,note\nmallory,=HYPERLINK("http://evil")\nbob,+1+2\nalice,plain\n'
    uploaded = await _upload(client, founder, content, "x.csv")
    job = await wait_for_job(client, founder, uploaded.json()["data"]["jobId"])
    export = await run_job(
        client, founder, "/api/v1/export", {"source": {"type": "file", "id": job["result"]["fileId"]}, "format": "csv"}
    )
    rows = list(csv.DictReader(io.StringIO((await download(export["resultUri"])).decode())))
    notes = {row["name"]: row["note"] for row in rows}
    assert notes["mallory"].startswith("'=") and notes["bob"].startswith("'+") and notes["alice"] == "plain"


async def test_export_of_jobs_and_audit(client: httpx.AsyncClient, founder: Account) -> None:
    await _generate(client, founder, {**USERS, "rows": 10})
    jobs_export = await run_job(client, founder, "/api/v1/export", {"source": {"type": "jobs"}, "format": "ndjson"})
    lines = [json.loads(line) for line in (await download(jobs_export["resultUri"])).splitlines()]
    assert {line["type"] for line in lines} >= {"generation"}
    audit_export = await run_job(
        client, founder, "/api/v1/export", {"source": {"type": "audit"}, "format": "json", "gzip": True}
    )
    events = json.loads(gzip.decompress(await download(audit_export["resultUri"])))
    assert any(event["action"].startswith("datasets.") or "generate" in event["action"] for event in events)


async def test_analyst_cannot_export_audit_and_investor_sees_no_data(
    client: httpx.AsyncClient, founder: Account
) -> None:
    analyst = await add_member(client, founder, "analyst")
    response = await client.post("/api/v1/export", json={"source": {"type": "audit"}}, headers=analyst.headers)
    assert response.status_code == 403
    investor = await add_member(client, founder, "investor")
    assert (await client.get("/api/v1/jobs", headers=investor.headers)).status_code == 403
    assert (await client.post("/api/v1/generate", json=USERS, headers=analyst.headers)).status_code == 403


async def test_cancel_and_retry(client: httpx.AsyncClient, founder: Account) -> None:
    big = {"rows": 3_000_000, "columns": [{"name": "n", "type": "int"}, {"name": "who", "type": "person_name"}]}
    job_id = (await client.post("/api/v1/generate", json=big, headers=founder.headers)).json()["data"]["jobId"]
    await wait_for_job(client, founder, job_id, until=("in-progress",))
    cancelled = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=founder.headers)
    assert cancelled.status_code == 202
    job = await wait_for_job(client, founder, job_id)
    assert job["status"] == "cancelled" and job["rowsDone"] < 3_000_000
    again = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=founder.headers)
    assert again.status_code == 409
    retried = await client.post(f"/api/v1/jobs/{job_id}/retry", headers=founder.headers)
    assert retried.status_code == 202 and retried.json()["data"]["status"] == "pending"
    await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=founder.headers)


async def test_other_tenants_see_nothing(client: httpx.AsyncClient, founder: Account, other_founder: Account) -> None:
    job = await _generate(
        client, founder, {**USERS, "rows": 20, "output": {"dataset": True, "file": {"format": "csv"}}}
    )
    dataset_id, file_id = job["result"]["datasetId"], job["result"]["fileId"]
    for method, path in [
        ("GET", f"/api/v1/status/{job['id']}"),
        ("GET", f"/api/v1/datasets/{dataset_id}"),
        ("GET", f"/api/v1/datasets/{dataset_id}/rows"),
        ("GET", f"/api/v1/files/{file_id}"),
        ("GET", f"/api/v1/files/{file_id}/download"),
        ("POST", f"/api/v1/jobs/{job['id']}/retry"),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel"),
    ]:
        foreign = await client.request(method, path, headers=other_founder.headers)
        missing = await client.request(
            method,
            path.replace(job["id"], str(uuid.uuid4()))
            .replace(dataset_id, str(uuid.uuid4()))
            .replace(file_id, str(uuid.uuid4())),
            headers=other_founder.headers,
        )
        assert foreign.status_code == missing.status_code == 404, (path, foreign.text)
    for path in ("/api/v1/jobs", "/api/v1/datasets"):
        assert (await client.get(path, headers=other_founder.headers)).json()["meta"]["total"] == 0
    export = await client.post(
        "/api/v1/export", json={"source": {"type": "dataset", "id": dataset_id}}, headers=other_founder.headers
    )
    assert export.status_code == 404
    link = await client.get(f"/api/v1/files/{file_id}/download", headers=founder.headers)
    assert link.status_code == 307 and "X-Amz-Signature=" in link.headers["location"]


async def test_upload_past_the_size_limit_is_413(settings: Any, founder: Account) -> None:
    from northstar.app import create_app
    from tests.conftest import running

    small = settings.model_copy(deep=True)
    small.datasets.max_upload_bytes = 1000
    async with running(create_app(small)) as limited:
        response = await limited.post(
            "/api/v1/upload?filename=big.csv",
            content=b"a\n" + b"1\n" * 2000,
            headers={**founder.headers, "content-type": "text/csv"},
        )
    assert response.status_code == 413


async def test_links_signed_by_the_platform(settings: Any, founder: Account, other_founder: Account) -> None:
    """Without S3, ``resultUri`` is our own HMAC link: exactly one file, one org, until it expires, under a key
    derived for links (the root secret itself signs nothing)."""
    import time

    from northstar.app import create_app
    from northstar.datasets.service import link_signature
    from tests.conftest import running

    local = settings.model_copy(deep=True)
    local.storage_url = None
    async with running(create_app(local)) as app_client:
        upload = await app_client.post(
            "/api/v1/upload", headers=founder.headers, files={"file": ("mine.csv", b"a,b\n1,2\n")}
        )
        file_id = upload.json()["data"]["fileId"]
        expires = int(time.time()) + 60

        def link(org: uuid.UUID, until: int, signature: str | None = None) -> str:
            signed = signature or link_signature(local, org_id=org, file_id=uuid.UUID(file_id), expires=until)
            return f"/api/v1/files/{file_id}/content?org={org}&expires={until}&signature={signed}"

        good = await app_client.get(link(founder.org_id, expires))
        assert good.status_code == 200 and good.content == b"a,b\n1,2\n"
        founders = link_signature(local, org_id=founder.org_id, file_id=uuid.UUID(file_id), expires=expires)
        root_signed = hmac.new(
            local.resolved_secret_key().encode(), f"{founder.org_id}:{file_id}:{expires}".encode(), hashlib.sha256
        ).hexdigest()
        for bad in (
            link(other_founder.org_id, expires, founders),
            link(founder.org_id, expires + 1, founders),
            link(founder.org_id, expires, root_signed),
            link(founder.org_id, int(time.time()) - 1),
            f"/api/v1/files/{file_id}/content",
        ):
            assert (await app_client.get(bad)).status_code == 404, bad


async def test_dataset_tables_are_under_forced_row_level_security(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, database_url: str
) -> None:
    job = await _generate(client, founder, {**USERS, "rows": 25})
    table = f"datasets.d_{uuid.UUID(job['result']['datasetId']).hex}"
    with psycopg.connect(database_url) as connection:
        flags = connection.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass", (table,)
        ).fetchone()
        assert flags == (True, True)
        seen = {}
        for account in (founder, other_founder):
            with connection.transaction():
                connection.execute(
                    "SELECT set_config('role', 'northstar_app', true), set_config('northstar.org_id', %s, true)",
                    (str(account.org_id),),
                )
                seen[account.org_id] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert seen == {founder.org_id: (25,), other_founder.org_id: (0,)}
