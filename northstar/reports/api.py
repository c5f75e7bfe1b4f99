"""Coach and report routes (seed 000 ``/api/reports`` and "AI-powered insights"): the month's insights and answers to
questions, reports made by queued jobs with their files, their schedules, and share links."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic.alias_generators import to_camel

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, NotFound, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Principal
from northstar.core.storage import ObjectStore
from northstar.metrics.statements import Fact
from northstar.reports.auth import (
    CoachRead,
    CoachSettingsRead,
    CoachSettingsUpdate,
    InvestorDashboardsRead,
    ReportsCreate,
    ReportsDelete,
    ReportsRead,
    SharesCreate,
    SharesRead,
    SharesRevoke,
)
from northstar.reports.models import Report, ShareLink
from northstar.reports.schemas import (
    MONTH_PATTERN,
    AnswerOut,
    CoachSettingsChange,
    CoachSettingsOut,
    FactOut,
    FileLink,
    InsightsOut,
    InvestorDashboardOut,
    Question,
    ReportCreate,
    ReportDetail,
    ReportKind,
    ReportOut,
    ScheduleChange,
    ScheduleOut,
    ShareCreate,
    ShareCreated,
    ShareOut,
    StepOut,
    StoredKind,
)
from northstar.reports.service import coaching, generation, publishing, schedules, sharing

router = APIRouter(tags=["coach"], responses=ERROR_RESPONSES)
ReportFileKind = Literal["html", "pdf", "mp4", "vtt", "poster"]

MonthQuery = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default this month")]


def _fact(fact: Fact) -> FactOut:
    return FactOut(id=fact.id, text=fact.text, data={to_camel(name): value for name, value in fact.data.items()})


@router.get("/coach/insights", response_model=Envelope[InsightsOut], name="coach.insights")
async def get_insights(
    request: Request, principal: CoachRead, session: DbSession, month: MonthQuery = None
) -> Envelope[InsightsOut]:
    """The month's facts, what the playbook proposes (each step citing its facts) and the narrative telling both."""
    chosen = dt.date.fromisoformat(f"{month}-01") if month else None
    found = await coaching.insights(session, org_id=principal.org_id, month=chosen, model=request.app.state.llm)
    return Envelope(
        data=InsightsOut(
            month=found.sheet.month,
            generator=found.generator,
            title=found.narrative.title,
            narrative=found.narrative.text,
            paragraphs=list(found.narrative.paragraphs),
            recommendations=[
                StepOut(rule=step.rule, title=step.title, action=step.action, cites=list(step.cites))
                for step in found.steps
            ],
            facts=[_fact(fact) for fact in found.sheet.facts],
            checks=list(found.checks),
        )
    )


@router.post("/coach/ask", response_model=Envelope[AnswerOut], name="coach.ask")
async def ask(body: Question, request: Request, principal: CoachRead, session: DbSession) -> Envelope[AnswerOut]:
    """A question ("why did MRR drop in March?") answered from the same facts, with the facts it cites."""
    reply = await coaching.ask(session, org_id=principal.org_id, question=body.question, model=request.app.state.llm)
    return Envelope(
        data=AnswerOut(
            intent=reply.answer.intent,
            answer=reply.answer.text,
            month=reply.answer.month,
            generator=reply.generator,
            citations=[_fact(fact) for fact in reply.citations],
            checks=list(reply.checks),
        )
    )


@router.get("/coach/settings", response_model=Envelope[CoachSettingsOut], name="coach.settings.get")
async def get_settings(principal: CoachSettingsRead, session: DbSession) -> Envelope[CoachSettingsOut]:
    found = await coaching.coach_settings(session, org_id=principal.org_id)
    return Envelope(data=CoachSettingsOut.model_validate(found))


@router.patch("/coach/settings", response_model=Envelope[CoachSettingsOut], name="coach.settings.update")
async def update_settings(
    body: CoachSettingsChange, request: Request, principal: CoachSettingsUpdate, session: DbSession
) -> Envelope[CoachSettingsOut]:
    """The coach's voice: its tone and how long its narratives are."""
    changes = body.model_dump(exclude_none=True)
    found = await coaching.update_coach_settings(session, org_id=principal.org_id, changes=changes)
    audit_target(request, "coach_settings", principal.org_id, **changes)
    return Envelope(data=CoachSettingsOut.model_validate(found))


# Reports


def _report_out(report: Report) -> ReportOut:
    return ReportOut.model_validate(report)


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[ReportOut],
    name="reports.create",
    tags=["reports"],
    dependencies=[Idempotent],
)
async def create_report(
    body: ReportCreate, request: Request, principal: ReportsCreate, session: DbSession
) -> Envelope[ReportOut]:
    """Queue a report of a period (default: the last one over); follow it with ``GET /reports/{id}``."""
    report = await generation.request_report(
        session,
        org_id=principal.org_id,
        requested_by=principal.user_id,
        kind=body.kind,
        period=body.period,
        formats=list(body.formats),
    )
    audit_target(request, "report", report.id, kind=report.kind, period=report.period_start.isoformat())
    return Envelope(data=_report_out(report))


@router.get("/reports", response_model=PageEnvelope[ReportOut], name="reports.list", tags=["reports"])
async def list_reports(
    principal: ReportsRead, session: DbSession, page: Page, kind: StoredKind | None = None
) -> PageEnvelope[ReportOut]:
    """Newest first; investors see the investor updates and dashboards only."""
    found, total = await generation.list_reports(
        session, principal=principal, kind=kind, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[_report_out(report) for report in found], meta=page.meta(total))


@router.get("/reports/{report_id}", response_model=Envelope[ReportDetail], name="reports.get", tags=["reports"])
async def get_report(report_id: uuid.UUID, principal: ReportsRead, session: DbSession) -> Envelope[ReportDetail]:
    """The report with the facts it was written from, its narrative and its next steps."""
    report = await generation.readable_report(session, principal=principal, report_id=report_id)
    return Envelope(data=ReportDetail.model_validate(report))


@router.delete("/reports/{report_id}", status_code=status.HTTP_204_NO_CONTENT, name="reports.delete", tags=["reports"])
async def delete_report(report_id: uuid.UUID, request: Request, principal: ReportsDelete, session: DbSession) -> None:
    await generation.delete_report(session, principal=principal, report_id=report_id, store=request.app.state.storage)
    audit_target(request, "report", report_id)


@router.get(
    "/reports/{report_id}/files/{kind}",
    response_model=Envelope[FileLink],
    name="reports.file_link",
    tags=["reports"],
)
async def file_link(
    report_id: uuid.UUID, kind: ReportFileKind, request: Request, principal: ReportsRead, session: DbSession
) -> Envelope[FileLink]:
    """An expiring link to one of the report's files (``html``, ``pdf``)."""
    report = await generation.readable_report(session, principal=principal, report_id=report_id)
    url = await generation.file_link(request.app.state.storage, request.app.state.settings, report, kind)
    return Envelope(data=FileLink(url=url, expires_in=generation.LINK_TTL_SECONDS))


@router.get(
    "/investor-dashboard",
    response_model=Envelope[InvestorDashboardOut],
    name="reports.investor_dashboard",
    tags=["reports"],
)
async def investor_dashboard(
    request: Request, principal: InvestorDashboardsRead, session: DbSession
) -> Envelope[InvestorDashboardOut]:
    """The newest investor dashboard DevBizOps' InvestorDashboardAgent published: KPIs shared with investors, DORA
    and velocity trends, roadmap progress and the top risks; the facts it was written from, and expiring links to
    its page and PDF. Investors read it (and nothing else of DevBizOps)."""
    report = await publishing.latest(session, org_id=principal.org_id)
    if report is None:
        raise NotFound("No investor dashboard yet: run the InvestorDashboardAgent", code="no_dashboard")
    store, settings = request.app.state.storage, request.app.state.settings
    files = {
        kind: FileLink(
            url=await generation.file_link(store, settings, report, kind), expires_in=generation.LINK_TTL_SECONDS
        )
        for kind in report.files
    }
    return Envelope(
        data=InvestorDashboardOut(
            report_id=report.id,
            title=report.title or "",
            period_start=report.period_start,
            period_end=report.period_end,
            generator=report.generator or "",
            narrative=report.narrative or "",
            risks=[fact["text"] for fact in report.facts if fact["id"].startswith("risk.")],
            facts=[FactOut.model_validate(fact) for fact in report.facts],
            checks=list(report.checks),
            files=files,
            completed_at=report.completed_at or report.created_at,
        )
    )


@router.get(
    "/report-files/{report_id}/{kind}",
    name="reports.signed_file",
    response_class=Response,
    tags=["reports"],
    responses={200: {"content": {"text/html": {}, "application/pdf": {}}}},
)
async def signed_file(
    report_id: uuid.UUID,
    kind: ReportFileKind,
    request: Request,
    org: uuid.UUID | None = None,
    expires: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    signature: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> Response:
    """A file link: no login, valid until ``expires`` for exactly this file (else 404, like any miss)."""
    settings = request.app.state.settings
    org_id = generation.check_file_link(
        settings, org_id=org, report_id=report_id, kind=kind, expires=expires, signature=signature
    )
    async with request.app.state.database.tenant_transaction(org_id=org_id) as session:
        report = await generation.get_report(session, org_id=org_id, report_id=report_id)
        key, media_type = generation.file_of(report, kind)
    return file_response(request.app.state.storage, key, media_type, f"{report.kind}-{report.period_start}")


def file_response(store: ObjectStore, key: str, media_type: str, stem: str) -> Response:
    """A report file streamed from the store: the PDF downloaded, the rest shown in place (HTML sandboxed)."""
    extension = key.rsplit(".", 1)[-1]
    disposition = "attachment" if extension == "pdf" else "inline"
    headers = {"content-disposition": f'{disposition}; filename="{stem}.{extension}"'}
    if extension == "html":
        headers["content-security-policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
    return StreamingResponse(store.iter_chunks(key), media_type=media_type, headers=headers)


# Schedules


@router.get("/report-schedules", response_model=Envelope[list[ScheduleOut]], name="reports.schedules", tags=["reports"])
async def list_schedules(principal: ReportsRead, session: DbSession) -> Envelope[list[ScheduleOut]]:
    """When each kind is made, in the org's time zone (the defaults until changed)."""
    found = await schedules.schedules(session, org_id=principal.org_id)
    return Envelope(data=[ScheduleOut.model_validate(schedule) for schedule in found])


@router.patch(
    "/report-schedules/{kind}", response_model=Envelope[ScheduleOut], name="reports.schedule_update", tags=["reports"]
)
async def update_schedule(
    kind: ReportKind, body: ScheduleChange, request: Request, principal: CoachSettingsUpdate, session: DbSession
) -> Envelope[ScheduleOut]:
    changes = body.model_dump(exclude_none=True)
    found = await schedules.update_schedule(session, org_id=principal.org_id, kind=kind, changes=changes)
    audit_target(request, "report_schedule", kind, **changes)
    return Envelope(data=ScheduleOut.model_validate(found))


# Share links


def _share_out(link: ShareLink) -> ShareOut:
    return ShareOut.model_validate({**link.__dict__, "passcode": link.passcode_hash is not None})


async def _share(
    request: Request, session: DbSession, principal: Principal, report_id: uuid.UUID | None, body: ShareCreate
) -> Envelope[ShareCreated]:
    link, token = await sharing.create_share(session, principal=principal, report_id=report_id, **body.model_dump())
    audit_target(request, "share_link", link.id, label=link.label, reportId=str(report_id) if report_id else None)
    url = sharing.link_url(request.app.state.settings, token)
    return Envelope(data=ShareCreated.model_validate({**_share_out(link).model_dump(), "url": url}))


@router.post(
    "/reports/{report_id}/shares",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ShareCreated],
    name="shares.create_for_report",
    tags=["shares"],
)
async def share_report(
    report_id: uuid.UUID, body: ShareCreate, request: Request, principal: SharesCreate, session: DbSession
) -> Envelope[ShareCreated]:
    """A link showing the report to whoever holds it (its URL is shown once); optional passcode."""
    return await _share(request, session, principal, report_id, body)


@router.post(
    "/shares/dashboard",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[ShareCreated],
    name="shares.create_for_dashboard",
    tags=["shares"],
)
async def share_dashboard(
    body: ShareCreate, request: Request, principal: SharesCreate, session: DbSession
) -> Envelope[ShareCreated]:
    """A link showing the live investor dashboard: the metrics shared with investors, as of the moment it is opened."""
    return await _share(request, session, principal, None, body)


@router.get("/shares", response_model=Envelope[list[ShareOut]], name="shares.list", tags=["shares"])
async def list_shares(
    principal: SharesRead, session: DbSession, report_id: Annotated[uuid.UUID | None, Query(alias="reportId")] = None
) -> Envelope[list[ShareOut]]:
    found = await sharing.list_shares(session, org_id=principal.org_id, report_id=report_id)
    return Envelope(data=[_share_out(link) for link in found])


@router.delete("/shares/{share_id}", response_model=Envelope[ShareOut], name="shares.revoke", tags=["shares"])
async def revoke_share(
    share_id: uuid.UUID, request: Request, principal: SharesRevoke, session: DbSession
) -> Envelope[ShareOut]:
    """The link stops working at once."""
    link = await sharing.revoke_share(session, org_id=principal.org_id, share_id=share_id)
    audit_target(request, "share_link", link.id)
    return Envelope(data=_share_out(link))
