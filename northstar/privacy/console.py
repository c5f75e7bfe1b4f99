"""The console's privacy centre: a visitor's export or erasure, the requests made, and the consent log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from northstar.core.console.pages import attempt, console_router, read_form, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import Page
from northstar.core.permissions import Principal
from northstar.privacy import service
from northstar.privacy.api import request_out
from northstar.privacy.auth import PrivacyPage, PrivacyPageCreate
from northstar.privacy.schemas import PrivacyRequestCreate

TEMPLATES = Path(__file__).parent / "templates"

router = console_router()


async def _page(
    request: Request,
    session: DbSession,
    principal: Principal,
    page: Page,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    found, total = await service.list_requests(session, org_id=principal.org_id, offset=page.offset, limit=page.limit)
    consents, _ = await service.list_consents(session, org_id=principal.org_id, site_id=None, offset=0, limit=20)
    context = {
        "requests": [await request_out(request, item) for item in found],
        "total": total,
        "page": page,
        "consents": consents,
        "values": values or {"kind": "export", "subjectType": "visitor"},
        "errors": errors or {},
        "notice": notice,
        "base_url": "/app/privacy",
    }
    return render(request, "privacy/privacy.html", context, status=status)


@router.get("/privacy", name="console.privacy")
async def privacy_page(request: Request, principal: PrivacyPage, session: DbSession, page: Page) -> Response:
    return await _page(request, session, principal, page)


@router.post("/privacy/requests", name="console.privacy_request")
async def create_request(request: Request, principal: PrivacyPageCreate, session: DbSession, page: Page) -> Response:
    """The API's request, from the form: an export is queued, an erasure happens at once."""
    form = await read_form(request, PrivacyRequestCreate)
    if form.model is None:
        return await _page(request, session, principal, page, values=form.values, errors=form.errors, status=422)
    body = form.model

    async def run() -> Any:
        subject = service.subject_for(principal, subject_type=body.subject_type, value=body.subject)
        if body.kind == "export":
            return await service.request_export(session, principal=principal, subject=subject)
        return await service.erase(session, principal=principal, subject=subject)

    found, error, status = await attempt(request, session, run)
    if error:
        return await _page(
            request, session, principal, page, values=form.values, errors={"subject": error}, status=status
        )
    audit_target(request, "privacy_request", found.id, kind=body.kind, subjectType=body.subject_type)
    notice = (
        "The export is being prepared; its download link appears below when it is ready."
        if body.kind == "export"
        else f"Erased: {', '.join(f'{count} {table}' for table, count in found.result.items())}."
    )
    return await _page(request, session, principal, page, notice=notice)
