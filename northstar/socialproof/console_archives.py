"""The console's archive pages: the archived months holding the org's events, restoring a period of one, and the
restored events. Same service functions, request model and gates as the archive routes of the API."""

from __future__ import annotations

import datetime as dt
import uuid

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from northstar.core.console.pages import console_router, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import AppError
from northstar.core.permissions import Principal
from northstar.settings import Settings
from northstar.socialproof.auth import ArchivesReadPage, ArchivesRestorePage
from northstar.socialproof.schemas.archives import RestoreCreate
from northstar.socialproof.service import restores as service

LIST_LIMIT = 100
EVENTS_LIMIT = 100

router = console_router()


@router.get("/archives", name="console.socialproof_archives")
async def archives_page(request: Request, principal: ArchivesReadPage, session: DbSession) -> Response:
    found, total = await service.list_archives(session, status=None, offset=0, limit=LIST_LIMIT)
    return render(request, "socialproof/archives.html", {"archives": found, "total": total})


async def _archive_page(
    request: Request,
    session: DbSession,
    principal: Principal,
    archive_id: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    archive = await service.get_archive(session, archive_id=archive_id)
    restores, _ = await service.list_restores(session, archive_id=archive_id, offset=0, limit=LIST_LIMIT)
    settings: Settings = request.app.state.settings
    context = {
        "archive": archive,
        "restores": restores,
        "values": values or {"start": "", "end": "", "keep_days": str(settings.socialproof.archive_restore_days)},
        "errors": errors or {},
        "max_days": settings.socialproof.archive_restore_days,
    }
    return render(request, "socialproof/archive.html", context, status=status)


@router.get("/archives/{archive_id}", name="console.socialproof_archive")
async def archive_page(
    archive_id: uuid.UUID, request: Request, principal: ArchivesReadPage, session: DbSession
) -> Response:
    return await _archive_page(request, session, principal, archive_id)


def _day(value: str, *, end: bool) -> str | None:
    """A date from the form's date input as the API's instant: the start of that UTC day (of the next, for end)."""
    if not value:
        return None
    day = dt.date.fromisoformat(value) + dt.timedelta(days=1 if end else 0)
    return dt.datetime.combine(day, dt.time(), dt.UTC).isoformat()


@router.post("/archives/{archive_id}/restore", name="console.socialproof_archive_restore")
async def restore_archive(
    archive_id: uuid.UUID, request: Request, principal: ArchivesRestorePage, session: DbSession
) -> Response:
    form = await request.form()
    values = {key: str(form.get(key) or "").strip() for key in ("start", "end", "keep_days")}
    errors: dict[str, str] = {}
    try:
        body = RestoreCreate.model_validate(
            {
                "start": _day(values["start"], end=False),
                "end": _day(values["end"], end=True),
                "keepDays": int(values["keep_days"]) if values["keep_days"] else None,
            }
        )
    except (ValueError, ValidationError):
        errors["form"] = "Dates are days like 2026-09-01 and the days to keep a whole number."
        return await _archive_page(request, session, principal, archive_id, values=values, errors=errors, status=422)
    settings: Settings = request.app.state.settings
    try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
        async with session.begin_nested():
            restore, job_id = await service.request_restore(
                session,
                org_id=principal.org_id,
                archive_id=archive_id,
                start=body.start,
                end=body.end,
                site_id=None,
                keep_days=body.keep_days,
                max_keep_days=settings.socialproof.archive_restore_days,
                requested_by=principal.user_id,
            )
    except AppError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        errors["form"] = exc.message
        return await _archive_page(
            request, session, principal, archive_id, values=values, errors=errors, status=exc.status
        )
    audit_target(request, "archive", archive_id, restore=str(restore.id), job=job_id)
    return redirect(request, f"/app/archives/{archive_id}")


@router.get("/archive-restores/{restore_id}", name="console.socialproof_archive_restore_events")
async def restore_page(
    restore_id: uuid.UUID, request: Request, principal: ArchivesReadPage, session: DbSession
) -> Response:
    restore = await service.get_restore(session, org_id=principal.org_id, restore_id=restore_id)
    events: list[dict[str, object]] = []
    total = 0
    if restore.status == "ready":
        events, total = await service.restored_events(
            session,
            org_id=principal.org_id,
            restore_id=restore_id,
            event_type=None,
            site_id=None,
            offset=0,
            limit=EVENTS_LIMIT,
        )
    return render(request, "socialproof/archive_restore.html", {"restore": restore, "events": events, "total": total})
