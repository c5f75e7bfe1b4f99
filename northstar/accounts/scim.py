"""SCIM 2.0 endpoints (``/scim/v2``): an organization's identity provider (Okta, Azure AD, …) provisions its
members here with the org's bearer token. Answers are ``application/scim+json``, errors in SCIM's own shape (RFC
7644 §3.12), not the API's envelope. Discovery (``ServiceProviderConfig``, ``Schemas``, ``ResourceTypes``) needs no
token: it says nothing of any organization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import scim, scim_groups
from northstar.core.context import ClientMeta
from northstar.core.http import AppError

router = APIRouter(prefix="/scim/v2", include_in_schema=False)
MEDIA_TYPE = "application/scim+json"
MAX_BODY = 64 * 1024


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _base(request: Request) -> str:
    return f"{request.app.state.settings.public_url.rstrip('/')}/scim/v2"


async def _body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise scim.ScimError(413, "The request body is too large")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise scim.ScimError(400, "The body is not JSON", "invalidSyntax") from None


async def _provisioning(request: Request, work: Callable[[AsyncSession, Any], Awaitable[Response]]) -> Response:
    """Authenticate the org's token, run ``work`` in one transaction bound to the org, and answer any refusal in
    SCIM's shape (the transaction rolled back)."""
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    try:
        async with request.app.state.database.tenant_transaction() as session:
            org_id = await scim.org_of(session, token)
            return await work(session, org_id)
    except scim.ScimError as exc:
        headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
        return _answer(exc.body(), exc.status, headers)
    except AppError as exc:
        return _answer(scim.ScimError(exc.status, exc.message).body(), exc.status)


@router.get("/Users", name="scim.users")
async def list_users(
    request: Request,
    filter: Annotated[str | None, Query(max_length=500)] = None,
    start_index: Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)] = None,
    count: Annotated[int | None, Query(ge=-(2**31), le=2**31)] = None,
) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await scim.list_users(
            session, org_id=org_id, filter=filter, start_index=start_index, count=count, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.post("/Users", name="scim.create_user")
async def create_user(request: Request) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        made = await scim.create(
            session, org_id=org_id, body=await _body(request), base_url=_base(request), client=ClientMeta.of(request)
        )
        return _answer(made, 201, {"Location": made["meta"]["location"]})

    return await _provisioning(request, work)


@router.get("/Users/{resource_id}", name="scim.user")
async def get_user(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        return _answer(await scim.get(session, org_id=org_id, resource_id=resource_id, base_url=_base(request)))

    return await _provisioning(request, work)


@router.put("/Users/{resource_id}", name="scim.replace_user")
async def replace_user(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        body = await _body(request)
        found = await scim.replace(
            session,
            org_id=org_id,
            resource_id=resource_id,
            body=body,
            base_url=_base(request),
            client=ClientMeta.of(request),
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.patch("/Users/{resource_id}", name="scim.patch_user")
async def patch_user(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        body = await _body(request)
        found = await scim.patch(
            session,
            org_id=org_id,
            resource_id=resource_id,
            body=body,
            base_url=_base(request),
            client=ClientMeta.of(request),
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.delete("/Users/{resource_id}", name="scim.delete_user")
async def delete_user(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        await scim.delete(session, org_id=org_id, resource_id=resource_id, client=ClientMeta.of(request))
        return Response(status_code=204)

    return await _provisioning(request, work)


@router.get("/Groups", name="scim.groups")
async def list_groups(
    request: Request,
    filter: Annotated[str | None, Query(max_length=500)] = None,
    start_index: Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)] = None,
    count: Annotated[int | None, Query(ge=-(2**31), le=2**31)] = None,
) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await scim_groups.list_groups(
            session, org_id=org_id, filter=filter, start_index=start_index, count=count, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.post("/Groups", name="scim.create_group")
async def create_group(request: Request) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        made = await scim_groups.create(session, org_id=org_id, body=await _body(request), base_url=_base(request))
        return _answer(made, 201, {"Location": made["meta"]["location"]})

    return await _provisioning(request, work)


@router.get("/Groups/{resource_id}", name="scim.group")
async def get_group(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        return _answer(await scim_groups.get(session, org_id=org_id, resource_id=resource_id, base_url=_base(request)))

    return await _provisioning(request, work)


@router.put("/Groups/{resource_id}", name="scim.replace_group")
async def replace_group(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        body = await _body(request)
        found = await scim_groups.replace(
            session, org_id=org_id, resource_id=resource_id, body=body, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.patch("/Groups/{resource_id}", name="scim.patch_group")
async def patch_group(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        body = await _body(request)
        found = await scim_groups.patch(
            session, org_id=org_id, resource_id=resource_id, body=body, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.delete("/Groups/{resource_id}", name="scim.delete_group")
async def delete_group(request: Request, resource_id: str) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        await scim_groups.delete(session, org_id=org_id, resource_id=resource_id)
        return Response(status_code=204)

    return await _provisioning(request, work)


@router.get("/ServiceProviderConfig", name="scim.service_provider_config")
async def service_provider_config(request: Request) -> Response:
    return _answer(scim.service_provider_config(_base(request)))


@router.get("/ResourceTypes", name="scim.resource_types")
async def resource_types(request: Request) -> Response:
    return _answer(scim.resource_types(_base(request)))


@router.get("/Schemas", name="scim.schemas")
async def schemas(request: Request) -> Response:
    return _answer(scim.schemas())
