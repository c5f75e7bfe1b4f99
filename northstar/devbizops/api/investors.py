"""DevBizOps route of the InvestorDashboardAgent: a run that writes the investor dashboard, which the reports
module publishes (``GET /reports/investor-dashboard``, read by investors, shared with ``POST
/reports/{id}/shares``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope
from northstar.core.idempotency import Idempotent
from northstar.devbizops.api.agents import run_out
from northstar.devbizops.auth import InvestorDashboardsCreate
from northstar.devbizops.schemas import AgentRunOut, InvestorDashboardRunIn
from northstar.devbizops.service import agents as agents_service

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
    /reports/investor-dashboard``."""
    run = await agents_service.start_investor_dashboard(session, principal=principal, mode=body.mode)
    audit_target(request, "agent_run", run.id)
    return Envelope(data=run_out(run))
