"""The reports module's console pages: the coach (the month told, next steps with the facts behind each, a question
box answered in place, the coach's voice), reports (asked for, followed until made, read, shared, scheduled) and the
investor dashboard DevBizOps' agent writes.
Same service functions and gates as the API."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from northstar.core.console.pages import attempt, console_router, field_errors, read_form, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.documents import blocks_of
from northstar.core.permissions import Principal
from northstar.devbizops.service import agents as agents_service
from northstar.metrics.statements import month_name
from northstar.reports.api import file_response
from northstar.reports.auth import (
    CoachReadPage,
    CoachSettingsUpdatePage,
    InvestorDashboardsReadPage,
    ReportsCreatePage,
    ReportsDeletePage,
    ReportsReadPage,
    SharesCreatePage,
    SharesRevokePage,
)
from northstar.reports.schemas import (
    MONTH_PATTERN,
    CoachSettingsChange,
    Question,
    ReportCreate,
    ScheduleChange,
    ShareCreate,
)
from northstar.reports.service import coaching, generation, publishing, schedules, sharing

TEMPLATES = Path(__file__).parent / "templates"
MONTHS_OFFERED = 12

router = console_router()


def _months(today: dt.date) -> list[tuple[str, str]]:
    """This month and the eleven before it, as the month picker's options."""
    first = today.replace(day=1)
    months = []
    for _ in range(MONTHS_OFFERED):
        months.append((first.strftime("%Y-%m"), month_name(first)))
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months


async def _coach_page(
    request: Request, session: DbSession, principal: Principal, month: str | None, *, status: int = 200, **extra: object
) -> Response:
    chosen = dt.date.fromisoformat(f"{month}-01") if month else None
    found = await coaching.insights(session, org_id=principal.org_id, month=chosen, model=request.app.state.llm)
    voice = await coaching.coach_settings(session, org_id=principal.org_id)
    context = {
        "insights": found,
        "paragraphs": blocks_of(found.narrative.paragraphs),
        "facts": {fact.id: fact for fact in found.sheet.facts},
        "months": _months(found.sheet.source.today),
        "chosen": found.sheet.month.strftime("%Y-%m"),
        "month_label": month_name(found.sheet.month),
        "voice": voice,
        "may_change_voice": principal.may_try("update", "settings"),
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "reports/coach.html", context, status=status)


@router.get("/coach", name="console.coach")
async def coach_page(
    request: Request,
    principal: CoachReadPage,
    session: DbSession,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN)] = None,
) -> Response:
    """``GET /coach/insights`` as a page."""
    return await _coach_page(request, session, principal, month)


@router.post("/coach/ask", name="console.coach_ask")
async def ask(request: Request, principal: CoachReadPage, session: DbSession) -> Response:
    """``POST /coach/ask``: the answer and its citations, swapped in under the question."""
    form = await read_form(request, Question)
    if form.model is None:
        return render(request, "reports/answer.html", {"reply": None, "errors": form.errors}, status=422)
    reply = await coaching.ask(
        session, org_id=principal.org_id, question=form.model.question, model=request.app.state.llm
    )
    return render(request, "reports/answer.html", {"reply": reply, "question": form.model.question, "errors": {}})


@router.post("/coach/voice", name="console.coach_voice")
async def change_voice(request: Request, principal: CoachSettingsUpdatePage, session: DbSession) -> Response:
    """``PATCH /coach/settings``: the coach's tone and length."""
    form = await read_form(request, CoachSettingsChange)
    if form.model is None:
        return await _coach_page(request, session, principal, None, values=form.values, errors=form.errors, status=422)
    changes = form.model.model_dump(exclude_none=True)
    await coaching.update_coach_settings(session, org_id=principal.org_id, changes=changes)
    audit_target(request, "coach_settings", principal.org_id, **changes)
    return redirect(request, "/app/coach")


# Reports

KIND_OPTIONS = [(kind, generation.KIND_NAMES[kind]) for kind in generation.KINDS]
WEEKDAYS = [(str(day), name) for day, name in enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"))]
WEEKDAYS += [("5", "Saturday"), ("6", "Sunday")]


async def _reports_page(
    request: Request, session: DbSession, principal: Principal, *, status: int = 200, **extra: object
) -> Response:
    found, total = await generation.list_reports(session, principal=principal, kind=None, offset=0, limit=50)
    context = {
        "reports": found,
        "total": total,
        "kind_names": generation.KIND_NAMES,
        "kind_options": [option for option in KIND_OPTIONS if option[0] in generation.visible_kinds(principal)],
        "schedules": await schedules.schedules(session, org_id=principal.org_id),
        "weekdays": WEEKDAYS,
        "may_create": principal.may_try("create", "reports"),
        "may_schedule": principal.may_try("update", "settings"),
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "reports/reports.html", context, status=status)


@router.get("/reports", name="console.reports")
async def reports_page(request: Request, principal: ReportsReadPage, session: DbSession) -> Response:
    """``GET /reports`` (investors: the investor updates), the form asking for one, and the schedules."""
    return await _reports_page(request, session, principal)


@router.post("/reports", name="console.reports_create")
async def create_report(request: Request, principal: ReportsCreatePage, session: DbSession) -> Response:
    """``POST /reports``: the report is queued, and its page follows it until it is made."""
    raw = await request.form()
    form = await read_form(
        request,
        ReportCreate,
        period=raw.get("period") or None,
        formats=[value for value in raw.getlist("formats") if isinstance(value, str)],
    )
    if form.model is None:
        return await _reports_page(request, session, principal, values=form.values, errors=form.errors, status=422)
    body: ReportCreate = form.model
    report, refusal, status = await attempt(
        request,
        session,
        lambda: generation.request_report(
            session,
            org_id=principal.org_id,
            requested_by=principal.user_id,
            kind=body.kind,
            period=body.period,
            formats=list(body.formats),
        ),
    )
    if report is None:
        errors = {"period": refusal or ""}
        return await _reports_page(request, session, principal, values=form.values, errors=errors, status=status)
    audit_target(request, "report", report.id, kind=report.kind, period=report.period_start.isoformat())
    return redirect(request, f"/app/reports/{report.id}")


async def _report_page(
    request: Request,
    session: DbSession,
    principal: Principal,
    report_id: uuid.UUID,
    *,
    status: int = 200,
    **extra: object,
) -> Response:
    report = await generation.readable_report(session, principal=principal, report_id=report_id)
    may_share = principal.may_try("read", "shares")
    context = {
        "report": report,
        "kind_names": generation.KIND_NAMES,
        "paragraphs": blocks_of(report.narrative.split("\n\n")) if report.narrative else [],
        "facts": {fact["id"]: fact for fact in report.facts},
        "shares": await sharing.list_shares(session, org_id=principal.org_id, report_id=report.id) if may_share else [],
        "may_share": may_share,
        "may_delete": principal.can("delete", "reports", owner_id=report.requested_by),
        "finished": report.status in ("completed", "failed"),
        "values": {},
        "errors": {},
        "new_share": None,
        **extra,
    }
    template = "reports/report_status.html" if request.headers.get("hx-request") == "true" else "reports/report.html"
    return render(request, template, context, status=status)


@router.get("/reports/{report_id}", name="console.report")
async def report_page(
    report_id: uuid.UUID, request: Request, principal: ReportsReadPage, session: DbSession
) -> Response:
    """``GET /reports/{id}``: polled while the report is being made, then its narrative, files, facts and shares."""
    return await _report_page(request, session, principal, report_id)


@router.get("/reports/{report_id}/files/{kind}", name="console.report_file")
async def report_file(
    report_id: uuid.UUID,
    kind: Annotated[str, PathParam(pattern="^(html|pdf|mp4|vtt|poster)$")],
    request: Request,
    principal: ReportsReadPage,
    session: DbSession,
) -> Response:
    """A report file for the page: the video, its subtitles and poster from this origin (the page's policy loads
    media from nowhere else), the HTML and PDF by their expiring links."""
    report = await generation.readable_report(session, principal=principal, report_id=report_id)
    store = request.app.state.storage
    if kind in ("html", "pdf"):
        return RedirectResponse(await generation.file_link(store, request.app.state.settings, report, kind), 307)
    key, media_type = generation.file_of(report, kind)
    return file_response(store, key, media_type, f"{report.kind}-{report.period_start}")


@router.post("/reports/{report_id}/delete", name="console.report_delete")
async def delete_report(
    report_id: uuid.UUID, request: Request, principal: ReportsDeletePage, session: DbSession
) -> Response:
    _, refusal, status = await attempt(
        request,
        session,
        lambda: generation.delete_report(
            session, principal=principal, report_id=report_id, store=request.app.state.storage
        ),
    )
    if refusal is not None:
        return await _report_page(request, session, principal, report_id, errors={"form": refusal}, status=status)
    audit_target(request, "report", report_id)
    return redirect(request, "/app/reports")


@router.post("/reports/{report_id}/shares", name="console.report_share")
async def share_report(
    report_id: uuid.UUID, request: Request, principal: SharesCreatePage, session: DbSession
) -> Response:
    """``POST /reports/{id}/shares``: the link is shown once, on the page that answers."""
    form = await read_form(request, ShareCreate, passcode=(await request.form()).get("passcode") or None)
    if form.model is None:
        return await _report_page(
            request, session, principal, report_id, values=form.values, errors=form.errors, status=422
        )
    link, token = await sharing.create_share(
        session, principal=principal, report_id=report_id, **form.model.model_dump()
    )
    audit_target(request, "share_link", link.id, label=link.label, reportId=str(report_id))
    url = sharing.link_url(request.app.state.settings, token)
    return await _report_page(request, session, principal, report_id, new_share=url)


@router.post("/shares/{share_id}/revoke", name="console.share_revoke")
async def revoke_share(
    share_id: uuid.UUID, request: Request, principal: SharesRevokePage, session: DbSession
) -> Response:
    link = await sharing.revoke_share(session, org_id=principal.org_id, share_id=share_id)
    audit_target(request, "share_link", link.id)
    return redirect(request, f"/app/reports/{link.report_id}" if link.report_id else "/app/reports")


@router.post("/report-schedules/{kind}", name="console.report_schedule")
async def change_schedule(
    kind: Annotated[str, PathParam(pattern="^(weekly_digest|monthly_report|investor_update)$")],
    request: Request,
    principal: CoachSettingsUpdatePage,
    session: DbSession,
) -> Response:
    """``PATCH /report-schedules/{kind}`` from the schedule's row of the reports page."""
    raw = await request.form()  # one form per schedule on the page: its inputs are named after its kind
    submitted = {name: raw.get(f"{kind}-{name}") or None for name in ("weekday", "day", "hour")}
    try:
        change = ScheduleChange.model_validate(
            {**submitted, "enabled": raw.get("enabled") == "on", "formats": raw.getlist("formats") or None}
        )
    except ValidationError as exc:
        errors = {f"{kind}.{name}": message for name, message in field_errors(exc).items()}
        return await _reports_page(request, session, principal, errors=errors, status=422)
    changes = change.model_dump(exclude_none=True)
    await schedules.update_schedule(session, org_id=principal.org_id, kind=kind, changes=changes)
    audit_target(request, "report_schedule", kind, **changes)
    return redirect(request, "/app/reports")


@router.get("/investor-dashboard", name="console.investor_dashboard")
async def investor_dashboard_page(
    request: Request, principal: InvestorDashboardsReadPage, session: DbSession
) -> Response:
    """``GET /investor-dashboard``: the newest dashboard DevBizOps' agent published, its narrative and risks, its
    charts, the facts behind it and its files; for those who may, a new run and the way to share it."""
    report = await publishing.latest(session, org_id=principal.org_id)
    run = (
        await agents_service.run_of_report(session, org_id=principal.org_id, report_id=report.id)
        if report is not None
        else None
    )
    context = {
        "report": report,
        "paragraphs": blocks_of(report.narrative.split("\n\n")) if report and report.narrative else [],
        "charts": (run.output or {}).get("charts", []) if run is not None else [],
        "roadmap": [fact["text"] for fact in report.facts if fact["id"].startswith("roadmap.item.")] if report else [],
        "may_run": principal.may_try("create", "investor_dashboards"),
        "may_share": principal.may_try("create", "shares"),
        "llm": request.app.state.llm is not None,
    }
    return render(request, "reports/investor_dashboard.html", context)
