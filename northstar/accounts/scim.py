"""SCIM 2.0 endpoints (``/scim/v2``): an organization's identity provider (Okta, Azure AD, …) provisions its
members here with the org's bearer token. Answers are ``application/scim+json``, errors in SCIM's own shape (RFC
7644 §3.12), not the API's envelope. Discovery (``ServiceProviderConfig``, ``Schemas``, ``ResourceTypes``) needs no
token: it says nothing of any organization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from types import SimpleNamespace
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query, Request
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


@router.get("/ServiceProviderConfig", name="scim.service_provider_config")
async def service_provider_config(request: Request) -> Response:
    return _answer(scim.service_provider_config(_base(request)))


@router.get("/ResourceTypes", name="scim.resource_types")
async def resource_types(request: Request) -> Response:
    return _answer(scim.resource_types(_base(request)))


@router.get("/Schemas", name="scim.schemas")
async def schemas(request: Request) -> Response:
    return _answer(scim.schemas())


Kind = Literal["Users", "Groups"]
ResourceId = Annotated[str, Path(max_length=64)]


def _service(kind: Kind, request: Request) -> Any:
    """The functions of ``kind``'s resources; Users' changes carry the caller (their audit entries name it)."""
    if kind == "Groups":
        return scim_groups
    client = ClientMeta.of(request)
    return SimpleNamespace(
        create=partial(scim.create, client=client),
        get=scim.get,
        list=scim.list_users,
        replace=partial(scim.replace, client=client),
        patch=partial(scim.patch, client=client),
        delete=partial(scim.delete, client=client),
    )


@router.get("/{kind}", name="scim.list")
async def list_resources(
    request: Request,
    kind: Kind,
    filter: Annotated[str | None, Query(max_length=500)] = None,
    start_index: Annotated[int | None, Query(alias="startIndex", ge=-(2**31), le=2**31)] = None,
    count: Annotated[int | None, Query(ge=-(2**31), le=2**31)] = None,
) -> Response:
    """A page of Users or Groups, with ``filter`` (``… eq "…"``), ``startIndex`` and ``count``."""
    lister = scim_groups.list_groups if kind == "Groups" else scim.list_users

    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await lister(
            session, org_id=org_id, filter=filter, start_index=start_index, count=count, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.post("/{kind}", name="scim.create")
async def create_resource(request: Request, kind: Kind) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        made = await _service(kind, request).create(
            session, org_id=org_id, body=await _body(request), base_url=_base(request)
        )
        return _answer(made, 201, {"Location": made["meta"]["location"]})

    return await _provisioning(request, work)


@router.get("/{kind}/{resource_id}", name="scim.get")
async def get_resource(request: Request, kind: Kind, resource_id: ResourceId) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await _service(kind, request).get(
            session, org_id=org_id, resource_id=resource_id, base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.put("/{kind}/{resource_id}", name="scim.replace")
async def replace_resource(request: Request, kind: Kind, resource_id: ResourceId) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await _service(kind, request).replace(
            session, org_id=org_id, resource_id=resource_id, body=await _body(request), base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.patch("/{kind}/{resource_id}", name="scim.patch")
async def patch_resource(request: Request, kind: Kind, resource_id: ResourceId) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        found = await _service(kind, request).patch(
            session, org_id=org_id, resource_id=resource_id, body=await _body(request), base_url=_base(request)
        )
        return _answer(found)

    return await _provisioning(request, work)


@router.delete("/{kind}/{resource_id}", name="scim.delete")
async def delete_resource(request: Request, kind: Kind, resource_id: ResourceId) -> Response:
    async def work(session: AsyncSession, org_id: Any) -> Response:
        await _service(kind, request).delete(session, org_id=org_id, resource_id=resource_id)
        return Response(status_code=204)

    return await _provisioning(request, work)
