"""API keys: the secret is shown once, at creation or rotation."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, status

from northstar.accounts.auth import KeysCreate, KeysDelete, KeysRead
from northstar.accounts.models import ApiKey
from northstar.accounts.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from northstar.accounts.service import credentials as service
from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Role

router = APIRouter(prefix="/api-keys", tags=["api keys"], responses=ERROR_RESPONSES)


def _fields(key: ApiKey) -> dict[str, object]:
    return {
        "id": key.id,
        "name": key.name,
        "role": key.role,
        "scopes": key.scopes,
        "environment": key.environment,
        "prefix": service.key_prefix(key),
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def api_key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(_fields(key))


def _created(new: service.NewApiKey) -> ApiKeyCreated:
    return ApiKeyCreated.model_validate({**_fields(new.key), "key": new.secret})


@router.get("", response_model=PageEnvelope[ApiKeyOut], name="api_keys.list")
async def list_api_keys(principal: KeysRead, session: DbSession, page: Page) -> PageEnvelope[ApiKeyOut]:
    keys, total = await service.list_api_keys(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[api_key_out(k) for k in keys], meta=page.meta(total))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ApiKeyCreated],
    name="api_keys.create",
    dependencies=[Idempotent],
)
async def create_api_key(
    body: ApiKeyCreate, request: Request, principal: KeysCreate, session: DbSession
) -> Envelope[ApiKeyCreated]:
    new = await service.create_api_key(
        session,
        principal=principal,
        name=body.name,
        role=Role(body.role),
        scopes=body.scopes,
        environment=body.environment,
        expires_at=body.expires_at,
    )
    audit_target(request, "api_key", new.key.id, role=body.role, scopes=body.scopes)
    return Envelope(data=_created(new))


@router.post(
    "/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ApiKeyCreated],
    name="api_keys.rotate",
    dependencies=[Idempotent],
)
async def rotate_api_key(
    key_id: uuid.UUID, request: Request, principal: KeysCreate, session: DbSession
) -> Envelope[ApiKeyCreated]:
    """A new secret; the old key keeps working until the rotation grace period ends."""
    new = await service.rotate_api_key(session, principal=principal, key_id=key_id)
    audit_target(request, "api_key", key_id, rotatedTo=str(new.key.id))
    return Envelope(data=_created(new))


@router.delete("/{key_id}", response_model=Envelope[ApiKeyOut], name="api_keys.revoke")
async def revoke_api_key(key_id: uuid.UUID, principal: KeysDelete, session: DbSession) -> Envelope[ApiKeyOut]:
    """Effective on the next request."""
    return Envelope(data=api_key_out(await service.revoke_api_key(session, org_id=principal.org_id, key_id=key_id)))
