"""``POST /graphql``: the graph for API clients, authenticated as REST is (``Authorization: Bearer`` or
``X-API-Key``), in the same per-request tenant transaction (``core.context``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from northstar.core.context import DbSession, api_key_scheme, current_principal, oauth2_scheme
from northstar.core.http import AppError
from northstar.graphapi.execution import answer, refusal

# Out of the OpenAPI document: the graph documents itself (introspection, and docs/graphql.schema.graphql).
router = APIRouter(tags=["graphql"], include_in_schema=False)


@router.post("/graphql", name="graphql.execute")
async def execute(
    request: Request,
    session: DbSession,
    bearer: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Response:
    """One operation (query or mutation) as ``{"query", "variables", "operationName"}``. Missing or bad
    credentials answer 401 before anything runs, as on REST, with the error in GraphQL's shape."""
    try:
        principal = await current_principal(request, session, bearer, api_key)
    except AppError as exc:
        if not exc.commit:
            await session.rollback()
        return refusal(exc)
    return await answer(request, session, principal)
