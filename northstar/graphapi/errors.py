"""GraphQL errors as clients read them: ``message`` and ``extensions.code``, with the codes REST answers.

An ``AppError`` raised by a service keeps its code and details (``not_found``, ``forbidden``, ``validation_error``,
``conflict``…); a document that does not parse or does not fit the schema is ``bad_request``; a value of the wrong
type (a variable, an argument, an input field) is ``validation_error``; the limits have codes of their own
(``query_too_deep``, ``query_too_complex``). Anything else is ``internal_error`` with a fixed message and the trace
id: the exception and its stack trace go to the log, never to the client.
"""

from __future__ import annotations

from typing import Any

import structlog
from graphql import GraphQLError
from pydantic import ValidationError

from northstar.core.dbguard import database_problem
from northstar.core.http import AppError, invalid

log = structlog.get_logger("northstar.graphql")

# graphql-core's words for a value that does not fit its type (rather than a document that does not fit the schema)
_VALUE_PROBLEMS = (
    "got invalid value",
    "Expected value of type",
    "of required type",
    "invalid value",
    "not provided",
    "cannot represent",
)


def app_error_of(exc: BaseException) -> AppError | None:
    """The AppError an exception stands for: itself, a database outage's 503, or pydantic's 422."""
    if isinstance(exc, AppError):
        return exc
    if isinstance(exc, ValidationError):
        return invalid("The input is not valid", exc, prefix=("input",))
    return database_problem(exc)


def error_body(error: GraphQLError, *, trace_id: str) -> dict[str, Any]:
    """One entry of the response's ``errors``."""
    body: dict[str, Any] = {"message": error.message}
    if error.locations:
        body["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        body["path"] = list(error.path)
    extensions: dict[str, Any] = dict(error.extensions or {})
    original = error.original_error
    problem = app_error_of(original) if original is not None else None
    if problem is not None:
        body["message"] = problem.message
        extensions["code"] = problem.code
        if problem.details is not None:
            extensions["details"] = problem.details
    elif (error.path and "code" not in extensions) or (original is not None and not isinstance(original, GraphQLError)):
        # a bug or an unexpected failure while resolving: logged whole, told to the client in one fixed sentence
        log.error("graphql_error", exc_info=original or error, traceId=trace_id, path=error.path)
        body["message"] = f"Something went wrong; the error was logged (trace id {trace_id})."
        extensions = {"code": "internal_error"}
    elif "code" not in extensions:  # before execution: the document, or a variable's value
        extensions["code"] = (
            "validation_error" if any(words in error.message for words in _VALUE_PROBLEMS) else "bad_request"
        )
    body["extensions"] = extensions
    return body


def request_error(message: str, *, code: str = "bad_request") -> dict[str, Any]:
    """The answer to a request that holds no operation to run (not JSON, no query)."""
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
