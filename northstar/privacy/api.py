"""``/api/v1/privacy``: data-subject requests (visitors: founders and admins; one's own account: every user),
consent logs and privacy settings. Every request is audited; an erasure's own entry names no one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from northstar.audit import service as audit
from northstar.core.context import ClientMeta, DbSession, audit_target
from northstar.core.db import Database, set_tenant_context
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope, Unprocessable
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Principal
from northstar.core.storage import ObjectStore
from northstar.privacy import service
from northstar.privacy.auth import OwnDataRead, OwnDataRequest, PrivacyCreate, PrivacyRead, PrivacyUpdate
from northstar.privacy.models import PrivacyRequest
from northstar.privacy.schemas import (
    ConsentOut,
    ConsentRecorded,
    OwnErasure,
    PrivacyRequestCreate,
    PrivacyRequestOut,
    PrivacySettingsOut,
    PrivacySettingsUpdate,
    WidgetConsent,
)
from northstar.socialproof.service import privacy as socialproof_privacy

router = APIRouter(prefix="/privacy", tags=["privacy"], responses=ERROR_RESPONSES)


def _store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.storage
    return store


async def request_out(request: Request, found: PrivacyRequest) -> PrivacyRequestOut:
    out = PrivacyRequestOut.model_validate(found)
    out.download_url = await service.download_link(_store(request), request.app.state.settings, found)
    return out


async def _audit_erasure(session: DbSession, request: Request, principal: Principal, found: PrivacyRequest) -> None:
    """An erasure's own entry, written after the erasure: for one's own account it names no actor (the account is
    gone and the trail must not bring its id back)."""
    own = found.subject_type == "user"
    await audit.record(
        session,
        org_id=principal.org_id,
        action="privacy.erasure",
        actor_type=principal.actor_type,
        actor_id=None if own else principal.actor_id,
        client=None if own else ClientMeta.of(request),
        target_type="privacy_request",
        target_id=str(found.id),
        details={"subjectType": found.subject_type, "result": found.result},
    )
    request.state.principal = None  # recorded here, not by the generic entry


@router.post(
    "/requests",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[PrivacyRequestOut],
    responses={200: {"model": Envelope[PrivacyRequestOut], "description": "An erasure, done at once"}},
    name="privacy.requests.create",
    dependencies=[Idempotent],
)
async def create_request(
    body: PrivacyRequestCreate, request: Request, principal: PrivacyCreate, session: DbSession, response: Response
) -> Envelope[PrivacyRequestOut]:
    """A visitor's export (202, a job; poll the request for its `downloadUrl`) or erasure (200, done at once)."""
    subject = service.subject_for(principal, subject_type=body.subject_type, value=body.subject)
    if body.kind == "export":
        found = await service.request_export(session, principal=principal, subject=subject)
        audit_target(request, "privacy_request", found.id, kind="export", subjectType=subject.type)
    else:
        found = await service.erase(session, principal=principal, subject=subject)
        await _audit_erasure(session, request, principal, found)
        response.status_code = status.HTTP_200_OK
    return Envelope(data=await request_out(request, found))


@router.get("/requests", response_model=PageEnvelope[PrivacyRequestOut], name="privacy.requests.list")
async def list_requests(
    request: Request, principal: PrivacyRead, session: DbSession, page: Page
) -> PageEnvelope[PrivacyRequestOut]:
    found, total = await service.list_requests(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[await request_out(request, item) for item in found], meta=page.meta(total))


@router.get("/requests/{request_id}", response_model=Envelope[PrivacyRequestOut], name="privacy.requests.get")
async def get_request(
    request_id: uuid.UUID, request: Request, principal: PrivacyRead, session: DbSession
) -> Envelope[PrivacyRequestOut]:
    found = await service.get_request(session, org_id=principal.org_id, request_id=request_id)
    return Envelope(data=await request_out(request, found))


@router.post(
    "/me/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[PrivacyRequestOut],
    name="privacy.me.export",
    dependencies=[Idempotent],
)
async def export_me(request: Request, principal: OwnDataRequest, session: DbSession) -> Envelope[PrivacyRequestOut]:
    """Your own account's export, as a job; poll `GET /privacy/me/requests/{requestId}` for the link."""
    subject = service.subject_for(principal, subject_type="user", value=None)
    found = await service.request_export(session, principal=principal, subject=subject)
    audit_target(request, "privacy_request", found.id, kind="export", subjectType="user")
    return Envelope(data=await request_out(request, found))


@router.post("/me/erasure", response_model=Envelope[PrivacyRequestOut], name="privacy.me.erase")
async def erase_me(
    body: OwnErasure, request: Request, principal: OwnDataRequest, session: DbSession
) -> Envelope[PrivacyRequestOut]:
    """Delete your account everywhere, now: `confirmEmail` repeats its address (422 `confirmation_mismatch`
    otherwise), and an organization's only founder must name another first (409 `last_founder`)."""
    subject = service.subject_for(principal, subject_type="user", value=None)
    await service.check_own_erasure(session, principal=principal, confirm_email=body.confirm_email)
    found = await service.erase(session, principal=principal, subject=subject)
    await _audit_erasure(session, request, principal, found)
    return Envelope(data=await request_out(request, found))


@router.get("/me/requests/{request_id}", response_model=Envelope[PrivacyRequestOut], name="privacy.me.request")
async def get_my_request(
    request_id: uuid.UUID, request: Request, principal: OwnDataRead, session: DbSession
) -> Envelope[PrivacyRequestOut]:
    found = await service.get_own_request(session, principal=principal, request_id=request_id)
    return Envelope(data=await request_out(request, found))


@router.get(
    "/exports/{request_id}",
    name="privacy.exports.signed_content",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def signed_export(
    request_id: uuid.UUID,
    request: Request,
    org: uuid.UUID | None = None,
    expires: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    signature: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> Response:
    """A `downloadUrl`: no login, valid until `expires` for exactly this export (else 404, like any miss)."""
    org_id = service.check_download_link(
        request.app.state.settings, org_id=org, request_id=request_id, expires=expires, signature=signature
    )
    async with request.app.state.database.tenant_transaction(org_id=org_id) as session:
        key = await service.export_file(session, org_id=org_id, request_id=request_id)
    return StreamingResponse(
        _store(request).iter_chunks(key),
        media_type="application/json",
        headers={"content-disposition": f'attachment; filename="privacy-export-{request_id}.json"'},
    )


@router.get("/consents", response_model=PageEnvelope[ConsentOut], name="privacy.consents.list")
async def list_consents(
    principal: PrivacyRead,
    session: DbSession,
    page: Page,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
) -> PageEnvelope[ConsentOut]:
    found, total = await service.list_consents(
        session, org_id=principal.org_id, site_id=site_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[ConsentOut.model_validate(item) for item in found], meta=page.meta(total))


@router.get("/settings", response_model=Envelope[PrivacySettingsOut], name="privacy.settings.get")
async def get_settings(principal: PrivacyRead, session: DbSession) -> Envelope[PrivacySettingsOut]:
    return Envelope(
        data=PrivacySettingsOut.model_validate(await service.get_settings(session, org_id=principal.org_id))
    )


@router.patch("/settings", response_model=Envelope[PrivacySettingsOut], name="privacy.settings.update")
async def update_settings(
    body: PrivacySettingsUpdate, request: Request, principal: PrivacyUpdate, session: DbSession
) -> Envelope[PrivacySettingsOut]:
    updated = await service.update_settings(
        session, principal=principal, audit_retention_days=body.audit_retention_days
    )
    audit_target(request, "privacy_settings", principal.org_id, auditRetentionDays=body.audit_retention_days)
    return Envelope(data=PrivacySettingsOut.model_validate(updated))


@router.post(
    "/consent",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[ConsentRecorded],
    name="privacy.consent.widget",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/plain": {"schema": WidgetConsent.model_json_schema(by_alias=True)}},
        }
    },
)
async def widget_consent(request: Request) -> Response:
    """The widget's `northstar('stop')` and `northstar('start')`: the visitor's opt-out or opt-in, logged.

    Public, like `/collect`: from a page of the site (its Origin), as JSON or `text/plain` (what `sendBeacon` sends).
    """
    body = await request.body()
    if len(body) > 4096:
        raise Unprocessable("The body is too large", code="body_too_large")
    try:
        consent = WidgetConsent.model_validate_json(body or b"null")
    except ValidationError as exc:
        raise Unprocessable(
            "The consent is not valid",
            details=[
                {"field": ".".join(str(part) for part in ("body", *error["loc"])), "message": error["msg"]}
                for error in exc.errors(include_url=False, include_context=False)
            ],
        ) from None
    origin = request.headers.get("origin")
    database: Database = request.app.state.database
    async with database.sessionmaker() as session, session.begin():
        session.info["settings"] = request.app.state.settings
        where = await socialproof_privacy.widget_visitor(
            session,
            site_key=consent.site_key,
            origin=origin,
            user_id=consent.visitor.user_id,
            local_id=consent.visitor.local_id,
        )
        await set_tenant_context(session, org_id=where.org_id)
        entry = await service.record_consent(
            session,
            org_id=where.org_id,
            site_id=where.site_id,
            source="widget",
            action=consent.action,
            subject_digest=where.visitor_id,
            details={"identified": where.visitor_id is not None},
        )
        data = ConsentRecorded(id=entry.id, action=entry.action)
    return Response(
        Envelope(data=data).model_dump_json(by_alias=True),
        status_code=202,
        media_type="application/json",
        headers={"access-control-allow-origin": origin or "", "vary": "Origin"},
    )
