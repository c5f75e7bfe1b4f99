"""Merchant routes for visitor profiles (read, search, erase) and the organization's custom field definitions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.socialproof.auth import (
    CustomFieldsCreate,
    CustomFieldsDelete,
    CustomFieldsRead,
    CustomFieldsUpdate,
    VisitorsDelete,
    VisitorsRead,
)
from northstar.socialproof.runtime import SocialProofRuntime
from northstar.socialproof.schemas.profiles import (
    CustomFieldCreate,
    CustomFieldOut,
    CustomFieldUpdate,
    ProfileSort,
    VisitorProfileOut,
)
from northstar.socialproof.service import custom_fields as field_service
from northstar.socialproof.service import profiles as profile_service

router = APIRouter(tags=["social proof"], responses=ERROR_RESPONSES)
VisitorId = Annotated[str, Path(max_length=64, description="the visitor id a profile lists")]
VISITOR = "/sites/{site_id}/visitors/{visitor_id}"
FIELD = "/custom-fields/{field_id}"


@router.get("/sites/{site_id}/visitors", response_model=PageEnvelope[VisitorProfileOut], name="visitors.list")
async def search_visitors(
    site_id: uuid.UUID,
    request: Request,
    principal: VisitorsRead,
    session: DbSession,
    page: Page,
    score_min: Annotated[float | None, Query(alias="scoreMin", ge=0, le=100)] = None,
    score_max: Annotated[float | None, Query(alias="scoreMax", ge=0, le=100)] = None,
    visitors: Literal["all", "new", "returning"] = "all",
    country: Annotated[str | None, Query(pattern=r"^[A-Z]{2}$")] = None,
    device: Literal["desktop", "mobile", "tablet"] | None = None,
    last_seen_after: Annotated[datetime | None, Query(alias="lastSeenAfter")] = None,
    last_seen_before: Annotated[datetime | None, Query(alias="lastSeenBefore")] = None,
    user_id: Annotated[
        str | None,
        Query(alias="userId", min_length=1, max_length=200, description="your id for a customer (as sent in events)"),
    ] = None,
    sort: ProfileSort = "-lastSeenAt",
) -> PageEnvelope[VisitorProfileOut]:
    """Profiles of the site's visitors, filtered; ``userId`` finds the profile of a customer you identified."""
    runtime: SocialProofRuntime = request.app.state.socialproof
    search = profile_service.ProfileSearch(
        score_min=score_min,
        score_max=score_max,
        visitors=visitors,
        country=country,
        device=device,
        last_seen_after=last_seen_after,
        last_seen_before=last_seen_before,
        visitor_ids=(runtime.collector.visitors.identified(site_id, user_id),) if user_id is not None else (),
        sort=sort,
    )
    profiles, total = await profile_service.search_profiles(
        session, org_id=principal.org_id, site_id=site_id, search=search, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[profile_service.profile_out(profile) for profile in profiles], meta=page.meta(total))


@router.get(VISITOR, response_model=Envelope[VisitorProfileOut], name="visitors.get")
async def get_visitor(
    site_id: uuid.UUID, visitor_id: VisitorId, principal: VisitorsRead, session: DbSession
) -> Envelope[VisitorProfileOut]:
    profile = await profile_service.get_profile(
        session, org_id=principal.org_id, site_id=site_id, visitor_id=visitor_id
    )
    return Envelope(data=profile_service.profile_out(profile))


@router.delete(VISITOR, status_code=status.HTTP_204_NO_CONTENT, name="visitors.delete")
async def erase_visitor(
    site_id: uuid.UUID, visitor_id: VisitorId, request: Request, principal: VisitorsDelete, session: DbSession
) -> None:
    """Erase the profile, its custom values and the visitor's attributed conversions."""
    erased = await profile_service.erase_profile(
        session, org_id=principal.org_id, site_id=site_id, visitor_id=visitor_id
    )
    audit_target(request, "visitor_profile", erased, site=str(site_id))


@router.get("/custom-fields", response_model=PageEnvelope[CustomFieldOut], name="custom_fields.list")
async def list_custom_fields(
    principal: CustomFieldsRead, session: DbSession, page: Page
) -> PageEnvelope[CustomFieldOut]:
    fields, total = await field_service.list_fields(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[field_service.field_out(field) for field in fields], meta=page.meta(total))


@router.post(
    "/custom-fields",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[CustomFieldOut],
    name="custom_fields.create",
    dependencies=[Idempotent],
)
async def create_custom_field(
    body: CustomFieldCreate, request: Request, principal: CustomFieldsCreate, session: DbSession
) -> Envelope[CustomFieldOut]:
    field = await field_service.create_field(session, org_id=principal.org_id, fields=body)
    audit_target(request, "custom_field", field.id, key=field.key, type=field.field_type)
    return Envelope(data=field_service.field_out(field))


@router.get(FIELD, response_model=Envelope[CustomFieldOut], name="custom_fields.get")
async def get_custom_field(
    field_id: uuid.UUID, principal: CustomFieldsRead, session: DbSession
) -> Envelope[CustomFieldOut]:
    return Envelope(
        data=field_service.field_out(await field_service.get_field(session, org_id=principal.org_id, field_id=field_id))
    )


@router.patch(FIELD, response_model=Envelope[CustomFieldOut], name="custom_fields.update")
async def update_custom_field(
    field_id: uuid.UUID, body: CustomFieldUpdate, request: Request, principal: CustomFieldsUpdate, session: DbSession
) -> Envelope[CustomFieldOut]:
    field = await field_service.update_field(
        session, org_id=principal.org_id, field_id=field_id, changes=body.model_dump(exclude_unset=True)
    )
    audit_target(request, "custom_field", field.id, key=field.key)
    return Envelope(data=field_service.field_out(field))


@router.delete(FIELD, status_code=status.HTTP_204_NO_CONTENT, name="custom_fields.delete")
async def delete_custom_field(
    field_id: uuid.UUID, request: Request, principal: CustomFieldsDelete, session: DbSession
) -> None:
    await field_service.delete_field(session, org_id=principal.org_id, field_id=field_id)
    audit_target(request, "custom_field", field_id)
