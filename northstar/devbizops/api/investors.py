"""DevBizOps routes of the InvestorDashboardAgent: a run that publishes the investor dashboard, and the latest
dashboard, which investors read (nothing else of DevBizOps is theirs). It is kept as a report, so it is shared with
the reports' share links (``POST /reports/{id}/shares``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, NotFound
from northstar.core.idempotency import Idempotent
from northstar.devbizops.api.agents import run_out
from northstar.devbizops.auth import InvestorDashboardsCreate, InvestorDashboardsRead
from northstar.devbizops.schemas import (
    AgentRunOut,
    DashboardFactOut,
    DashboardFileOut,
    InvestorDashboardOut,
    InvestorDashboardRunIn,
)
from northstar.devbizops.service import agents as agents_service
from northstar.devbizops.service import investors as investors_service
from northstar.reports.service import generation

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)


@router.post(
    "/devbizops/agents/investor-dashboard/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[AgentRunOut],
    name="devbizops.investor_dashboard_run",
    dependencies=[Idempotent],
)
async def run_investor_dashboard(
    body: InvestorDashboardRunIn, request: Request, principal: InvestorDashboardsCreate, session: DbSession
) -> Envelope[AgentRunOut]:
    """Queue an InvestorDashboardAgent run: it gathers the KPIs shared with investors, the DORA and velocity trends,
    the roadmap and the top risks, writes the narrative (every number checked against those facts) and publishes
    the page and PDF. Follow it at ``GET /devbizops/agents/runs/{id}``; read it at ``GET
    /devbizops/investor-dashboard``."""
    run = await agents_service.start_investor_dashboard(session, principal=principal, mode=body.mode)
    audit_target(request, "agent_run", run.id)
    return Envelope(data=run_out(run))


@router.get(
    "/devbizops/investor-dashboard",
    response_model=Envelope[InvestorDashboardOut],
    name="devbizops.investor_dashboard",
)
async def latest_investor_dashboard(
    request: Request, principal: InvestorDashboardsRead, session: DbSession
) -> Envelope[InvestorDashboardOut]:
    """The newest published investor dashboard: its narrative, top risks, the facts it was written from, and
    expiring links to its page and PDF."""
    report = await investors_service.latest(session, org_id=principal.org_id)
    if report is None:
        raise NotFound("No investor dashboard yet: run the InvestorDashboardAgent", code="no_dashboard")
    store, settings = request.app.state.storage, request.app.state.settings
    files = {
        kind: DashboardFileOut(
            url=await generation.file_link(store, settings, report, kind),
            media_type=entry["mediaType"],
            bytes=entry["bytes"],
        )
        for kind, entry in report.files.items()
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
            facts=[DashboardFactOut(id=fact["id"], text=fact["text"]) for fact in report.facts],
            checks=list(report.checks),
            files=files,
            completed_at=report.completed_at or report.created_at,
        )
    )
