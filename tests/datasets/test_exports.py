"""Exports end to end, read back from the downloaded files: formula guards in every CSV, empty results, checks at
request time, job errors a client may see, true row counts, and one job shape for both export routes."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import gzip
import io
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.types.json import Jsonb

from northstar.audit.service import record
from northstar.core.context import ClientMeta
from northstar.core.db import Database, tenant_binding
from northstar.datasets import transfer
from northstar.datasets.exports import ExportColumn, export_query
from northstar.datasets.formats import ColumnDef, open_writer
from northstar.metrics.series import Point, replace_series
from tests.clients import download, sse_events
from tests.conftest import BUCKET, Moto
from tests.datasets.conftest import run_job, wait_for_job
from tests.factories import Account

pytestmark = pytest.mark.usefixtures("worker")

# OWASP's formula starts, LF too, and the same behind leading whitespace (spreadsheets skip it before a formula).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
FORMULAS = [f"{start}1+cmd|' /C calc'!A0" for start in TRIGGERS] + [" =1+2", "  @SUM(A1:A2)", " \t-2+3"]
HARMLESS = ["-42.5", "+7", "plain = text", "a-b"]
# Request models strip surrounding whitespace, so values sent in a JSON body keep only the visible starts.
VISIBLE_FORMULAS = [value for value in FORMULAS if not value[0].isspace()]
INTERNALS = ("datasets.d_", "relation", "psycopg", "Traceback", "org/", "recursion", "Error(", "errors.")


def _csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode(), newline="")))


def _assert_guarded(cells: list[str], formulas: list[str]) -> None:
    """Every formula comes back prefixed with ``'``; numbers and plain text come back as they were."""
    for formula in formulas:
        assert "'" + formula in cells, (formula, cells)
        assert formula not in cells, formula
    for value in HARMLESS:
        assert value in cells, (value, cells)


async def _export(client: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    return await run_job(client, account, "/api/v1/export", {"format": "csv", **body})


async def _upload_notes(client: httpx.AsyncClient, account: Account, notes: list[str]) -> dict[str, Any]:
    """An NDJSON upload (JSON keeps every character of a string exactly), imported into a dataset."""
    content = "".join(json.dumps({"id": index, "note": note}) + "\n" for index, note in enumerate(notes)).encode()
    response = await client.post(
        "/api/v1/upload", headers=account.headers, files={"file": ("notes.ndjson", content, "application/x-ndjson")}
    )
    assert response.status_code == 201, response.text
    job = await wait_for_job(client, account, response.json()["data"]["jobId"])
    assert job["status"] == "completed" and job["result"]["rowsLoaded"] == len(notes), job
    return job


# CSV/formula injection ---------------------------------------------------------------------------------------


async def test_exports_of_uploaded_files_and_their_datasets_guard_every_formula_start(
    client: httpx.AsyncClient, founder: Account
) -> None:
    job = await _upload_notes(client, founder, FORMULAS + HARMLESS)
    file, dataset = job["result"]["fileId"], job["result"]["datasetId"]
    for source in ({"type": "file", "id": file}, {"type": "dataset", "id": dataset}):
        plain = await _export(client, founder, {"source": source})
        _assert_guarded([row["note"] for row in _csv_rows(await download(plain["resultUri"]))], FORMULAS)
        zipped = await _export(client, founder, {"source": source, "gzip": True})
        rows = _csv_rows(gzip.decompress(await download(zipped["resultUri"])))
        _assert_guarded([row["note"] for row in rows], FORMULAS)


async def test_generated_files_and_datasets_guard_every_formula_start(
    client: httpx.AsyncClient, founder: Account
) -> None:
    values = VISIBLE_FORMULAS + HARMLESS
    job = await run_job(
        client,
        founder,
        "/api/v1/generate",
        {
            "rows": 200,
            "seed": 5,
            "columns": [{"name": "note", "type": "enum", "values": values}],
            "output": {"dataset": True, "file": {"format": "csv"}},
        },
    )
    generated = [row["note"] for row in _csv_rows(await download(job["resultUri"]))]
    _assert_guarded(generated, VISIBLE_FORMULAS)
    exported = await _export(client, founder, {"source": {"type": "dataset", "id": job["result"]["datasetId"]}})
    _assert_guarded([row["note"] for row in _csv_rows(await download(exported["resultUri"]))], VISIBLE_FORMULAS)


async def test_jobs_export_guards_every_formula_start(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    messages = FORMULAS + HARMLESS
    for _ in messages:
        await run_job(client, founder, "/api/v1/generate", {"rows": 1, "columns": [{"name": "n", "type": "int"}]})
    with psycopg.connect(database_url) as connection:  # whatever a job's message may say, the export is safe
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT id FROM jobs.jobs WHERE org_id = %s ORDER BY created_at", (founder.org_id,)
            ).fetchall()
        ]
        for job_id, message in zip(ids, messages, strict=True):
            connection.execute("UPDATE jobs.jobs SET error_message = %s WHERE id = %s", (message, job_id))
    exported = await _export(client, founder, {"source": {"type": "jobs"}})
    _assert_guarded([row["errorMessage"] for row in _csv_rows(await download(exported["resultUri"]))], FORMULAS)


async def test_audit_export_guards_every_formula_start(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        for agent in FORMULAS + HARMLESS:  # the user agent is whatever the caller sent
            await record(
                session,
                org_id=founder.org_id,
                action="test.agent",
                actor_type="user",
                actor_id=founder.user_id,
                client=ClientMeta(ip="127.0.0.1", user_agent=agent, request_id=""),
            )
    exported = await _export(
        client,
        founder,
        {"source": {"type": "audit"}, "filters": [{"column": "action", "op": "eq", "value": "test.agent"}]},
    )
    _assert_guarded([row["userAgent"] for row in _csv_rows(await download(exported["resultUri"]))], FORMULAS)


async def test_dashboard_export_guards_every_formula_start(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    day = dt.date(2024, 1, 1)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await replace_series(
            session,
            org_id=founder.org_id,
            source="traffic",
            points=[
                Point("sessions", "day", day + dt.timedelta(days=index), index, dims=dims)
                for index, dims in enumerate(FORMULAS + HARMLESS)
            ],
        )
    response = await client.post(
        "/api/v1/dashboard/export", headers=founder.headers, json={"metric": "sessions", "format": "csv"}
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == "completed", job
    _assert_guarded([row["dims"] for row in _csv_rows(await download(job["resultUri"]))], FORMULAS)


# Empty results -------------------------------------------------------------------------------------------------

SMALL = {
    "rows": 10,
    "seed": 3,
    "columns": [
        {"name": "id", "type": "int", "min": 1, "max": 100},
        {"name": "plan", "type": "enum", "values": ["free", "pro"]},
    ],
}


@pytest.mark.parametrize(
    ("file_format", "zipped"),
    [
        ("csv", False),
        ("csv", True),
        ("json", False),
        ("json", True),
        ("ndjson", False),
        ("ndjson", True),
        ("parquet", False),
    ],
)
async def test_an_export_matching_no_rows_is_a_valid_empty_file(
    client: httpx.AsyncClient, founder: Account, file_format: str, zipped: bool
) -> None:
    dataset = (await run_job(client, founder, "/api/v1/generate", SMALL))["result"]["datasetId"]
    job = await _export(
        client,
        founder,
        {
            "source": {"type": "dataset", "id": dataset},
            "format": file_format,
            "gzip": zipped,
            "filters": [{"column": "id", "op": "gt", "value": 1000}],
        },
    )
    assert (job["rowsDone"], job["rowsTotal"], job["result"]["rows"], job["progress"]) == (0, 0, 0, 1.0)
    content = await download(job["resultUri"])
    if zipped:
        content = gzip.decompress(content)
    if file_format == "csv":
        assert list(csv.reader(io.StringIO(content.decode(), newline=""))) == [["id", "plan"]]
    elif file_format == "json":
        assert json.loads(content) == []
    elif file_format == "ndjson":
        assert content == b""
    else:
        table = pq.read_table(io.BytesIO(content))
        assert table.num_rows == 0 and table.column_names == ["id", "plan"]
        assert str(table.schema.field("id").type) == "int64"


async def test_an_export_of_jobs_matching_nothing_has_the_header(client: httpx.AsyncClient, founder: Account) -> None:
    job = await _export(
        client,
        founder,
        {"source": {"type": "jobs"}, "filters": [{"column": "status", "op": "eq", "value": "no-such-status"}]},
    )
    header = next(csv.reader(io.StringIO((await download(job["resultUri"])).decode(), newline="")))
    assert header[:3] == ["id", "type", "status"] and "errorMessage" in header


# Checks at request time ----------------------------------------------------------------------------------------

TYPED = {
    "rows": 20,
    "seed": 9,
    "columns": [
        {"name": "id", "type": "int", "min": 1, "max": 1000},
        {"name": "score", "type": "float"},
        {"name": "price", "type": "decimal", "precision": 6, "scale": 2},
        {"name": "active", "type": "bool"},
        {"name": "day", "type": "date"},
        {"name": "at", "type": "datetime"},
        {"name": "key", "type": "uuid"},
        {"name": "plan", "type": "enum", "values": ["free", "pro"]},
    ],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"filters": [{"column": "id", "op": "gt", "value": "abc"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "id", "op": "eq", "value": 1.5}]}, "body.filters.0.value"),
        ({"filters": [{"column": "id", "op": "eq", "value": 2**63}]}, "body.filters.0.value"),
        (
            {
                "filters": [
                    {"column": "plan", "op": "eq", "value": "pro"},
                    {"column": "id", "op": "in", "value": [1, "two"]},
                ]
            },
            "body.filters.1.value.1",
        ),
        ({"filters": [{"column": "score", "op": "lt", "value": "high"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "price", "op": "lt", "value": "cheap"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "active", "op": "eq", "value": "maybe"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "day", "op": "gte", "value": "2024-13-45"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "at", "op": "lt", "value": "yesterday"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "key", "op": "eq", "value": "not-a-uuid"}]}, "body.filters.0.value"),
        ({"filters": [{"column": "nope", "op": "eq", "value": 1}]}, "body.filters.0.column"),
        ({"columns": ["id", "nope"]}, "body.columns.1"),
        ({"name": "../../etc/passwd"}, "body.name"),
        ({"name": "/absolute"}, "body.name"),
        ({"name": "back\\slash"}, "body.name"),
        ({"name": ".."}, "body.name"),
        ({"name": "nul\u0000byte"}, "body.name"),
        ({"name": "line\nbreak"}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
    ],
    ids=[
        "int-text",
        "int-fraction",
        "int-overflow",
        "in-item",
        "float",
        "decimal",
        "bool",
        "date",
        "datetime",
        "uuid",
        "unknown-filter-column",
        "unknown-column",
        "dot-dot",
        "absolute",
        "backslash",
        "only-dots",
        "nul",
        "newline",
        "too-long",
    ],
)
async def test_bad_exports_are_422_naming_the_field_and_queue_nothing(
    client: httpx.AsyncClient, founder: Account, change: dict[str, Any], field: str
) -> None:
    dataset = (await run_job(client, founder, "/api/v1/generate", TYPED))["result"]["datasetId"]
    response = await client.post(
        "/api/v1/export", headers=founder.headers, json={"source": {"type": "dataset", "id": dataset}, **change}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [detail["field"] for detail in error["details"]], error
    assert not any(word in response.text for word in INTERNALS), response.text
    exports = await client.get("/api/v1/jobs?type=export", headers=founder.headers)
    assert exports.json()["meta"]["total"] == 0


async def test_typed_filters_are_taken_in_the_column_type(client: httpx.AsyncClient, founder: Account) -> None:
    generated = await run_job(client, founder, "/api/v1/generate", {**TYPED, "rows": 300})
    rows = (
        await client.get(f"/api/v1/datasets/{generated['result']['datasetId']}/rows?limit=100", headers=founder.headers)
    ).json()["data"]
    first = rows[0]
    job = await _export(
        client,
        founder,
        {
            "source": {"type": "dataset", "id": generated["result"]["datasetId"]},
            "format": "ndjson",
            "name": "Typed filters (Q1) v2",
            "filters": [
                {"column": "id", "op": "gte", "value": str(first["id"])},  # numbers may come as text
                {"column": "price", "op": "lt", "value": "1e30"},  # beyond decimal(6, 2), still a fair comparison
                {"column": "active", "op": "in", "value": [True, False]},
                {"column": "day", "op": "lte", "value": "9999-12-31"},
                {"column": "at", "op": "gt", "value": "2000-01-01T00:00:00"},
                {"column": "key", "op": "ne", "value": str(uuid.uuid4()).upper()},
                {"column": "plan", "op": "contains", "value": "r"},
            ],
        },
    )
    lines = [json.loads(line) for line in (await download(job["resultUri"])).splitlines()]
    assert lines and all(line["id"] >= first["id"] for line in lines)
    assert job["rowsDone"] == job["rowsTotal"] == len(lines)
    assert unquote(urlsplit(job["resultUri"]).path).endswith("/Typed filters (Q1) v2.ndjson")


async def test_a_dataset_name_that_looks_like_a_path_still_names_a_generated_file(
    client: httpx.AsyncClient, founder: Account
) -> None:
    job = await run_job(
        client,
        founder,
        "/api/v1/generate",
        {**SMALL, "name": "../../etc/Q1 users", "output": {"dataset": True, "file": {"format": "csv"}}},
    )
    assert unquote(urlsplit(job["resultUri"]).path).endswith("/_.._etc_Q1 users.csv")
    dataset = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}", headers=founder.headers)).json()
    assert dataset["data"]["name"] == "../../etc/Q1 users"  # a dataset's name is only a label


# Job errors a client may see ---------------------------------------------------------------------------------


def _assert_public(job: dict[str, Any], code: str) -> None:
    assert job["status"] == "failed" and job["errorCode"] == code, job
    assert job["errorMessage"] and not any(word in job["errorMessage"] for word in INTERNALS), job["errorMessage"]


def _drop_table(database_url: str, dataset_id: str) -> None:
    with psycopg.connect(database_url) as connection:
        connection.execute(f"DROP TABLE datasets.d_{uuid.UUID(dataset_id).hex}")


async def test_an_export_whose_source_vanished_fails_with_a_stable_code(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    dataset = (await run_job(client, founder, "/api/v1/generate", SMALL))["result"]["datasetId"]
    _drop_table(database_url, dataset)  # gone behind the API's back, as if dropped between request and run
    response = await client.post(
        "/api/v1/export", headers=founder.headers, json={"source": {"type": "dataset", "id": dataset}}
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    _assert_public(job, "source_missing")
    assert job["attempts"] == 1  # retrying cannot bring it back


async def test_a_generation_whose_reference_vanished_fails_with_a_stable_code(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    users = (await run_job(client, founder, "/api/v1/generate", SMALL))["result"]["datasetId"]
    _drop_table(database_url, users)
    response = await client.post(
        "/api/v1/generate",
        headers=founder.headers,
        json={"rows": 5, "columns": [{"name": "user_id", "type": "reference", "dataset": users, "column": "id"}]},
    )
    assert response.status_code == 202, response.text
    _assert_public(await wait_for_job(client, founder, response.json()["data"]["jobId"]), "source_missing")


async def test_an_import_whose_stored_file_vanished_fails_with_a_stable_code(
    client: httpx.AsyncClient, founder: Account, database_url: str, moto: Moto
) -> None:
    response = await client.post(
        "/api/v1/upload", headers=founder.headers, files={"file": ("header-only.csv", b"a,b\n", "text/csv")}
    )
    job_id = response.json()["data"]["jobId"]
    first = await wait_for_job(client, founder, job_id)
    assert first["status"] == "failed" and first["errorCode"] == "no_data_rows", first
    with psycopg.connect(database_url) as connection:
        key = connection.execute("SELECT stored_path FROM jobs.files WHERE job_id = %s", (job_id,)).fetchone()
    assert key is not None
    moto.client.delete_object(Bucket=BUCKET, Key=f"platform/{key[0]}")
    assert (await client.post(f"/api/v1/jobs/{job_id}/retry", headers=founder.headers)).status_code == 202
    _assert_public(await wait_for_job(client, founder, job_id), "file_missing")


async def test_json_nested_past_the_parser_limit_is_a_reject_not_an_internal_error(
    client: httpx.AsyncClient, founder: Account
) -> None:
    deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = await client.post(
        "/api/v1/upload",
        headers=founder.headers,
        files={"file": ("deep.ndjson", f'{deep}\n{{"a": 1}}\n'.encode(), "text/plain")},
    )
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"])
    assert job["status"] == "completed", job
    assert (job["result"]["rowsLoaded"], job["result"]["rowsRejected"], job["attempts"]) == (1, 1, 1)
    rejects = await client.get(f"/api/v1/files/{job['result']['rejectsFileId']}/download", headers=founder.headers)
    reasons = [row["reason"] for row in _csv_rows(await download(rejects.headers["location"]))]
    assert reasons and "deeper than" in reasons[0] and "recursion" not in reasons[0]


# Row counts ----------------------------------------------------------------------------------------------------

BIG = 100_000  # five of the test workers' batches (NORTHSTAR_DATASETS__BATCH_ROWS=20000)


async def test_a_large_export_reports_its_true_count_up_front(served: str, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=60) as http:
        generated = await run_job(
            http,
            founder,
            "/api/v1/generate",
            {
                "rows": BIG,
                "seed": 4,
                "columns": [
                    {"name": "n", "type": "int", "distribution": {"type": "sequence", "start": 1}},
                    {"name": "who", "type": "person_name"},
                ],
            },
        )
        dataset = generated["result"]["datasetId"]
        async with http.stream(
            "GET", "/events/stream?topics=job.status,job.progress", headers=founder.headers
        ) as stream:
            events = sse_events(stream)
            assert (await anext(events))[0] == "ready"
            filtered = {"column": "n", "op": "gt", "value": BIG // 4}
            seen: dict[str, list[dict[str, Any]]] = {}
            for filters, expected in (([], BIG), ([filtered], BIG - BIG // 4)):
                response = await http.post(
                    "/api/v1/export",
                    headers=founder.headers,
                    json={"source": {"type": "dataset", "id": dataset}, "format": "csv", "filters": filters},
                )
                job_id = response.json()["data"]["jobId"]
                seen[job_id] = []
                async with asyncio.timeout(60):
                    async for _, data in events:
                        if data["jobId"] == job_id:
                            seen[job_id].append(data)
                            if data["status"] in ("completed", "failed"):
                                break
                job = await wait_for_job(http, founder, job_id)
                assert job["status"] == "completed", job
                assert job["rowsDone"] == job["rowsTotal"] == job["result"]["rows"] == expected
                assert len(_csv_rows(await download(job["resultUri"]))) == expected
                running = [event for event in seen[job_id] if event["status"] == "in-progress"]
                assert any(event["rowsTotal"] == expected and event["rowsDone"] < expected for event in running), seen[
                    job_id
                ]


async def test_a_generated_file_reports_every_row_done(client: httpx.AsyncClient, founder: Account) -> None:
    job = await run_job(
        client,
        founder,
        "/api/v1/generate",
        {
            "rows": BIG,
            "seed": 6,
            "columns": [{"name": "who", "type": "person_name"}],
            "output": {"dataset": False, "file": {"format": "ndjson", "gzip": True}},
        },
    )
    assert job["rowsDone"] == job["rowsTotal"] == BIG and job["progress"] == 1.0
    assert len(gzip.decompress(await download(job["resultUri"])).splitlines()) == BIG


# One job shape, API names ------------------------------------------------------------------------------------


async def test_both_export_routes_answer_with_one_job_shape(client: httpx.AsyncClient, founder: Account) -> None:
    dashboard = await client.post("/api/v1/dashboard/export", headers=founder.headers, json={"metric": "mrr"})
    exported = await client.post("/api/v1/export", headers=founder.headers, json={"source": {"type": "kpis"}})
    assert dashboard.status_code == exported.status_code == 202
    assert list(dashboard.json()) == list(exported.json()) == ["data"]
    assert list(dashboard.json()["data"]) == list(exported.json()["data"]) == ["jobId"]
    first = await wait_for_job(client, founder, dashboard.json()["data"]["jobId"])
    second = await wait_for_job(client, founder, exported.json()["data"]["jobId"])
    assert first.keys() == second.keys() and first["type"] == second["type"] == "export"
    assert first["status"] == second["status"] == "completed"


@pytest.mark.parametrize("source", ["jobs", "audit"])
async def test_jobs_and_audit_exports_use_the_api_field_names(
    client: httpx.AsyncClient, founder: Account, source: str
) -> None:
    await run_job(client, founder, "/api/v1/generate", SMALL)
    api = (await client.get(f"/api/v1/{source}?limit=1", headers=founder.headers)).json()["data"][0]
    by_api_name = {
        "jobs": {"column": "rowsDone", "op": "gte", "value": 0},
        "audit": {"column": "targetType", "op": "notNull"},
    }[source]
    job = await _export(client, founder, {"source": {"type": source}, "format": "json", "filters": [by_api_name]})
    exported = json.loads(await download(job["resultUri"]))
    assert exported and set(exported[0]) <= set(api), set(exported[0]) - set(api)
    if source == "audit":
        assert set(exported[0]) == set(api)
    else:
        assert {"rowsDone", "rowsTotal", "errorCode", "errorMessage", "createdAt"} <= set(exported[0])
    snake = await client.post(
        "/api/v1/export",
        headers=founder.headers,
        json={"source": {"type": source}, "columns": ["rows_done" if source == "jobs" else "target_type"]},
    )
    assert snake.status_code == 422 and snake.json()["error"]["details"][0]["field"] == "body.columns.0"


# Cells at the guard's edges: RE2's \s leaves out \v, \p{Z} holds no-break and ideographic spaces but not U+200B.
EDGE_CELLS = [*FORMULAS, *HARMLESS, "", " ", "\v=1", "\f=1", "\u00a0=1", "\u3000@x", "\u2028-1", "\u200b=1", "-", "="]
EDGE_CELLS += ["1e5", "-.5", "+1.5E-3", "--1", "- 1", "é=", "'=1", 'say "hi", then\nleave']


def test_postgresql_renders_csv_exports_as_the_arrow_writer(database_url: str) -> None:
    """The CSV PostgreSQL renders for an export is, line for line, what ``CsvBatchWriter`` writes for the same
    rows: the formula guard, quoting, NULL against empty text, booleans, dates, timestamps, decimals, uuids, JSON."""
    columns = [
        ColumnDef("t", "string"),
        ColumnDef("b", "bool"),
        ColumnDef("d", "date"),
        ColumnDef("ts", "datetime"),
        ColumnDef("n", "decimal", precision=12, scale=2),
        ColumnDef("i", "int"),
        ColumnDef("u", "uuid"),
        ColumnDef("j", "json"),
    ]
    moment = dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.UTC)
    rows = [
        (
            cell,
            [True, False, None][index % 3],
            None if index % 4 == 3 else dt.date(2024, 1, 1) + dt.timedelta(days=index),
            None if index % 5 == 4 else moment + dt.timedelta(hours=index),
            None if index % 6 == 5 else Decimal(index * 7) / 4 - 3,
            None if index % 7 == 6 else index - 10,
            None if index % 2 else uuid.UUID(int=index),
            None if index % 3 == 2 else ['{"a": 1}', "[1, 2]", '"=x"', "-5"][index % 4],
        )
        for index, cell in enumerate([*EDGE_CELLS, None])
    ]
    stored_rows = [(*row[:-1], row[-1] and Jsonb(json.loads(row[-1]))) for row in rows]
    dataset_id, org_id = uuid.uuid4(), uuid.uuid4()
    transfer.create_dataset_table(database_url, dataset_id=dataset_id, columns=columns)
    table = f"datasets.d_{dataset_id.hex}"
    with psycopg.connect(database_url) as connection:
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (org_id, _row, t, b, d, ts, n, i, u, j) VALUES ({', '.join(['%s'] * 10)})",
                [(org_id, number, *row) for number, row in enumerate(stored_rows)],
            )
        connection.commit()
        query = export_query({"datasetId": str(dataset_id)}, [ExportColumn(column.name, column) for column in columns])
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(tenant_binding(org_id=org_id, settings={"TimeZone": "UTC", "DateStyle": "ISO"}))
            with cursor.copy(query.csv) as copy:
                rendered = b"".join(bytes(block) for block in copy)
    schema = pa.schema([column.arrow_field() for column in columns])
    sink = io.BytesIO()
    with open_writer("csv", sink, schema) as writer:
        arrow_rows = [(*row[:6], row[6] and str(row[6]), row[7]) for row in rows]
        writer.write(
            pa.RecordBatch.from_pylist([dict(zip(schema.names, row, strict=True)) for row in arrow_rows], schema)
        )
    written = sink.getvalue().split(b"\n", 1)[1]
    assert rendered.decode().split("\n") == written.decode().split("\n")
