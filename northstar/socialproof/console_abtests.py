"""The console's A/B test pages: a site's tests, the editor (variants, split, metric, start and stop) and the
results with their intervals, significance and sample-ratio flag.

They call the A/B service and validate with the API's request models, behind the same gates as the API.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from northstar.core.console.pages import CSRF_FIELD, console_router, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import AppError
from northstar.core.permissions import Principal
from northstar.socialproof.auth import SitesReadPage, SitesUpdatePage
from northstar.socialproof.models import Site
from northstar.socialproof.schemas.abtests import MAX_VARIANTS, AbTestCreate, AbTestUpdate
from northstar.socialproof.service import abtests
from northstar.socialproof.service import sites as site_service

LIST_LIMIT = 100
METRICS = (("ctr", "Click-through rate (clicks / exposed visitors)"), ("conversion_rate", "Conversion rate"))
VARIANT_FIELDS = ("name", "weight", "message", "template_id", "duration_seconds")

M = TypeVar("M", bound=BaseModel)
router = console_router()


def _blank_values() -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "",
        "notification_id": "",
        "primary_metric": "ctr",
        "min_sample": "1000",
        "auto_winner": "",
        "control": "0",
    }
    for index in range(MAX_VARIANTS):
        values.update({f"variants.{index}.{field}": "" for field in VARIANT_FIELDS})
    values.update({"variants.0.name": "Control", "variants.0.weight": "50"})
    values.update({"variants.1.name": "Challenger", "variants.1.weight": "50"})
    return values


def _values_of(view: abtests.TestView) -> dict[str, Any]:
    """The editor's inputs from a stored test."""
    test = view.test
    values = _blank_values()
    values.update(
        {
            "name": test.name,
            "notification_id": str(test.notification_id),
            "primary_metric": test.primary_metric,
            "min_sample": str(test.min_sample),
            "auto_winner": "on" if test.auto_winner else "",
        }
    )
    for index in range(MAX_VARIANTS):
        values.update({f"variants.{index}.{field}": "" for field in VARIANT_FIELDS})
    for index, variant in enumerate(view.variants):
        values[f"variants.{index}.name"] = variant.name
        values[f"variants.{index}.weight"] = str(variant.weight)
        values[f"variants.{index}.message"] = variant.message or ""
        values[f"variants.{index}.template_id"] = str(variant.template_id) if variant.template_id else ""
        duration = variant.display.get("durationSeconds")
        values[f"variants.{index}.duration_seconds"] = str(duration) if duration is not None else ""
        if variant.is_control:
            values["control"] = str(index)
    return values


async def _read(request: Request) -> dict[str, Any]:
    form = await request.form()
    values = {key: value for key, value in form.items() if key != CSRF_FIELD and isinstance(value, str)}
    return {**{key: "" for key in _blank_values()}, **values}


def _body(values: dict[str, Any]) -> dict[str, Any]:
    """The API's JSON from the editor's inputs: rows without a name are not variants."""
    variants = []
    for index in range(MAX_VARIANTS):
        name = values.get(f"variants.{index}.name", "").strip()
        if not name:
            continue
        duration = values.get(f"variants.{index}.duration_seconds", "").strip()
        variants.append(
            {
                "name": name,
                "isControl": values.get("control") == str(index),
                "weight": values.get(f"variants.{index}.weight") or 0,
                "message": values.get(f"variants.{index}.message") or None,
                "templateId": values.get(f"variants.{index}.template_id") or None,
                "display": {"durationSeconds": duration} if duration else {},
            }
        )
    return {
        "name": values.get("name", ""),
        "notificationId": values.get("notification_id") or None,
        "primaryMetric": values.get("primary_metric"),
        "minSample": values.get("min_sample") or None,
        "autoWinner": values.get("auto_winner") == "on",
        "variants": variants,
    }


INPUTS = {
    "notificationId": "notification_id",
    "primaryMetric": "primary_metric",
    "minSample": "min_sample",
    "autoWinner": "auto_winner",
    "templateId": "template_id",
    "display": "duration_seconds",
}


def _input_of(location: tuple[int | str, ...]) -> str:
    """The editor input an error belongs to: ``variants.1.message``, ``min_sample``, or the form as a whole."""
    if len(location) >= 3 and location[0] == "variants":
        return f"variants.{location[1]}.{INPUTS.get(str(location[2]), str(location[2]))}"
    if not location or location[0] == "variants":
        return "form"
    return INPUTS.get(str(location[0]), str(location[0]))


def _validate(model: type[M], body: dict[str, Any], errors: dict[str, str]) -> M | None:
    """The body as the API would take it, else each error keyed by the input it belongs to."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            errors.setdefault(_input_of(error["loc"]), str(error["msg"]).removeprefix("Value error, "))
        return None


async def _editor(
    request: Request,
    session: DbSession,
    principal: Principal,
    site: Site,
    values: dict[str, Any],
    errors: dict[str, str],
    *,
    view: abtests.TestView | None,
    status: int = 200,
) -> Response:
    notifications, _ = await site_service.list_notifications(
        session, org_id=principal.org_id, site_id=site.id, status=None, offset=0, limit=LIST_LIMIT
    )
    templates, _ = await site_service.list_templates(
        session, org_id=principal.org_id, site_id=site.id, offset=0, limit=LIST_LIMIT
    )
    results = (
        await abtests.get_results(session, org_id=principal.org_id, site_id=site.id, test_id=view.test.id)
        if view and view.test.status != "draft"
        else None
    )
    context = {
        "site": site,
        "test": view.test if view else None,
        "variants": view.variants if view else [],
        "results": results,
        "values": values,
        "errors": errors,
        "slots": range(MAX_VARIANTS),
        "metrics": METRICS,
        "notifications": [(str(n.id), n.name) for n in notifications],
        "templates": [("", "The notification's own"), *((str(t.id), t.name) for t in templates)],
        "may_change": principal.can("update", "sites", owner_id=site.created_by),
    }
    return render(request, "socialproof/ab_test.html", context, status=status)


@router.get("/sites/{site_id}/ab-tests", name="console.socialproof_ab_tests")
async def tests_page(site_id: uuid.UUID, request: Request, principal: SitesReadPage, session: DbSession) -> Response:
    site = await site_service.get_site(session, org_id=principal.org_id, site_id=site_id)
    views, total = await abtests.list_tests(
        session, org_id=principal.org_id, site_id=site.id, offset=0, limit=LIST_LIMIT
    )
    context = {
        "site": site,
        "views": views,
        "total": total,
        "may_change": principal.can("update", "sites", owner_id=site.created_by),
    }
    return render(request, "socialproof/ab_tests.html", context)


@router.get("/sites/{site_id}/ab-tests/new", name="console.socialproof_ab_test_new")
async def new_test(site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession) -> Response:
    site = await site_service.site_for_change(session, principal=principal, site_id=site_id)
    return await _editor(request, session, principal, site, _blank_values(), {}, view=None)


@router.post("/sites/{site_id}/ab-tests/new", name="console.socialproof_ab_test_create")
async def create_test(site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession) -> Response:
    site = await site_service.site_for_change(session, principal=principal, site_id=site_id)
    values = await _read(request)
    errors: dict[str, str] = {}
    body = _validate(AbTestCreate, _body(values), errors)
    if body is not None:
        try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
            async with session.begin_nested():
                view = await abtests.create_test(session, principal=principal, site_id=site.id, body=body)
        except AppError as exc:
            if exc.status >= 500:
                raise
            errors["form"] = exc.message
        else:
            audit_target(request, "ab_test", view.test.id, site=str(site.id), status=view.test.status)
            return redirect(request, f"/app/sites/{site.id}/ab-tests/{view.test.id}")
    return await _editor(request, session, principal, site, values, errors, view=None, status=422)


TEST_PATH = "/sites/{site_id}/ab-tests/{test_id}"


@router.get(TEST_PATH, name="console.socialproof_ab_test")
async def test_page(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesReadPage, session: DbSession
) -> Response:
    site = await site_service.get_site(session, org_id=principal.org_id, site_id=site_id)
    view = await abtests.get_test(session, org_id=principal.org_id, site_id=site.id, test_id=test_id)
    return await _editor(request, session, principal, site, _values_of(view), {}, view=view)


@router.post(TEST_PATH, name="console.socialproof_ab_test_update")
async def update_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await site_service.site_for_change(session, principal=principal, site_id=site_id)
    view = await abtests.get_test(session, org_id=principal.org_id, site_id=site.id, test_id=test_id)
    values = await _read(request)
    errors: dict[str, str] = {}
    given = _body(values)
    given.pop("notificationId")
    if view.test.status != "draft":  # only what may still change is sent
        given = {key: given[key] for key in ("name", "minSample", "autoWinner")}
    body = _validate(AbTestUpdate, given, errors)
    if body is not None:
        try:
            async with session.begin_nested():
                view = await abtests.update_test(
                    session, principal=principal, site_id=site.id, test_id=test_id, body=body
                )
        except AppError as exc:
            if exc.status >= 500:
                raise
            errors["form"] = exc.message
        else:
            audit_target(request, "ab_test", test_id, site=str(site.id), status=view.test.status)
            return redirect(request, f"/app/sites/{site.id}/ab-tests/{test_id}?saved=1")
    values["notification_id"] = str(view.test.notification_id)
    return await _editor(request, session, principal, site, values, errors, view=view, status=422)


async def _act(
    request: Request, session: DbSession, principal: Principal, site_id: uuid.UUID, test_id: uuid.UUID, action: str
) -> Response:
    operations = {"start": abtests.start_test, "stop": abtests.stop_test}
    site = await site_service.site_for_change(session, principal=principal, site_id=site_id)
    try:
        async with session.begin_nested():
            view = await operations[action](session, principal=principal, site_id=site.id, test_id=test_id)
    except AppError as exc:
        if exc.status >= 500:
            raise
        view = await abtests.get_test(session, org_id=principal.org_id, site_id=site.id, test_id=test_id)
        return await _editor(
            request, session, principal, site, _values_of(view), {"form": exc.message}, view=view, status=409
        )
    audit_target(request, "ab_test", test_id, site=str(site.id), status=view.test.status)
    return redirect(request, f"/app/sites/{site.id}/ab-tests/{test_id}")


@router.post(TEST_PATH + "/start", name="console.socialproof_ab_test_start")
async def start_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    return await _act(request, session, principal, site_id, test_id, "start")


@router.post(TEST_PATH + "/stop", name="console.socialproof_ab_test_stop")
async def stop_test(
    site_id: uuid.UUID, test_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    return await _act(request, session, principal, site_id, test_id, "stop")
