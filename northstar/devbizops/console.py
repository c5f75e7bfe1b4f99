"""The console's engineering pages: the DORA dashboard (each scope's four keys with their band, trends over twelve
months, and the flow metrics), work items with the customers and deals waiting on them, and the transcript inbox:
a call pasted or uploaded starts a TechTranslator run, whose page shows its steps and its proposals with their
evidence highlighted in the call, approved or rejected there by founders and admins; the roadmap board; and the
InvestorDashboardAgent's run, asked for on the reports module's investor dashboard page.

Every page calls the same service functions behind the same gates as the API routes (``api.py``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError

from northstar.core.console.pages import console_router, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import AppError, NotFound, Page
from northstar.devbizops import dora, service
from northstar.devbizops.auth import (
    EngineeringReadPage,
    InvestorDashboardsCreatePage,
    ProposalsCreatePage,
    ProposalsDecidePage,
    ProposalsReadPage,
)
from northstar.devbizops.schemas import TechTranslatorRunIn
from northstar.devbizops.service import agents as agents_service
from northstar.devbizops.service import links as links_service
from northstar.devbizops.service import roadmap as roadmap_service
from northstar.metrics import service as metrics_service

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MONTHS = 12
KEYS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("deployments", "deployment_frequency_band", "Deployments", {}),
    ("lead_time_hours", "lead_time_band", "Lead time for changes", {"unit": "hour"}),
    ("change_failure_rate", "change_failure_band", "Change failure rate", {"unit": "percent"}),
    ("time_to_restore_hours", "time_to_restore_band", "Time to restore service", {"unit": "hour"}),
)
FLOW = (
    ("throughput", "Merged"),
    ("work_in_progress", "Open at month end"),
    ("reviews", "Reviews"),
    ("review_load", "Reviews per reviewer"),
    ("coding_time_hours", "Coding (h)"),
    ("pickup_time_hours", "Pickup (h)"),
    ("review_time_hours", "Review (h)"),
    ("deploy_time_hours", "Deploy (h)"),
)
CONTEXT = 80  # characters of the call shown on each side of a quote
BAND_CLASSES = {"elite": "good", "high": "good", "medium": "warn", "low": "bad"}

router = console_router()


def _latest(report: service.ScopeReport, metric: str, band_metric: str) -> dict[str, Any]:
    """The latest month with a value, its band and the value as shown."""
    values = report.values[metric]
    for position in range(len(values) - 1, -1, -1):
        if values[position] is not None:
            code = report.values[band_metric][position]
            name = dora.BAND_NAMES.get(int(code)) if code is not None else None
            return {"value": values[position], "month": report.months[position], "band": name}
    return {"value": None, "month": None, "band": None}


def _shown(metric: str, value: Any) -> str:
    if value is None:
        return "none"
    if metric == "change_failure_rate":
        return f"{value:.1f} %"
    if metric.endswith("_hours"):
        return f"{value:,.1f} h"
    return f"{value:,}"


def _keys(report: service.ScopeReport) -> list[dict[str, Any]]:
    """The scope's four keys: their latest value as shown, and band."""
    keys = []
    for metric, band, title, _ in KEYS:
        latest = _latest(report, metric, band)
        keys.append({"title": title, **latest, "shown": _shown(metric, latest["value"])})
    return keys


def _chart(report: service.ScopeReport, metric: str, title: str, unit: dict[str, str]) -> dict[str, Any]:
    values = report.values[metric]
    shown = [value / 100 if value is not None and metric == "change_failure_rate" else value for value in values]
    return {
        "title": f"{title}, {report.scope.name}, by month",
        "x": [month.isoformat() for month in report.months],
        "xLabel": "Month",
        "series": [{"label": title, "values": shown}],
        "format": unit,
    }


@router.get("/engineering", name="console.engineering")
async def engineering_page(
    request: Request,
    principal: EngineeringReadPage,
    session: DbSession,
    scope: Annotated[str, Query(max_length=210)] = "",
) -> Response:
    reports = await service.dora_report(session, org_id=principal.org_id, months=MONTHS)
    chosen = next((report for report in reports if report.scope.dims == scope), reports[0] if reports else None)
    overview = [{"report": report, "keys": _keys(report)} for report in reports]
    context: dict[str, Any] = {"overview": overview, "chosen": chosen, "band_classes": BAND_CLASSES}
    if chosen is not None:
        context["cards"] = [
            {**key, "id": metric, "chart": _chart(chosen, metric, title, unit)}
            for key, (metric, _, title, unit) in zip(_keys(chosen), KEYS, strict=True)
        ]
        context["flow"] = [
            {"title": title, "values": [_shown(metric, value) for value in chosen.values[metric]]}
            for metric, title in FLOW
        ]
    return render(request, "devbizops/dashboard.html", context)


@router.get("/engineering/work-items", name="console.work_items")
async def work_items_page(
    request: Request,
    principal: EngineeringReadPage,
    session: DbSession,
    page: Page,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    found, total = await links_service.list_work_items(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit, query=q or None
    )
    return render(request, "devbizops/work_items.html", {"items": found, "total": total, "page": page, "q": q or ""})


@router.get("/engineering/work-items/{work_item_id}", name="console.work_item")
async def work_item_page(
    request: Request, principal: EngineeringReadPage, session: DbSession, work_item_id: uuid.UUID
) -> Response:
    detail = await links_service.work_item_detail(session, org_id=principal.org_id, work_item_id=work_item_id)
    return render(request, "devbizops/work_item.html", {"detail": detail, "money": metrics_service.money_text})


MAX_UPLOAD = 500_000  # characters, as the API takes
DECISIONS = {"approve": "approved", "reject": "rejected"}


@router.get("/engineering/calls", name="console.calls")
async def calls_page(request: Request, principal: ProposalsReadPage, session: DbSession) -> Response:
    runs, _ = await agents_service.list_runs(session, org_id=principal.org_id, offset=0, limit=20)
    return render(
        request,
        "devbizops/calls.html",
        {"runs": runs, "may_run": principal.may_try("create", "proposals"), "values": {}, "errors": {}},
    )


@router.post("/engineering/calls", name="console.calls_submit")
async def calls_submit(request: Request, principal: ProposalsCreatePage, session: DbSession) -> Response:
    """Start a run from the pasted or uploaded call; problems are shown beside their inputs."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    upload = form.get("file")
    transcript = values.get("transcript", "")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_UPLOAD * 4 + 1)
        transcript = raw.decode("utf-8", errors="replace")
    body = {
        "transcript": transcript,
        "customer": values.get("customer") or None,
        "mode": values.get("mode") or "deterministic",
    }
    errors: dict[str, str] = {}
    try:
        given = TechTranslatorRunIn.model_validate(body)
        run = await agents_service.start_tech_translator(
            session, principal=principal, given=given.model_dump(mode="json", exclude_none=True)
        )
    except ValidationError as exc:
        for problem in exc.errors():
            errors.setdefault(str(problem["loc"][0]) if problem["loc"] else "form", problem["msg"])
    except AppError as exc:
        errors["form"] = exc.message
    if errors:
        runs, _ = await agents_service.list_runs(session, org_id=principal.org_id, offset=0, limit=20)
        return render(
            request,
            "devbizops/calls.html",
            {"runs": runs, "may_run": True, "values": values, "errors": errors},
            status=422,
        )
    return redirect(request, f"/app/engineering/runs/{run.id}")


def _highlighted(transcript: str, quote: dict[str, Any]) -> dict[str, str]:
    """The words around a quote, and the quote, to show it in place."""
    start, end = int(quote["start"]), int(quote["end"])
    return {
        "before": ("…" if start > CONTEXT else "") + transcript[max(0, start - CONTEXT) : start],
        "quote": transcript[start:end],
        "after": transcript[end : end + CONTEXT] + ("…" if end + CONTEXT < len(transcript) else ""),
    }


@router.get("/engineering/runs/{run_id}", name="console.agent_run")
async def run_page(request: Request, principal: ProposalsReadPage, session: DbSession, run_id: uuid.UUID) -> Response:
    run, steps, proposals = await agents_service.run_details(session, org_id=principal.org_id, run_id=run_id)
    transcript = str(run.input.get("transcript") or "")
    shown = [
        {
            "proposal": proposal,
            "requirement": proposal.payload,
            "evidence": [_highlighted(transcript, quote) for quote in proposal.payload.get("evidence") or []],
        }
        for proposal in proposals
    ]
    return render(
        request,
        "devbizops/run.html",
        {
            "run": run,
            "steps": steps,
            "proposals": shown,
            "trackers": await service.trackers(session, org_id=principal.org_id),
            "may_decide": principal.may_try("update", "proposals"),
            "working": run.status in ("queued", "running")
            or any(proposal.status == "approved" for proposal in proposals),
        },
    )


@router.post("/engineering/proposals/{proposal_id}/{decision}", name="console.proposal_decide")
async def decide_proposal(
    request: Request, principal: ProposalsDecidePage, session: DbSession, proposal_id: uuid.UUID, decision: str
) -> Response:
    """Approve (into the chosen tracker) or reject a proposal, as the API routes do; back to its run."""
    if decision not in DECISIONS:
        raise NotFound("No such page")
    form = await request.form()
    chosen = form.get("integration_id")
    audit_target(request, "proposal", proposal_id, decision=DECISIONS[decision])
    proposal = await agents_service.decide(
        session,
        principal=principal,
        proposal_id=proposal_id,
        approve=decision == "approve",
        integration_id=uuid.UUID(chosen) if isinstance(chosen, str) and _is_uuid(chosen) else None,
        reason=str(form.get("reason") or "") or None,
    )
    return redirect(request, f"/app/engineering/runs/{proposal.run_id}#proposal-{proposal.position}")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@router.get("/engineering/roadmap", name="console.roadmap")
async def roadmap_page(request: Request, principal: EngineeringReadPage, session: DbSession) -> Response:
    """The roadmap board: a column per target quarter, each item with its progress and the demand waiting on it."""
    views = await roadmap_service.items(session, org_id=principal.org_id)
    quarters: dict[str, list[roadmap_service.ItemView]] = {}
    for view in sorted(views, key=lambda view: (view.item.target_quarter, view.item.rank)):
        quarters.setdefault(view.item.target_quarter, []).append(view)
    return render(
        request,
        "devbizops/roadmap.html",
        {
            "quarters": quarters,
            "money": metrics_service.money_text,
            "may_run": principal.may_try("create", "proposals"),
        },
    )


@router.post("/engineering/roadmap/run", name="console.roadmap_run")
async def roadmap_run(request: Request, principal: ProposalsCreatePage, session: DbSession) -> Response:
    run = await agents_service.start_roadmap(session, principal=principal)
    return redirect(request, f"/app/engineering/runs/{run.id}")


@router.post("/engineering/investor-dashboard/run", name="console.investor_dashboard_run")
async def investor_dashboard_run(
    request: Request, principal: InvestorDashboardsCreatePage, session: DbSession
) -> Response:
    form = await request.form()
    mode = "llm" if form.get("mode") == "llm" else "deterministic"
    run = await agents_service.start_investor_dashboard(session, principal=principal, mode=mode)
    audit_target(request, "agent_run", run.id)
    return redirect(request, f"/app/engineering/runs/{run.id}")
