"""The console's visitor profile pages (list, search, detail, erase) and custom field pages (list, create, change,
delete), behind the same gates and service functions as the API's routes (``api/profiles.py``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError

from northstar.core.console.pages import CSRF_FIELD, console_router, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import AppError, PageParams, WireModel
from northstar.core.permissions import Principal
from northstar.socialproof.auth import (
    CustomFieldsCreatePage,
    CustomFieldsDeletePage,
    CustomFieldsReadPage,
    CustomFieldsUpdatePage,
    VisitorsDeletePage,
    VisitorsReadPage,
)
from northstar.socialproof.schemas.profiles import CustomFieldCreate, Score
from northstar.socialproof.service import custom_fields as field_service
from northstar.socialproof.service import profiles as profile_service
from northstar.socialproof.service.sites import get_site

router = console_router()
PAGE_SIZE = 50
FIELD_TYPES = (("text", "Text"), ("number", "Number"), ("boolean", "Yes or no"), ("date", "Date"), ("enum", "One of"))


class ProfileFilters(WireModel):
    """The search form of the visitor list (its inputs are the API's query parameters)."""

    score_min: Score | None = None
    score_max: Score | None = None
    visitors: Literal["all", "new", "returning"] = "all"
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    device: Literal["desktop", "mobile", "tablet"] | None = None
    page: int = Field(1, ge=1, le=100_000)


def _errors(exc: ValidationError) -> dict[str, str]:
    return {
        ".".join(str(part) for part in error["loc"]) or "form": str(error["msg"]).removeprefix("Value error, ")
        for error in exc.errors()
    }


# ---- visitor profiles ----


@router.get("/sites/{site_id}/visitors", name="console.socialproof_visitors")
async def visitors_page(
    site_id: uuid.UUID,
    request: Request,
    principal: VisitorsReadPage,
    session: DbSession,
    erased: Annotated[bool, Query()] = False,
) -> Response:
    site = await get_site(session, org_id=principal.org_id, site_id=site_id)
    values = {key: value for key, value in request.query_params.items() if value != "" and key != "erased"}
    errors: dict[str, str] = {}
    try:
        filters = ProfileFilters.model_validate(values)
    except ValidationError as exc:
        errors, filters = _errors(exc), ProfileFilters()
    page = PageParams(page=filters.page, limit=PAGE_SIZE)
    search = profile_service.ProfileSearch(
        score_min=filters.score_min,
        score_max=filters.score_max,
        visitors=filters.visitors,
        country=filters.country,
        device=filters.device,
        sort="-lastSeenAt",
    )
    profiles, total = await profile_service.search_profiles(
        session, org_id=principal.org_id, site_id=site.id, search=search, offset=page.offset, limit=page.limit
    )
    query = "&".join(
        f"{key}={value}" for key, value in values.items() if key != "page" and key in ProfileFilters.model_fields
    )
    context = {
        "site": site,
        "profiles": [profile_service.profile_out(profile) for profile in profiles],
        "total": total,
        "page": page,
        "values": values,
        "errors": errors,
        "base_url": f"/app/sites/{site.id}/visitors" + (f"?{query}" if query else ""),
        "erased": erased,
    }
    return render(request, "socialproof/visitors.html", context, status=422 if errors else 200)


VISITOR_PATH = "/sites/{site_id}/visitors/{visitor_id}"


@router.get(VISITOR_PATH, name="console.socialproof_visitor")
async def visitor_page(
    site_id: uuid.UUID, visitor_id: str, request: Request, principal: VisitorsReadPage, session: DbSession
) -> Response:
    site = await get_site(session, org_id=principal.org_id, site_id=site_id)
    profile = await profile_service.get_profile(
        session, org_id=principal.org_id, site_id=site.id, visitor_id=visitor_id[:64]
    )
    context = {
        "site": site,
        "profile": profile_service.profile_out(profile),
        "may_erase": principal.can("delete", "visitors"),
    }
    return render(request, "socialproof/visitor.html", context)


@router.post(VISITOR_PATH + "/erase", name="console.socialproof_visitor_erase")
async def erase_visitor(
    site_id: uuid.UUID, visitor_id: str, request: Request, principal: VisitorsDeletePage, session: DbSession
) -> Response:
    erased = await profile_service.erase_profile(
        session, org_id=principal.org_id, site_id=site_id, visitor_id=visitor_id[:64]
    )
    audit_target(request, "visitor_profile", erased, site=str(site_id))
    return redirect(request, f"/app/sites/{site_id}/visitors?erased=1")


# ---- custom fields ----


def _default_of(field_type: str, text: str) -> Any:
    """A default as typed in the form, as the API would receive it (the model then checks it)."""
    text = text.strip()
    if not text:
        return None
    if field_type == "number":
        try:
            number = float(text)
        except ValueError:
            return text  # refused by the model, with its message
        return int(number) if number.is_integer() and "." not in text else number
    if field_type == "boolean":
        return {"true": True, "yes": True, "false": False, "no": False}.get(text.lower(), text)
    return text


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {key: value for key, value in form.items() if key != CSRF_FIELD and isinstance(value, str)}


def _options(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


def _body(values: dict[str, Any], field_type: str) -> dict[str, Any]:
    return {
        "name": values.get("name", ""),
        "key": values.get("key", ""),
        "type": field_type,
        "options": _options(values.get("options", "")),
        "required": values.get("required") == "on",
        "default": _default_of(field_type, values.get("default", "")),
    }


async def _fields_page(
    request: Request, session: DbSession, principal: Principal, values: dict[str, Any], errors: dict[str, str]
) -> Response:
    fields, total = await field_service.list_fields(session, org_id=principal.org_id, offset=0, limit=100)
    context = {
        "fields": [field_service.field_out(field) for field in fields],
        "total": total,
        "values": values,
        "errors": errors,
        "types": FIELD_TYPES,
    }
    return render(request, "socialproof/custom_fields.html", context, status=422 if errors else 200)


@router.get("/custom-fields", name="console.socialproof_custom_fields")
async def custom_fields_page(request: Request, principal: CustomFieldsReadPage, session: DbSession) -> Response:
    return await _fields_page(request, session, principal, {"type": "text"}, {})


def _validated(model: type[BaseModel], body: dict[str, Any], errors: dict[str, str]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors.update(_errors(exc))
        return None


@router.post("/custom-fields", name="console.socialproof_custom_field_create")
async def create_custom_field(request: Request, principal: CustomFieldsCreatePage, session: DbSession) -> Response:
    values = await _form(request)
    errors: dict[str, str] = {}
    body = _validated(CustomFieldCreate, _body(values, values.get("type", "text")), errors)
    if body is not None:
        try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
            async with session.begin_nested():
                field = await field_service.create_field(session, org_id=principal.org_id, fields=body)
        except AppError as exc:
            if exc.status >= 500:
                raise
            errors["key"] = exc.message
        else:
            audit_target(request, "custom_field", field.id, key=field.key, type=field.field_type)
            return redirect(request, "/app/custom-fields")
    return await _fields_page(request, session, principal, values, errors)


FIELD_PATH = "/custom-fields/{field_id}"


async def _field_page(
    request: Request,
    session: DbSession,
    principal: Principal,
    field_id: uuid.UUID,
    values: dict[str, Any] | None,
    errors: dict[str, str],
) -> Response:
    field = field_service.field_out(await field_service.get_field(session, org_id=principal.org_id, field_id=field_id))
    if values is None:
        default = field.default
        values = {
            "name": field.name,
            "options": "\n".join(field.options),
            "required": "on" if field.required else "",
            "default": ("true" if default else "false")
            if isinstance(default, bool)
            else ("" if default is None else str(default)),
        }
    context = {
        "field": field,
        "values": values,
        "errors": errors,
        "may_change": principal.can("update", "custom_fields"),
        "may_delete": principal.can("delete", "custom_fields"),
        "saved": request.query_params.get("saved") == "1",
    }
    return render(request, "socialproof/custom_field.html", context, status=422 if errors else 200)


@router.get(FIELD_PATH, name="console.socialproof_custom_field")
async def custom_field_page(
    field_id: uuid.UUID, request: Request, principal: CustomFieldsReadPage, session: DbSession
) -> Response:
    return await _field_page(request, session, principal, field_id, None, {})


@router.post(FIELD_PATH, name="console.socialproof_custom_field_update")
async def update_custom_field(
    field_id: uuid.UUID, request: Request, principal: CustomFieldsUpdatePage, session: DbSession
) -> Response:
    values = await _form(request)
    field = await field_service.get_field(session, org_id=principal.org_id, field_id=field_id)
    changes: dict[str, Any] = {
        "name": values.get("name", ""),
        "required": values.get("required") == "on",
        "default": _default_of(field.field_type, values.get("default", "")),
    }
    if field.field_type == "enum":
        changes["options"] = _options(values.get("options", ""))
    try:
        async with session.begin_nested():
            await field_service.update_field(session, org_id=principal.org_id, field_id=field_id, changes=changes)
    except AppError as exc:
        if exc.status >= 500:
            raise
        details = exc.details if isinstance(exc.details, list) else []
        errors = {"form": "; ".join(str(item.get("message")) for item in details) or exc.message}
        return await _field_page(request, session, principal, field_id, values, errors)
    audit_target(request, "custom_field", field_id, key=field.key)
    return redirect(request, f"/app/custom-fields/{field_id}?saved=1")


@router.post(FIELD_PATH + "/delete", name="console.socialproof_custom_field_delete")
async def delete_custom_field(
    field_id: uuid.UUID, request: Request, principal: CustomFieldsDeletePage, session: DbSession
) -> Response:
    await field_service.delete_field(session, org_id=principal.org_id, field_id=field_id)
    audit_target(request, "custom_field", field_id)
    return redirect(request, "/app/custom-fields")
