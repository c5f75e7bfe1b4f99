"""DevBizOps' agents: runs queued as jobs, each step recorded and traced, and proposals that change nothing outside
until someone who may approve them does.

A run (``agent_runs``) keeps what it was given, what it answered, which reading it used (``generator``), the tokens
and cost of its language model calls and its trace id; each step (``agent_steps``) what it found and its span id.
Runs can be replayed: a new run with the same input. InvestorDashboardAgent's run writes the investor dashboard
(``service.investors``) and announces ``DASHBOARD_WRITTEN``; the reports module publishes it as a report and ends
the run (``dashboard_published``). It proposes nothing: sharing the dashboard is a founder's own act.
TechTranslator's run proposes, for each requirement it reads, a new ticket, or adding to the existing work item it
repeats. A founder or admin approves a proposal (audited), and the integrations module, reacting to ``APPROVED``,
files the ticket in Jira or Linear (or comments on the existing one) and reports back with ``applied`` or
``failed``; the ticket is linked to the run's deal or customer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations
from northstar.core import documents, numbers
from northstar.core.db import fetch_page, get_in_org
from northstar.core.http import AppError, Unprocessable
from northstar.core.llm import LanguageModel, Spent
from northstar.core.permissions import Principal
from northstar.core.queue import announce, enqueue_named
from northstar.devbizops import investors, roadmap, translator
from northstar.devbizops import service as engineering
from northstar.devbizops.inputs import Ticket
from northstar.devbizops.models import AgentRun, AgentStep, Link, Proposal, WorkItem
from northstar.devbizops.service import investors as investors_service
from northstar.devbizops.service import links
from northstar.devbizops.service import roadmap as roadmap_service
from northstar.metrics import service as metrics_service
from northstar.metrics import statements

RUN_TASK = "devbizops.agent_run"
APPROVED = "devbizops.proposals_approved"  # announced when proposals wait to be applied
TECH_TRANSLATOR = "tech_translator"
ROADMAP = "roadmap"
INVESTOR_DASHBOARD = "investor_dashboard"
DASHBOARD_WRITTEN = "devbizops.dashboard_written"  # announced when a dashboard waits to be published
ROADMAP_KINDS = ("roadmap_status", "roadmap_slip", "roadmap_rank")


class NotProposed(AppError):
    status, code = 409, "proposal_decided"


# -- runs ----------------------------------------------------------------------------------------------------------


async def start_tech_translator(
    session: AsyncSession, *, principal: Principal, given: dict[str, Any], replay_of: uuid.UUID | None = None
) -> AgentRun:
    """Queue a TechTranslator run of ``given`` (the route's body: transcript, format, customer, customerSpeakers,
    mode, and the deal or customer it is for), in the caller's transaction."""
    deal, customer_id = given.get("deal"), given.get("customer_id")
    await links.check_business(
        session,
        org_id=principal.org_id,
        customer_id=uuid.UUID(str(customer_id)) if customer_id is not None else None,
        deal=(uuid.UUID(str(deal["integration_id"])), str(deal["external_id"])) if deal is not None else None,
    )
    mode = str(given.get("mode") or "deterministic")
    return await _queued(
        session, principal=principal, agent=TECH_TRANSLATOR, mode=mode, given=given, replay_of=replay_of
    )


async def start_roadmap(session: AsyncSession, *, principal: Principal, replay_of: uuid.UUID | None = None) -> AgentRun:
    """Queue a RoadmapAgent run over the org's roadmap as it is when the run starts."""
    return await _queued(
        session, principal=principal, agent=ROADMAP, mode="deterministic", given={}, replay_of=replay_of
    )


async def start_investor_dashboard(
    session: AsyncSession, *, principal: Principal, mode: str, replay_of: uuid.UUID | None = None
) -> AgentRun:
    """Queue an InvestorDashboardAgent run over the org's data as it is when the run starts."""
    return await _queued(
        session, principal=principal, agent=INVESTOR_DASHBOARD, mode=mode, given={}, replay_of=replay_of
    )


async def _queued(
    session: AsyncSession,
    *,
    principal: Principal,
    agent: str,
    mode: str,
    given: dict[str, Any],
    replay_of: uuid.UUID | None,
) -> AgentRun:
    run = AgentRun(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        agent=agent,
        status="queued",
        mode=mode,
        input=given,
        replay_of=replay_of,
        created_by=principal.user_id,
    )
    session.add(run)
    await session.flush()
    await enqueue_named(session, RUN_TASK, org_id=principal.org_id, run_id=str(run.id))
    await session.refresh(run)
    return run


async def replay(session: AsyncSession, *, principal: Principal, run_id: uuid.UUID) -> AgentRun:
    """The same run again, with the same input, as a new run."""
    run = await get_run(session, org_id=principal.org_id, run_id=run_id)
    if run.agent == ROADMAP:
        return await start_roadmap(session, principal=principal, replay_of=run.id)
    if run.agent == INVESTOR_DASHBOARD:
        return await start_investor_dashboard(session, principal=principal, mode=run.mode, replay_of=run.id)
    return await start_tech_translator(session, principal=principal, given=dict(run.input), replay_of=run.id)


async def get_run(session: AsyncSession, *, org_id: uuid.UUID, run_id: uuid.UUID) -> AgentRun:
    return await get_in_org(session, AgentRun, run_id, org_id=org_id, missing="No such agent run")


async def list_runs(session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int) -> tuple[list[AgentRun], int]:
    query = select(AgentRun).where(AgentRun.org_id == org_id).order_by(AgentRun.created_at.desc(), AgentRun.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def run_details(
    session: AsyncSession, *, org_id: uuid.UUID, run_id: uuid.UUID
) -> tuple[AgentRun, list[AgentStep], list[Proposal]]:
    run = await get_run(session, org_id=org_id, run_id=run_id)
    steps = (
        await session.scalars(select(AgentStep).where(AgentStep.run_id == run.id).order_by(AgentStep.position))
    ).all()
    proposals = (
        await session.scalars(select(Proposal).where(Proposal.run_id == run.id).order_by(Proposal.position))
    ).all()
    return run, list(steps), list(proposals)


class _Steps:
    """A run's steps, each a span under the run's and a row with what it found."""

    def __init__(self, session: AsyncSession, run: AgentRun, tracer: trace.Tracer) -> None:
        self.session, self.run, self.tracer, self.position = session, run, tracer, 0

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[dict[str, Any]]:
        detail: dict[str, Any] = {}
        started = dt.datetime.now(dt.UTC)
        with self.tracer.start_as_current_span(f"{self.run.agent}.{name}") as span:
            yield detail
            for key, value in detail.items():
                if isinstance(value, (str, int, float, bool)):
                    span.set_attribute(f"northstar.agent.{key}", value)
            context = span.get_span_context()
        self.position += 1
        self.session.add(
            AgentStep(
                org_id=self.run.org_id,
                run_id=self.run.id,
                position=self.position,
                name=name,
                detail=detail,
                span_id=format(context.span_id, "016x") if context.is_valid else None,
                started_at=started,
                finished_at=dt.datetime.now(dt.UTC),
            )
        )


async def execute(
    session: AsyncSession, *, org_id: uuid.UUID, run_id: uuid.UUID, model: LanguageModel | None, tracer: trace.Tracer
) -> None:
    """Run a queued agent run: TechTranslator (parse the call, read it, propose tickets), RoadmapAgent (gather the
    roadmap's facts, propose status changes, slips and ranks) or InvestorDashboardAgent (gather, write and verify
    the dashboard; it is running until the reports module has published it)."""
    run = await session.scalar(
        select(AgentRun).where(AgentRun.org_id == org_id, AgentRun.id == run_id).with_for_update()
    )  # two workers given the same run take turns; the second finds it done
    if run is None or run.status not in ("queued", "running"):
        return
    run.status, run.started_at = "running", dt.datetime.now(dt.UTC)
    steps = _Steps(session, run, tracer)
    spent: list[Spent] = []
    with tracer.start_as_current_span(f"agent {run.agent}", attributes={"northstar.agent.run": str(run.id)}) as span:
        context = span.get_span_context()
        run.trace_id = format(context.trace_id, "032x") if context.is_valid else None
        try:
            if run.agent == ROADMAP:
                await _roadmap(session, run, steps)
            elif run.agent == INVESTOR_DASHBOARD:
                await _investor_dashboard(session, run, steps, model, spent)
            else:
                await _tech_translator(session, run, steps, model, spent)
            run.status = "running" if run.agent == INVESTOR_DASHBOARD else "succeeded"
        except AppError as exc:
            run.status, run.error = "failed", exc.message
            span.set_attribute("error.type", type(exc).__name__)
    run.input_tokens = sum(used.input_tokens for used in spent)
    run.output_tokens = sum(used.output_tokens for used in spent)
    run.cost_micros = sum(used.cost_micros for used in spent)
    run.finished_at = dt.datetime.now(dt.UTC)
    await session.flush()


async def _tech_translator(
    session: AsyncSession, run: AgentRun, steps: _Steps, model: LanguageModel | None, spent: list[Spent]
) -> None:
    given = run.input
    async with steps.step("parse") as detail:
        utterances = translator.parse(given["transcript"], given.get("format") or "auto")
        speakers = {utterance.speaker for utterance in utterances if utterance.speaker}
        detail |= {"utterances": len(utterances), "speakers": len(speakers), "characters": len(given["transcript"])}
    async with steps.step("read") as detail:
        found = await engineering.translate(
            session,
            org_id=run.org_id,
            transcript=given["transcript"],
            transcript_format=given.get("format") or "auto",
            customer=given.get("customer"),
            customer_speakers=given.get("customer_speakers") or (),
            model=model if run.mode == "llm" else None,
            spent=spent,
        )
        detail |= {
            "generator": found.generator,
            "requirements": len(found.requirements),
            "rejected": found.rejected,
            "checks": found.checks,
            "duplicates": len(found.duplicates),
        }
    async with steps.step("propose") as detail:
        proposals = await _propose(session, run, found.requirements, found.duplicates)
        detail |= {
            "proposals": len(proposals),
            "new_tickets": sum(proposal.kind == "create_ticket" for proposal in proposals),
        }
    run.generator = found.generator
    run.output = {
        "requirements": [
            requirement_payload(requirement, found.duplicates.get(position))
            for position, requirement in enumerate(found.requirements)
        ]
    }


async def _roadmap(session: AsyncSession, run: AgentRun, steps: _Steps) -> None:
    async with steps.step("gather") as detail:
        views = await roadmap_service.items(session, org_id=run.org_id)
        reporting = await metrics_service.reporting(session, org_id=run.org_id)
        pace = await roadmap_service.measured_pace(session, org_id=run.org_id, today=reporting.today)
        detail |= {"items": len(views), "per_week": round(float(pace), 2), "currency": reporting.currency}
    async with steps.step("propose") as detail:
        found = roadmap.propose([view.facts for view in views], today=reporting.today, pace=pace)
        for position, proposed in enumerate(found, start=1):
            session.add(
                Proposal(
                    org_id=run.org_id,
                    run_id=run.id,
                    position=position,
                    kind=proposed.kind,
                    payload={
                        "roadmap_item_id": str(proposed.item_id),
                        "title": proposed.title,
                        "change": proposed.change,
                        "reason": proposed.reason,
                        "numbers": proposed.numbers,
                    },
                    status="proposed",
                )
            )
        detail |= {"proposals": len(found)}
    run.generator = "deterministic"
    run.output = {"proposals": len(found)}


async def _investor_dashboard(
    session: AsyncSession, run: AgentRun, steps: _Steps, model: LanguageModel | None, spent: list[Spent]
) -> None:
    async with steps.step("gather") as detail:
        org = await organizations.get_organization(session, org_id=run.org_id)
        dashboard = await investors_service.build(session, org_id=run.org_id, org_name=org.name)
        detail |= {
            "facts": len(dashboard.facts),
            "risks": len(dashboard.risks),
            "charts": len(dashboard.charts),
            "month": dashboard.month.isoformat() if dashboard.month else "",
        }
    async with steps.step("write") as detail:
        written = await investors_service.write(
            session, org_id=run.org_id, dashboard=dashboard, model=model if run.mode == "llm" else None, spent=spent
        )
        detail |= {"generator": written.generator, "paragraphs": len(written.paragraphs), "checks": written.checks}
    async with steps.step("verify") as detail:
        document = investors_service.document(written, org_name=org.name)
        said = "\n".join(document.text())
        stray = numbers.unsupported(said, [fact.text for fact in dashboard.facts])
        detail |= {"numbers": len(numbers.tokens(said)), "unsupported": stray}
        if stray:
            raise Unprocessable(f"The dashboard states numbers no fact does: {', '.join(stray)}")
    run.generator = written.generator
    run.output = {
        "title": dashboard.title,
        "month": dashboard.month.isoformat() if dashboard.month else None,
        "risks": [risk.fact.text for risk in dashboard.risks],
        "charts": [investors.chart_data(chart) for chart in dashboard.charts],
        "document": documents.as_json(document),
        "narrative": "\n\n".join(written.paragraphs),
        "facts": [{"id": fact.id, "text": fact.text, "data": fact.data} for fact in dashboard.facts],
        "checks": list(written.checks),
        "period": [(dashboard.month or dashboard.today.replace(day=1)).isoformat(), dashboard.today.isoformat()],
    }
    await announce(session, DASHBOARD_WRITTEN, org_id=run.org_id)


@dataclass(frozen=True)
class WrittenDashboard:
    """A dashboard written and verified, waiting to be published."""

    run_id: uuid.UUID
    created_by: uuid.UUID | None
    document: documents.Document
    narrative: str  # its paragraphs, a list's lines starting with "- "
    facts: list[statements.Fact]
    generator: str
    checks: tuple[str, ...]
    period: tuple[dt.date, dt.date]


async def claim_written_dashboards(session: AsyncSession, *, org_id: uuid.UUID) -> list[WrittenDashboard]:
    """The org's written dashboards not yet published, locked until the caller's commit (a second publisher
    skips them)."""
    runs = await session.scalars(
        select(AgentRun)
        .where(
            AgentRun.org_id == org_id,
            AgentRun.agent == INVESTOR_DASHBOARD,
            AgentRun.status == "running",
            AgentRun.output.has_key("document"),
        )
        .order_by(AgentRun.created_at)
        .with_for_update(skip_locked=True)
    )
    found = []
    for run in runs.all():
        output = run.output or {}
        found.append(
            WrittenDashboard(
                run_id=run.id,
                created_by=run.created_by,
                document=documents.from_json(output["document"]),
                narrative=output["narrative"],
                facts=[statements.Fact(fact["id"], fact["text"], fact["data"]) for fact in output["facts"]],
                generator=run.generator or "deterministic",
                checks=tuple(output["checks"]),
                period=(dt.date.fromisoformat(output["period"][0]), dt.date.fromisoformat(output["period"][1])),
            )
        )
    return found


async def dashboard_published(
    session: AsyncSession, *, org_id: uuid.UUID, run_id: uuid.UUID, report_id: uuid.UUID | None, error: str | None
) -> None:
    """The reports module published the run's dashboard as ``report_id`` (or could not, for ``error``): the run's
    last step, and its end."""
    run = await get_run(session, org_id=org_id, run_id=run_id)
    position = await session.scalar(select(func.max(AgentStep.position)).where(AgentStep.run_id == run.id))
    now = dt.datetime.now(dt.UTC)
    detail = {"report_id": str(report_id)} if report_id else {"error": error}
    session.add(
        AgentStep(
            org_id=org_id,
            run_id=run.id,
            position=(position or 0) + 1,
            name="publish",
            detail=detail,
            started_at=run.finished_at or now,
            finished_at=now,
        )
    )
    output = {key: value for key, value in (run.output or {}).items() if key not in ("document", "narrative")}
    run.output = {**output, "report_id": str(report_id)} if report_id else output
    run.status, run.error, run.finished_at = ("succeeded", None, now) if report_id else ("failed", error, now)
    await session.flush()


async def run_of_report(session: AsyncSession, *, org_id: uuid.UUID, report_id: uuid.UUID) -> AgentRun | None:
    """The InvestorDashboardAgent run that published ``report_id`` (its output keeps the charts' data)."""
    query = select(AgentRun).where(
        AgentRun.org_id == org_id,
        AgentRun.agent == INVESTOR_DASHBOARD,
        AgentRun.output["report_id"].astext == str(report_id),
    )
    return await session.scalar(query.limit(1))


def requirement_payload(requirement: translator.Requirement, duplicate: translator.Duplicate | None) -> dict[str, Any]:
    return {
        "title": requirement.title,
        "user_story": requirement.user_story,
        "acceptance_criteria": requirement.acceptance_criteria,
        "priority": requirement.priority,
        "components": requirement.components,
        "requested_by": requirement.requested_by,
        "evidence": [
            {"text": quote.text, "start": quote.start, "end": quote.end, "speaker": quote.speaker}
            for quote in requirement.quotes
        ],
        "duplicate_of": {"key": duplicate.key, "similarity": duplicate.similarity} if duplicate else None,
    }


async def _propose(
    session: AsyncSession,
    run: AgentRun,
    requirements: Sequence[translator.Requirement],
    duplicates: dict[int, translator.Duplicate],
) -> list[Proposal]:
    keys = [duplicate.key for duplicate in duplicates.values()]
    items = dict(
        (await session.execute(select(WorkItem.key, WorkItem.id).where(WorkItem.key.in_(keys)))).tuples().all()
    )
    proposals = []
    for position, requirement in enumerate(requirements):
        duplicate = duplicates.get(position)
        existing = items.get(duplicate.key) if duplicate else None
        proposal = Proposal(
            org_id=run.org_id,
            run_id=run.id,
            position=position + 1,
            kind="add_to_work_item" if existing else "create_ticket",
            payload=requirement_payload(requirement, duplicate),
            status="proposed",
            work_item_id=existing,
        )
        session.add(proposal)
        proposals.append(proposal)
    return proposals


# -- approvals -----------------------------------------------------------------------------------------------------


async def get_proposal(session: AsyncSession, *, org_id: uuid.UUID, proposal_id: uuid.UUID) -> Proposal:
    return await get_in_org(session, Proposal, proposal_id, org_id=org_id, missing="No such proposal")


async def decide(
    session: AsyncSession,
    *,
    principal: Principal,
    proposal_id: uuid.UUID,
    approve: bool,
    integration_id: uuid.UUID | None = None,
    reason: str | None = None,
) -> Proposal:
    """Approve a proposal (a new ticket needs the tracker integration to file it in) or reject it; once."""
    proposal = await get_proposal(session, org_id=principal.org_id, proposal_id=proposal_id)
    if proposal.status != "proposed":
        raise NotProposed(f"The proposal was already {proposal.status}")
    if approve and proposal.kind == "create_ticket" and integration_id is None:
        raise Unprocessable(
            "Choose the Jira or Linear integration to file the ticket in",
            details=[{"field": "body.integrationId", "message": "required for a new ticket", "type": "missing"}],
        )
    if approve and proposal.kind == "create_ticket":
        names = {tracker.integration_id for tracker in await engineering.trackers(session, org_id=principal.org_id)}
        if integration_id not in names:
            raise Unprocessable(
                "That integration does not take tickets: choose a connected Jira or Linear integration",
                details=[
                    {
                        "field": "body.integrationId",
                        "message": "not a Jira or Linear integration",
                        "type": "value_error",
                    }
                ],
            )
    proposal.status = "approved" if approve else "rejected"
    proposal.decided_by, proposal.decided_at, proposal.reason = principal.user_id, dt.datetime.now(dt.UTC), reason
    if approve and proposal.kind in ROADMAP_KINDS:  # the roadmap is ours: applied at once
        item_id = uuid.UUID(proposal.payload["roadmap_item_id"])
        await roadmap_service.apply(
            session, org_id=principal.org_id, item_id=item_id, change=proposal.payload["change"]
        )
        proposal.status = "applied"
    elif approve:
        proposal.target_integration_id = integration_id
        await session.flush()
        await announce(session, APPROVED, org_id=principal.org_id)
    await session.flush()
    await session.refresh(proposal)
    return proposal


@dataclass(frozen=True)
class Approved:
    """An approved proposal as a tracker connector applies it."""

    proposal_id: uuid.UUID
    integration_id: uuid.UUID | None  # where to file a new ticket; for an existing one, its own
    ticket: Ticket
    existing: tuple[str, str] | None  # (source id, key) of the work item to add to


async def claim_approved(session: AsyncSession, *, org_id: uuid.UUID) -> list[Approved]:
    """The org's approved proposals, oldest first, marked ``filing`` for the caller to file: it commits that before
    any tracker hears of them, so a proposal is never filed twice, even by an applier that crashes after the tracker
    accepted (the proposal then stays ``filing``, for someone to check in the tracker). Appliers of one org take
    turns (a lock until the caller's commit)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('devbizops.proposals:' || :org, 0))"), {"org": str(org_id)}
    )
    proposals = (
        await session.scalars(
            select(Proposal)
            .where(Proposal.org_id == org_id, Proposal.status == "approved")
            .order_by(Proposal.decided_at, Proposal.id)
        )
    ).all()
    found = []
    for proposal in proposals:
        proposal.status = "filing"
        item = await session.get(WorkItem, proposal.work_item_id) if proposal.work_item_id else None
        found.append(
            Approved(
                proposal_id=proposal.id,
                integration_id=item.integration_id if item else proposal.target_integration_id,
                ticket=ticket_of(proposal.payload),
                existing=(item.external_id, item.key) if item else None,
            )
        )
    await session.flush()
    return found


def ticket_of(payload: dict[str, Any]) -> Ticket:
    """A requirement as a tracker ticket: its story, criteria and verbatim evidence."""
    parts = [
        payload["user_story"],
        "Acceptance criteria:\n" + "\n".join(f"- {item}" for item in payload["acceptance_criteria"]),
    ]
    quotes = "\n".join(
        f'- "{quote["text"]}"' + (f" ({quote['speaker']})" if quote.get("speaker") else "")
        for quote in payload["evidence"]
    )
    parts.append(f"Evidence from the call:\n{quotes}")
    if payload.get("requested_by"):
        parts.append(f"Requested by {payload['requested_by']}.")
    return Ticket(
        title=payload["title"],
        description="\n\n".join(parts),
        labels=tuple(component.replace(" ", "-") for component in payload.get("components") or ()),
        priority=payload.get("priority") or "medium",
    )


async def applied(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    proposal_id: uuid.UUID,
    integration_id: uuid.UUID,
    external_id: str,
    key: str,
    url: str | None,
) -> None:
    """The ticket is filed (or the comment added): the proposal is done, and the work item is linked to the run's
    deal or customer."""
    proposal = await get_proposal(session, org_id=org_id, proposal_id=proposal_id)
    item = await session.scalar(
        select(WorkItem).where(WorkItem.integration_id == integration_id, WorkItem.external_id == external_id)
    )
    proposal.status, proposal.external_key, proposal.external_url, proposal.error = "applied", key, url, None
    if item is not None:
        proposal.work_item_id = item.id
        run = await get_run(session, org_id=org_id, run_id=proposal.run_id)
        await _link(session, run, item.id)
    await session.flush()


async def _link(session: AsyncSession, run: AgentRun, work_item_id: uuid.UUID) -> None:
    deal, customer_id = run.input.get("deal"), run.input.get("customer_id")
    if deal is None and customer_id is None:
        return
    await session.execute(
        pg_insert(Link)
        .values(
            org_id=run.org_id,
            work_item_id=work_item_id,
            customer_id=uuid.UUID(str(customer_id)) if customer_id and not deal else None,
            deal_integration_id=uuid.UUID(str(deal["integration_id"])) if deal else None,
            deal_external_id=str(deal["external_id"]) if deal else None,
            source="agent",
            evidence=f"TechTranslator run {run.id}",
            created_by=run.created_by,
        )
        .on_conflict_do_nothing()
    )


async def failed(session: AsyncSession, *, org_id: uuid.UUID, proposal_id: uuid.UUID, error: str) -> None:
    proposal = await get_proposal(session, org_id=org_id, proposal_id=proposal_id)
    proposal.status, proposal.error = "failed", error[:2000]
    await session.flush()
