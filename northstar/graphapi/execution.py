"""One GraphQL request, whichever door it came through (``/graphql`` with a token or key, ``/app/graphql`` with the
console's session): read the operation, run it on the request's tenant transaction, answer the GraphQL response.

The request's transaction is ``core.context.request_session``'s, committed after the answer is built as for any REST
route; each mutation runs in a savepoint of it (``GraphContext.mutation``), so a failed mutation leaves nothing and
the ones before it stay. Each successful mutation writes its own audit entry (``graphql.<field>``); the request
itself is not recorded again as one generic entry, and a query (a read) is not recorded at all, as REST GETs are not.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import AppError, contains_nul
from northstar.core.permissions import Principal
from northstar.graphapi.context import GraphContext
from northstar.graphapi.errors import error_body, request_error
from northstar.graphapi.schema import SCHEMA

MEDIA_TYPE = "application/json"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def respond(payload: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(payload, default=_default, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def refusal(exc: AppError) -> Response:
    """A request refused before any operation ran (no or bad credentials, a CSRF token missing): the HTTP status
    REST would answer, with the body in GraphQL's shape."""
    return respond(request_error(exc.message, code=exc.code), status=exc.status, headers=exc.headers)


class BadOperation(Exception):
    """The body holds no operation to run."""


def operation_of(body: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    """``query``, ``variables`` and ``operationName`` from a GraphQL-over-HTTP JSON body."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadOperation('The body is not JSON: send {"query": "...", "variables": {...}}') from None
    if not isinstance(document, dict):
        raise BadOperation("The body must be a JSON object with a query")
    query, variables, name = document.get("query"), document.get("variables"), document.get("operationName")
    if not isinstance(query, str) or not query.strip():
        raise BadOperation("query must be a non-empty string holding the GraphQL document")
    if "\x00" in query:
        raise BadOperation("query must not contain NUL (\\u0000) characters")
    if variables is not None and not isinstance(variables, dict):
        raise BadOperation("variables must be a JSON object")
    if contains_nul(variables):
        raise BadOperation("variables must not contain NUL (\\u0000) characters")
    if name is not None and not isinstance(name, str):
        raise BadOperation("operationName must be a string")
    return query, variables, name


async def answer(request: Request, session: AsyncSession, principal: Principal) -> Response:
    """Run the request's operation for ``principal`` and answer it (200 with ``data`` and ``errors`` once the
    operation was read; 400 when there was none to read)."""
    request.state.principal = None  # mutations record their own audit entries; see the module's docstring
    try:
        query, variables, name = operation_of(await request.body())
    except BadOperation as exc:
        return respond(request_error(str(exc)), status=400)
    context = GraphContext(request=request, session=session, principal=principal)
    try:
        result = await SCHEMA.execute(query, variable_values=variables, context_value=context, operation_name=name)
    finally:
        context.release()
    payload: dict[str, Any] = {}
    if result.errors:
        trace_id = getattr(request.state, "trace_id", "")
        payload["errors"] = [error_body(error, trace_id=trace_id) for error in result.errors]
    if result.data is not None or not result.errors or any(error.path for error in result.errors):
        payload["data"] = result.data  # null when execution started and an error reached the root
    return respond(payload)
