"""Imports end to end, with a worker whose limits are small: decompression bombs and the org's storage quota
(which generation respects too), reserved column names, type inference with a few bad values, and types given
with the upload."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from northstar.app import create_app
from northstar.datasets.transfer import ORG_STORED_BYTES
from northstar.settings import Settings
from tests.conftest import BUCKET, Moto, running
from tests.datasets import hostile_files
from tests.datasets.conftest import wait_for_job
from tests.factories import Account
from tests.workers import Workers

MiB = 1 << 20
LIMITS = {
    "max_decompressed_bytes": 8 * MiB,
    "max_compression_ratio": 50,
    "max_upload_rows": 60_000,
    "max_org_storage_bytes": 7 * MiB,
}

pytestmark = pytest.mark.usefixtures("limited_worker")


@pytest.fixture(scope="module")
def limited_worker(worker: Workers) -> Iterator[Workers]:
    """The worker restarted with ``LIMITS`` for this module, and as it was afterwards."""
    usual = worker.extra
    worker.extra = {**usual, **{f"NORTHSTAR_DATASETS__{name.upper()}": str(value) for name, value in LIMITS.items()}}
    worker.restart()
    yield worker
    worker.extra = usual
    worker.restart()


async def _upload(
    client: httpx.AsyncClient, account: Account, path_or_bytes: Path | bytes, name: str | None = None, **params: str
) -> httpx.Response:
    content = await asyncio.to_thread(path_or_bytes.read_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    filename = name or (path_or_bytes.name if isinstance(path_or_bytes, Path) else "upload.csv")
    return await client.post(
        "/api/v1/upload",
        params=params,
        headers=account.headers,
        files={"file": (filename, content, "application/octet-stream")},
    )


async def _imported(
    client: httpx.AsyncClient, account: Account, path_or_bytes: Path | bytes, name: str | None = None, **params: str
) -> dict[str, Any]:
    response = await _upload(client, account, path_or_bytes, name, **params)
    assert response.status_code == 201, response.text
    return await wait_for_job(client, account, response.json()["data"]["jobId"], within=120)


def _stored_bytes(database_url: str, org_id: uuid.UUID) -> int:
    """What the org stores, as the platform counts it, read as the app role under the org's row-level security."""
    with psycopg.connect(database_url) as connection, connection.transaction():
        connection.execute(
            "SELECT set_config('role', 'northstar_app', true), set_config('northstar.org_id', %s, true)", (str(org_id),)
        )
        row = connection.execute(ORG_STORED_BYTES).fetchone()
    return int(row[0]) if row else -1


def _dataset_tables_with_rows_of(database_url: str, org_id: uuid.UUID) -> list[str]:
    with psycopg.connect(database_url) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = 'datasets'"
            )
        ]
        return [
            table
            for table in tables
            if connection.execute(f"SELECT 1 FROM {table} WHERE org_id = %s LIMIT 1", (org_id,)).fetchone()
        ]


def _objects_of(moto: Moto, org_id: uuid.UUID) -> list[str]:
    listed = moto.client.list_objects_v2(Bucket=BUCKET, Prefix=f"platform/org/{org_id}/")
    return [item["Key"] for item in listed.get("Contents", [])]


async def _assert_nothing_left(client: httpx.AsyncClient, account: Account, database_url: str, moto: Moto) -> None:
    """No dataset, no rows, no file and no object: nothing the failed upload left counts against the org."""
    assert (await client.get("/api/v1/datasets", headers=account.headers)).json()["meta"]["total"] == 0
    assert _dataset_tables_with_rows_of(database_url, account.org_id) == []
    assert _objects_of(moto, account.org_id) == []
    assert _stored_bytes(database_url, account.org_id) == 0


# Decompression bombs and other uploads past a limit --------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "code", "limit"),
    [
        (lambda d: hostile_files.gzip_bomb(d), "compression_ratio_too_high", "maxCompressionRatio"),
        (lambda d: hostile_files.gzip_bomb(d, members=4), "compression_ratio_too_high", "maxCompressionRatio"),
        (lambda d: hostile_files.blank_lines_bomb(d), "compression_ratio_too_high", "maxCompressionRatio"),
        (lambda d: hostile_files.random_gzip_csv(d, 9 * MiB), "decompressed_too_large", "maxDecompressedBytes"),
        (lambda d: hostile_files.parquet_rows_bomb(d), "too_many_rows", "maxUploadRows"),
        (lambda d: hostile_files.parquet_dictionary_bomb(d), "decompressed_too_large", "maxDecompressedBytes"),
    ],
    ids=["gzip", "gzip-members", "blank-lines", "random-gzip", "parquet-rows", "parquet-dictionary"],
)
async def test_upload_past_a_limit_fails_clearly_and_leaves_nothing(
    client: httpx.AsyncClient,
    founder: Account,
    tmp_path: Path,
    database_url: str,
    moto: Moto,
    build: Callable[[Path], Path],
    code: str,
    limit: str,
) -> None:
    job = await _imported(client, founder, build(tmp_path))
    value = LIMITS[
        {
            "maxCompressionRatio": "max_compression_ratio",
            "maxDecompressedBytes": "max_decompressed_bytes",
            "maxUploadRows": "max_upload_rows",
        }[limit]
    ]
    assert job["status"] == "failed" and job["attempts"] == 1, job
    assert job["result"]["error"]["code"] == code
    assert job["result"]["error"]["details"] == {"limit": limit, "value": value}
    assert f"{value:,}" in job["errorMessage"] or f"{value:g}" in job["errorMessage"]
    assert job["result"]["dataRemoved"] is True and "datasetId" not in job["result"] and "fileId" not in job["result"]
    await _assert_nothing_left(client, founder, database_url, moto)
    retried = await client.post(f"/api/v1/jobs/{job['id']}/retry", headers=founder.headers)
    assert retried.status_code == 409 and "upload the file again" in retried.json()["error"]["message"]


async def test_rows_past_the_limit_remove_the_rows_already_loaded(
    client: httpx.AsyncClient, founder: Account, database_url: str, moto: Moto
) -> None:
    content = b"n\n" + b"".join(b"%d\n" % row for row in range(100_000))
    job = await _imported(client, founder, content, "many.csv")
    assert job["status"] == "failed" and job["result"]["error"]["code"] == "too_many_rows", job
    assert job["rowsDone"] == 60_000  # three batches were in the dataset before the fourth passed the limit
    assert "more than 60,000 rows" in job["errorMessage"]
    await _assert_nothing_left(client, founder, database_url, moto)


async def test_storage_quota_stops_an_import_midway(
    client: httpx.AsyncClient, founder: Account, database_url: str, moto: Moto
) -> None:
    content = b"n,key\n" + b"".join(b"%d,%s\n" % (row, os.urandom(20).hex().encode()) for row in range(59_000))
    job = await _imported(client, founder, content, "wide.csv")
    assert job["status"] == "failed" and job["result"]["error"]["code"] == "storage_quota_exceeded", job
    assert job["result"]["error"]["details"] == {"limit": "maxOrgStorageBytes", "value": 7 * MiB}
    assert 0 < job["rowsDone"] < 59_000
    await _assert_nothing_left(client, founder, database_url, moto)


@pytest.mark.parametrize("build", [hostile_files.nested_gzip, hostile_files.zip_of_csv], ids=["gzip-in-gzip", "zip"])
async def test_archives_we_do_not_open_are_refused_at_the_request(
    client: httpx.AsyncClient, founder: Account, tmp_path: Path, moto: Moto, build: Callable[[Path], Path]
) -> None:
    response = await _upload(client, founder, build(tmp_path))
    assert response.status_code == 415, response.text
    assert _objects_of(moto, founder.org_id) == []


@pytest.fixture
async def quota_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a storage quota of 100,000 bytes per org."""
    small = settings.model_copy(deep=True)
    small.datasets.max_org_storage_bytes = 100_000
    async with running(create_app(small)) as limited:
        yield limited


async def test_storage_quota_is_checked_at_the_request(
    quota_client: httpx.AsyncClient, founder: Account, moto: Moto
) -> None:
    big = b"n\n" + b"1\n" * 60_000  # 120,002 bytes
    declared = await quota_client.post(
        "/api/v1/upload?filename=big.csv", content=big, headers={**founder.headers, "content-type": "text/csv"}
    )
    assert declared.status_code == 413, declared.text
    error = declared.json()["error"]
    assert error["code"] == "storage_quota_exceeded" and "100,000 bytes" in error["message"]
    assert error["details"] == {"limit": "maxOrgStorageBytes", "value": 100_000}

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
        for start in range(0, len(big), 16_384):
            yield big[start : start + 16_384]

    streamed = await quota_client.post(
        "/api/v1/upload?filename=big.csv", content=chunked(), headers={**founder.headers, "content-type": "text/csv"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "storage_quota_exceeded"
    assert _objects_of(moto, founder.org_id) == []

    half = b"n\n" + b"2\n" * 30_000
    assert (
        await quota_client.post("/api/v1/upload", headers=founder.headers, files={"file": ("half.csv", half)})
    ).status_code == 201
    again = await quota_client.post(
        "/api/v1/upload", headers=founder.headers, files={"file": ("other.csv", half.replace(b"2", b"3"))}
    )
    assert again.status_code == 413 and again.json()["error"]["code"] == "storage_quota_exceeded"
    assert len(_objects_of(moto, founder.org_id)) == 1


async def test_a_full_org_is_refused_at_the_request(
    client: httpx.AsyncClient, quota_client: httpx.AsyncClient, founder: Account
) -> None:
    filled = await client.post(
        "/api/v1/upload", headers=founder.headers, files={"file": ("big.csv", b"n\n" + b"4\n" * 60_000)}
    )
    assert filled.status_code == 201
    tiny = await quota_client.post("/api/v1/upload", headers=founder.headers, files={"file": ("tiny.csv", b"n\n1\n")})
    assert tiny.status_code == 413 and tiny.json()["error"]["code"] == "storage_quota_exceeded"
    generated = await quota_client.post(
        "/api/v1/generate", headers=founder.headers, json={"rows": 10, "columns": [{"name": "n", "type": "int"}]}
    )
    assert generated.status_code == 413 and generated.json()["error"]["code"] == "storage_quota_exceeded"


async def test_storage_quota_stops_a_generation_midway(
    client: httpx.AsyncClient, founder: Account, database_url: str, moto: Moto
) -> None:
    response = await client.post(
        "/api/v1/generate",
        headers=founder.headers,
        json={
            "rows": 400_000,
            "seed": 1,
            "columns": [{"name": "n", "type": "int"}, {"name": "who", "type": "person_name"}],
        },
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(client, founder, response.json()["data"]["jobId"], within=120)
    assert job["status"] == "failed" and job["result"]["error"]["code"] == "storage_quota_exceeded", job
    assert 0 < job["rowsDone"] < 400_000
    await _assert_nothing_left(client, founder, database_url, moto)
    retried = await client.post(f"/api/v1/jobs/{job['id']}/retry", headers=founder.headers)
    assert retried.status_code == 409 and "start a new job" in retried.json()["error"]["message"]


# Column names ---------------------------------------------------------------------------------------------


async def test_reserved_column_names_are_renamed_and_reported(client: httpx.AsyncClient, founder: Account) -> None:
    job = await _imported(client, founder, b"org_id,_row,ORG ID,xmin,,name,Name\nacme,7,x,9,e,n1,n2\n", "r.csv")
    assert job["status"] == "completed", job
    assert job["result"]["renamedColumns"] == [
        {"label": "org_id", "name": "org_id_1", "reason": "reserved"},
        {"label": "ORG ID", "name": "org_id_2", "reason": "reserved"},
        {"label": "xmin", "name": "xmin_1", "reason": "reserved"},
        {"label": "", "name": "column_5", "reason": "empty"},
        {"label": "Name", "name": "name_2", "reason": "duplicate"},
    ]
    rows = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}/rows", headers=founder.headers)).json()[
        "data"
    ]
    assert rows == [
        {
            "_row": 1,
            "org_id_1": "acme",
            "row": 7,
            "org_id_2": "x",
            "xmin_1": 9,
            "column_5": "e",
            "name": "n1",
            "name_2": "n2",
        }
    ]
    ndjson = await _imported(client, founder, b'{"org_id": "a", "_row": 1}\n{"org_id": "b", "_row": 2}\n', "r.ndjson")
    assert ndjson["status"] == "completed" and [column["name"] for column in ndjson["result"]["schema"]["columns"]] == [
        "org_id_1",
        "row",
    ]


async def test_a_header_with_a_nul_loads(client: httpx.AsyncClient, founder: Account) -> None:
    job = await _imported(client, founder, b"a\x00b,c\n1,2\n", "nul.csv")
    assert job["status"] == "completed", job
    assert [(column["name"], column["label"]) for column in job["result"]["schema"]["columns"]] == [
        ("a_b", "a\ufffdb"),
        ("c", "c"),
    ]


async def test_reserved_column_names_are_refused_where_a_client_names_columns(
    client: httpx.AsyncClient, founder: Account
) -> None:
    given = await _upload(
        client,
        founder,
        b"a\n1\n",
        "x.csv",
        schema=json.dumps({"columns": [{"name": "org_id", "type": "int", "label": "a"}]}),
    )
    assert given.status_code == 422
    assert "'org_id' is reserved" in given.json()["error"]["details"][0]["message"]
    generated = await client.post(
        "/api/v1/generate",
        headers=founder.headers,
        json={"rows": 5, "columns": [{"name": "org_id", "type": "int"}, {"name": "_row", "type": "int"}]},
    )
    assert generated.status_code == 422
    assert {detail["field"] for detail in generated.json()["error"]["details"]} == {
        "body.columns.0.name",
        "body.columns.1.name",
    }


# Types: inferred despite a few bad values, or given -------------------------------------------------------


def _customers(rows: int = 40) -> bytes:
    amounts = [f"{row}.25" for row in range(1, rows + 1)]
    days = [f"2024-01-{row % 28 + 1:02d}" for row in range(1, rows + 1)]
    amounts[6], days[11] = "oops", "2024-13-45"
    return (
        "id,Amount,signed_up\n"
        + "".join(f"{row},{amount},{day}\n" for row, amount, day in zip(range(1, rows + 1), amounts, days, strict=True))
    ).encode()


async def _rejects(client: httpx.AsyncClient, account: Account, file_id: str) -> list[dict[str, str]]:
    link = await client.get(f"/api/v1/files/{file_id}/download", headers=account.headers)
    async with httpx.AsyncClient() as browser:
        content = (await browser.get(link.headers["location"])).content
    return list(csv.DictReader(io.StringIO(content.decode())))


async def test_a_few_bad_values_are_rejects_and_the_schema_is_shown(
    client: httpx.AsyncClient, founder: Account
) -> None:
    job = await _imported(client, founder, gzip.compress(_customers()), "customers.csv.gz")
    assert job["status"] == "completed", job
    assert job["result"]["rowsLoaded"] == 38 and job["result"]["rowsRejected"] == 2
    assert job["result"]["schema"] == {
        "columns": [
            {"name": "id", "type": "int", "nullable": True, "label": "id", "source": "inferred"},
            {"name": "amount", "type": "float", "nullable": True, "label": "Amount", "source": "inferred"},
            {"name": "signed_up", "type": "date", "nullable": True, "label": "signed_up", "source": "inferred"},
        ]
    }
    assert job["result"]["renamedColumns"] == []
    rejects = await _rejects(client, founder, job["result"]["rejectsFileId"])
    assert [(reject["row_number"], reject["column"], reject["reason"]) for reject in rejects] == [
        ("7", "Amount", "not a number: 'oops'"),
        ("12", "signed_up", "not a date (YYYY-MM-DD, years 1 to 9999): '2024-13-45'"),
    ]
    dataset = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}", headers=founder.headers)).json()[
        "data"
    ]
    assert [(column["name"], column["type"], column["label"]) for column in dataset["columns"]] == [
        ("id", "int", "id"),
        ("amount", "float", "Amount"),
        ("signed_up", "date", "signed_up"),
    ]


async def test_types_given_with_the_upload_override_inference(client: httpx.AsyncClient, founder: Account) -> None:
    types = {
        "Amount": "string",
        "signed_up": {"type": "date", "nullable": False},
        "id": {"type": "decimal", "precision": 6, "scale": 0},
    }
    job = await _imported(client, founder, _customers(), "customers.csv", schema=json.dumps(types))
    assert job["status"] == "completed", job
    assert job["params"]["types"]["Amount"] == {"type": "string", "nullable": True}
    assert [(column["name"], column["type"], column["source"]) for column in job["result"]["schema"]["columns"]] == [
        ("id", "decimal", "given"),
        ("amount", "string", "given"),
        ("signed_up", "date", "given"),
    ]
    assert job["result"]["rowsLoaded"] == 39 and job["result"]["rowsRejected"] == 1
    dataset = (await client.get(f"/api/v1/datasets/{job['result']['datasetId']}", headers=founder.headers)).json()[
        "data"
    ]
    assert dataset["columns"][0] == {
        "name": "id",
        "type": "decimal",
        "nullable": True,
        "precision": 6,
        "scale": 0,
        "label": "id",
    }
    assert dataset["columns"][2]["nullable"] is False


@pytest.mark.parametrize(
    ("schema", "field", "words"),
    [
        ({"Amount": "money"}, "schema.Amount.type", "Input should be 'int'"),
        ({"Amount": {"type": "decimal"}}, "schema.Amount", "a decimal needs a precision"),
        ({"columns": [{"name": "amount", "type": "money"}]}, "schema.columns.0.type", "Input should be 'int'"),
        ("{not json", "schema", "not valid JSON"),
    ],
)
async def test_bad_schemas_are_422_naming_the_column(
    client: httpx.AsyncClient, founder: Account, schema: Any, field: str, words: str
) -> None:
    text = schema if isinstance(schema, str) else json.dumps(schema)
    response = await _upload(client, founder, _customers(), "customers.csv", schema=text)
    assert response.status_code == 422, response.text
    detail = response.json()["error"]["details"][0]
    assert detail["field"] == field and words in (detail["message"] + response.json()["error"]["message"])
    assert (await client.get("/api/v1/jobs", headers=founder.headers)).json()["meta"]["total"] == 0


async def test_types_for_a_column_the_file_lacks_fail_the_import_clearly(
    client: httpx.AsyncClient, founder: Account
) -> None:
    job = await _imported(client, founder, _customers(), "customers.csv", schema=json.dumps({"amuont": "float"}))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["errorMessage"] == (
        "The schema names 'amuont', which the file does not have; its columns are 'id', 'Amount', 'signed_up'"
    )
