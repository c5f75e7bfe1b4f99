"""What a failed job shows its client: the stable code and plain message of ``job_failure``, never the raw error."""

from __future__ import annotations

import psycopg
import pyarrow as pa
import pytest

from northstar.core.storage import KeyNotFound
from northstar.datasets.failures import PermanentJobError, job_failure
from northstar.datasets.formats import EmptyFileError, TooManyColumnsError

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            psycopg.OperationalError(
                'connection to server at "10.1.2.3", port 5432 failed: FATAL: password '
                'authentication failed for user "northstar"'
            ),
            "temporarily_unavailable",
        ),
        (
            OSError(28, "No space left on device: '/var/lib/northstar/tmp/northstar-job-x/export'"),
            "temporarily_unavailable",
        ),
        (KeyNotFound("org/4b9c/upload/0d1e/source"), "file_missing"),
        (psycopg.errors.UndefinedTable('relation "datasets.d_0d1e" does not exist'), "source_missing"),
        (
            psycopg.DataError('invalid input syntax for type bigint: "abc"\nLINE 1: ...WHERE "id" > \'abc\'::bigint'),
            "invalid_data",
        ),
        (pa.ArrowInvalid("In CSV column #3: CSV conversion error to int64: invalid value 'x'"), "invalid_data"),
        (
            RecursionError("maximum recursion depth exceeded while decoding a JSON array from a unicode string"),
            "internal_error",
        ),
        (
            ValueError("object key must not contain empty, '.' or '..' segments: 'org/4b9c/export/0d1e/../x.csv'"),
            "internal_error",
        ),
    ],
    ids=["database-down", "disk-full", "object-gone", "table-gone", "database-data", "arrow", "recursion", "key"],
)
def test_internal_errors_become_a_stable_code_and_the_trace_id(error: BaseException, code: str) -> None:
    failure = job_failure(error, trace_id=TRACE)
    assert (failure.code, failure.internal) == (code, True)
    assert TRACE in failure.message
    for leak in (
        "10.1.2.3",
        "password",
        "/var/lib",
        "org/",
        "datasets.d_",
        "bigint",
        "int64",
        "recursion",
        "segments",
        str(error),
    ):
        assert leak not in failure.message, (leak, failure.message)


@pytest.mark.parametrize(
    "error",
    [
        EmptyFileError("The file is empty"),
        TooManyColumnsError(2000, 1000),
        PermanentJobError("The exported dataset no longer exists", code="source_missing"),
    ],
)
def test_errors_written_for_people_keep_their_code_and_message(error: EmptyFileError | PermanentJobError) -> None:
    failure = job_failure(error, trace_id=TRACE)
    assert (failure.code, failure.message, failure.internal) == (error.code, error.message, False)
