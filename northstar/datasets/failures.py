"""What a failed job tells its client: a stable ``errorCode`` and a plain ``errorMessage``, never internals.

Every job outcome goes through ``job_failure``. Errors written for people keep their own code and message:
``AppError`` subclasses, such as the file-format errors and ``PermanentJobError``. Anything else (a database or
storage error, a bug) gets a code from a short fixed list and a message that names the trace id. The detail goes
to the log under that trace id: the raw text of such errors can name tables, object keys, hosts or Python
internals, which are not the client's business.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
import pyarrow as pa

from northstar.core.http import AppError
from northstar.core.storage import KeyNotFound

TRANSIENT = (
    OSError,
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    TimeoutError,
)


class PermanentJobError(AppError):
    """A request that can never succeed as asked: the job fails at once with this code and message, no retry.

    The message is shown to the client as it is, so it says what happened in plain words and names nothing
    internal.
    """

    status, code = 422, "job_failed"


@dataclass(frozen=True)
class JobFailure:
    code: str
    message: str
    internal: bool  # caused by our side, not the request: the detail is logged, the client sees the trace id


_INTERNAL: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str, str], ...] = (
    (KeyNotFound, "file_missing", "The stored file this job reads is gone (it expired or was deleted)."),
    (
        psycopg.errors.UndefinedTable,
        "source_missing",
        "The data this job reads no longer exists (it was deleted after the job was queued).",
    ),
    ((psycopg.DataError, pa.ArrowInvalid), "invalid_data", "A value could not be read or stored as its column's type."),
    (TRANSIENT, "temporarily_unavailable", "The database or the file storage was unavailable."),
)


def job_failure(exc: BaseException, *, trace_id: str) -> JobFailure:
    """The code and message a client sees for ``exc``."""
    if isinstance(exc, AppError):
        return JobFailure(exc.code, exc.message, internal=False)
    for kinds, code, message in _INTERNAL:
        if isinstance(exc, kinds):
            return JobFailure(code, f"{message} Trace id: {trace_id}.", internal=True)
    return JobFailure(
        "internal_error", f"An internal error stopped this job; it was logged with trace id {trace_id}.", internal=True
    )
