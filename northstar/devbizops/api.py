"""DevBizOps routes: the DORA and flow report per scope, repositories with their teams, and work items with their
links to customers and deals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from pydantic.alias_generators import to_camel

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.devbizops import dora, service
from northstar.devbizops.auth import (
    EngineeringCreate,
    EngineeringDelete,
    EngineeringRead,
    EngineeringUpdate,
    ProposalsCreate,
    ProposalsDecide,
    ProposalsRead,
)
from northstar.devbizops.models import AgentRun, Link, Proposal, Repository, WorkItem
from northstar.devbizops.schemas import (
    AgentRunDetailOut,
    AgentRunOut,
    AgentStepOut,
    ApproveIn,
    DealRefIn,
    DoraMetric,
    DuplicateOut,
    ImpactOut,
    LinkedChange,
    LinkIn,
    LinkOut,
    Money,
    ProposalOut,
    QuoteOut,
    RejectIn,
    RepositoryOut,
    RepositoryUpdate,
    RequirementOut,
    RoadmapItemIn,
    RoadmapItemOut,
    RoadmapItemUpdate,
    ScopeKind,
    ScopeOut,
    TechTranslatorRunIn,
    TranslateIn,
    TranslationOut,
    WorkItemDetailOut,
    WorkItemOut,
    WorkStatus,
)
from northstar.devbizops.service import agents as agents_service
from northstar.devbizops.service import links as links_service
from northstar.devbizops.service import roadmap as roadmap_service

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)
FLOW = {
    "deployments": "deployments",
    "throughput": "throughput",
    "work_in_progress": "workInProgress",
    "reviews": "reviews",
    "review_load": "reviewLoad",
    "work_items_done": "workItemsDone",
    "coding_time_hours": "codingTimeHours",
    "pickup_time_hours": "pickupTimeHours",
    "review_time_hours": "reviewTimeHours",
    "deploy_time_hours": "deployTimeHours",
}


def _repository(repository: Repository) -> RepositoryOut:
    return RepositoryOut.model_validate(repository, from_attributes=True)


def _metric(report: service.ScopeReport, metric: str, band_metric: str) -> DoraMetric:
    """The latest month with a value, and its band."""
    values, bands = report.values[metric], report.values[band_metric]
    for position in range(len(report.months) - 1, -1, -1):
        if values[position] is not None:
            found = bands[position]
            return DoraMetric(
                value=values[position],
                band=dora.BAND_NAMES.get(int(found)) if found is not None else None,
                month=report.months[position],
                trend=values,
            )
    return DoraMetric(value=None, band=None, month=None, trend=values)


def _scope(report: service.ScopeReport) -> ScopeOut:
    flow: dict[str, list[Any]] = {name: report.values[metric] for metric, name in FLOW.items()}
    return ScopeOut(
        kind=report.scope.kind,
        name=report.scope.name,
        dims=report.scope.dims,
        months=report.months,
        deployment_frequency=_metric(report, "deployments", "deployment_frequency_band"),
        lead_time_hours=_metric(report, "lead_time_hours", "lead_time_band"),
        change_failure_rate=_metric(report, "change_failure_rate", "change_failure_band"),
        time_to_restore_hours=_metric(report, "time_to_restore_hours", "time_to_restore_band"),
        flow=flow,
    )


@router.get("/devbizops/dora", response_model=Envelope[list[ScopeOut]], name="devbizops.dora")
async def dora_report(
    principal: EngineeringRead,
    session: DbSession,
    months: Annotated[int, Query(ge=1, le=36, description="how many months, this one included")] = 12,
    scope: Annotated[ScopeKind | None, Query(description="only scopes of this kind")] = None,
) -> Envelope[list[ScopeOut]]:
    """The four DORA metrics with their performance band, and the flow metrics, per month: overall, per team and
    per repository (docs/devbizops.md)."""
    reports = await service.dora_report(session, org_id=principal.org_id, months=months, kind=scope)
    return Envelope(data=[_scope(report) for report in reports])


@router.get("/devbizops/repositories", response_model=PageEnvelope[RepositoryOut], name="devbizops.repositories")
async def list_repositories(
    principal: EngineeringRead,
    session: DbSession,
    page: Page,
    team_id: Annotated[uuid.UUID | None, Query(alias="teamId")] = None,
) -> PageEnvelope[RepositoryOut]:
    found, total = await service.list_repositories(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit, team_id=team_id
    )
    return PageEnvelope(data=[_repository(repository) for repository in found], meta=page.meta(total))


@router.get(
    "/devbizops/repositories/{repository_id}", response_model=Envelope[RepositoryOut], name="devbizops.repository"
)
async def get_repository(
    principal: EngineeringRead, session: DbSession, repository_id: Annotated[uuid.UUID, Path()]
) -> Envelope[RepositoryOut]:
    found = await service.get_repository(session, org_id=principal.org_id, repository_id=repository_id)
    return Envelope(data=_repository(found))


@router.patch(
    "/devbizops/repositories/{repository_id}",
    response_model=Envelope[RepositoryOut],
    name="devbizops.repository_update",
)
async def update_repository(
    body: RepositoryUpdate,
    request: Request,
    principal: EngineeringUpdate,
    session: DbSession,
    repository_id: Annotated[uuid.UUID, Path()],
) -> Envelope[RepositoryOut]:
    """Put the repository in a team (``teamId``, or null): its metrics are reported under the team from the next
    recompute, which this queues."""
    audit_target(request, "repository", repository_id)
    found = await service.set_repository_team(
        session, org_id=principal.org_id, repository_id=repository_id, team_id=body.team_id
    )
    return Envelope(data=_repository(found))


def _work_item(item: WorkItem, links: int) -> WorkItemOut:
    return WorkItemOut.model_validate({**_fields(item), "links": links})


def _fields(item: WorkItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in WorkItemOut.model_fields if name != "links"}


def _link(link: Link) -> LinkOut:
    deal = (
        DealRefIn(integration_id=link.deal_integration_id, external_id=link.deal_external_id)
        if link.deal_integration_id is not None and link.deal_external_id is not None
        else None
    )
    return LinkOut(
        id=link.id,
        source=link.source,
        evidence=link.evidence,
        created_at=link.created_at,
        customer_id=link.customer_id,
        deal=deal,
    )


def _detail(detail: links_service.WorkItemDetail) -> WorkItemDetailOut:
    currency = detail.currency
    customers = [
        _link(found.link).model_copy(
            update={"customer_name": found.name, "mrr": Money(amount=found.mrr, currency=currency)}
        )
        for found in detail.customers
    ]
    deals = [
        _link(found.link).model_copy(
            update={
                "deal_name": found.deal.name,
                "deal_amount": Money(amount=found.deal.amount, currency=found.deal.currency)
                if found.deal.amount is not None
                else None,
                "deal_open": not found.deal.closed,
            }
            if found.deal is not None
            else {}
        )
        for found in detail.deals
    ]
    impact = (
        ImpactOut(
            shipped_at=detail.impact.shipped_at,
            window_end=detail.impact.window_end,
            movements={
                kind: Money(amount=amount, currency=currency) for kind, amount in detail.impact.movements.items()
            },
            net=Money(amount=detail.impact.net, currency=currency),
            label=detail.impact.label,
        )
        if detail.impact is not None
        else None
    )
    return WorkItemDetailOut.model_validate(
        {
            **_fields(detail.item),
            "links": len(customers) + len(deals),
            "body": detail.item.body,
            "customers": customers,
            "deals": deals,
            "changes": [LinkedChange.model_validate(change) for change in detail.changes],
            "arr": Money(amount=detail.arr, currency=currency),
            "open_pipeline": [
                Money(amount=amount, currency=code) for code, amount in sorted(detail.open_pipeline.items())
            ],
            "impact": impact,
        }
    )


@router.get("/devbizops/work-items", response_model=PageEnvelope[WorkItemOut], name="devbizops.work_items")
async def list_work_items(
    principal: EngineeringRead,
    session: DbSession,
    page: Page,
    status_filter: Annotated[WorkStatus | None, Query(alias="status")] = None,
    q: Annotated[str | None, Query(max_length=200, description="in the key or title")] = None,
    linked: Annotated[bool | None, Query(description="only those linked (or not) to customers or deals")] = None,
) -> PageEnvelope[WorkItemOut]:
    found, total = await links_service.list_work_items(
        session,
        org_id=principal.org_id,
        offset=page.offset,
        limit=page.limit,
        status=status_filter,
        query=q,
        linked=linked,
    )
    return PageEnvelope(data=[_work_item(item, count) for item, count in found], meta=page.meta(total))


@router.get(
    "/devbizops/work-items/{work_item_id}", response_model=Envelope[WorkItemDetailOut], name="devbizops.work_item"
)
async def get_work_item(
    principal: EngineeringRead, session: DbSession, work_item_id: Annotated[uuid.UUID, Path()]
) -> Envelope[WorkItemDetailOut]:
    """A work item with its customers and deals, the changes that name it, the ARR and open pipeline waiting on it,
    and, once shipped, its linked customers' MRR movements in the 90 days after (a correlation)."""
    detail = await links_service.work_item_detail(session, org_id=principal.org_id, work_item_id=work_item_id)
    return Envelope(data=_detail(detail))


@router.post(
    "/devbizops/work-items/{work_item_id}/links",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[LinkOut],
    name="devbizops.link_create",
    dependencies=[Idempotent],
)
async def add_link(
    body: LinkIn,
    request: Request,
    principal: EngineeringCreate,
    session: DbSession,
    work_item_id: Annotated[uuid.UUID, Path()],
) -> Envelope[LinkOut]:
    """Link the work item to a customer (``customerId``) or a deal (``deal``): the customers who asked for it and
    the deals waiting on it."""
    link = await links_service.add_link(
        session,
        principal=principal,
        work_item_id=work_item_id,
        customer_id=body.customer_id,
        deal=(body.deal.integration_id, body.deal.external_id) if body.deal else None,
    )
    audit_target(request, "work_item_link", link.id, work_item=str(work_item_id))
    return Envelope(data=_link(link))


@router.delete(
    "/devbizops/work-items/{work_item_id}/links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="devbizops.link_delete",
)
async def remove_link(
    request: Request,
    principal: EngineeringDelete,
    session: DbSession,
    work_item_id: Annotated[uuid.UUID, Path()],
    link_id: Annotated[uuid.UUID, Path()],
) -> None:
    """Remove a link (members: the ones they made). A link found in a deal's notes comes back at the next
    recompute while the notes still name the work item."""
    await links_service.remove_link(session, principal=principal, work_item_id=work_item_id, link_id=link_id)
    audit_target(request, "work_item_link", link_id)


@router.post("/devbizops/translate", response_model=Envelope[TranslationOut], name="devbizops.translate")
async def translate(
    body: TranslateIn, request: Request, principal: EngineeringCreate, session: DbSession
) -> Envelope[TranslationOut]:
    """TechTranslator's reading of a sales or customer call: the technical requirements it asks for, each with its
    evidence quoted verbatim (with character offsets into the transcript as sent) and the existing work item it
    repeats, if any. ``mode: llm`` has the configured language model read it, every quote checked against the call;
    without a model, or when its reading has no verified requirement, the deterministic reading is given. Nothing is
    stored."""
    found = await service.translate(
        session,
        org_id=principal.org_id,
        transcript=body.transcript,
        transcript_format=body.format,
        customer=body.customer,
        customer_speakers=body.customer_speakers,
        model=request.app.state.llm if body.mode == "llm" else None,
    )
    requirements = []
    for position, requirement in enumerate(found.requirements):
        duplicate = found.duplicates.get(position)
        requirements.append(
            RequirementOut(
                title=requirement.title,
                user_story=requirement.user_story,
                acceptance_criteria=requirement.acceptance_criteria,
                priority=requirement.priority,
                components=requirement.components,
                requested_by=requirement.requested_by,
                evidence=[
                    QuoteOut(text=quote.text, start=quote.start, end=quote.end, speaker=quote.speaker)
                    for quote in requirement.quotes
                ],
                duplicate_of=DuplicateOut(key=duplicate.key, similarity=duplicate.similarity) if duplicate else None,
            )
        )
    checks = list(found.checks)
    if body.mode == "llm" and request.app.state.llm is None:
        checks.append("no language model is configured")
    return Envelope(
        data=TranslationOut(
            requirements=requirements, generator=found.generator, rejected=found.rejected, checks=checks
        )
    )


def _camel(value: Any) -> Any:
    """A stored document (snake_case keys, as the service keeps it) as the API's JSON shows it."""
    if isinstance(value, dict):
        return {to_camel(str(key)): _camel(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_camel(item) for item in value]
    return value


def _run(run: AgentRun) -> AgentRunOut:
    return AgentRunOut.model_validate(run, from_attributes=True)


def _proposal(proposal: Proposal) -> ProposalOut:
    fields = {name: getattr(proposal, name) for name in ProposalOut.model_fields if name != "requirement"}
    return ProposalOut.model_validate({**fields, "requirement": _camel(proposal.payload)})


@router.post(
    "/devbizops/agents/tech-translator/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[AgentRunOut],
    name="devbizops.tech_translator_run",
    dependencies=[Idempotent],
)
async def run_tech_translator(
    body: TechTranslatorRunIn, request: Request, principal: ProposalsCreate, session: DbSession
) -> Envelope[AgentRunOut]:
    """Queue a TechTranslator run: the call is read as ``/devbizops/translate`` reads it, and each requirement
    becomes a proposal (a new ticket, or adding to the work item it repeats) waiting for a founder's or admin's
    approval. Follow it at ``GET /devbizops/agents/runs/{id}``."""
    run = await agents_service.start_tech_translator(
        session, principal=principal, given=body.model_dump(mode="json", exclude_none=True)
    )
    audit_target(request, "agent_run", run.id)
    return Envelope(data=_run(run))


@router.get("/devbizops/agents/runs", response_model=PageEnvelope[AgentRunOut], name="devbizops.agent_runs")
async def list_agent_runs(principal: ProposalsRead, session: DbSession, page: Page) -> PageEnvelope[AgentRunOut]:
    found, total = await agents_service.list_runs(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[_run(run) for run in found], meta=page.meta(total))


@router.get("/devbizops/agents/runs/{run_id}", response_model=Envelope[AgentRunDetailOut], name="devbizops.agent_run")
async def get_agent_run(
    principal: ProposalsRead, session: DbSession, run_id: Annotated[uuid.UUID, Path()]
) -> Envelope[AgentRunDetailOut]:
    """A run with its input, output, every step (what it found, its span) and its proposals."""
    run, steps, proposals = await agents_service.run_details(session, org_id=principal.org_id, run_id=run_id)
    return Envelope(
        data=AgentRunDetailOut.model_validate(
            {
                **_run(run).model_dump(),
                "input": _camel(run.input),
                "output": _camel(run.output),
                "steps": [
                    AgentStepOut.model_validate(step, from_attributes=True).model_copy(
                        update={"detail": _camel(step.detail)}
                    )
                    for step in steps
                ],
                "proposals": [_proposal(proposal) for proposal in proposals],
            }
        )
    )


@router.post(
    "/devbizops/agents/runs/{run_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[AgentRunOut],
    name="devbizops.agent_run_replay",
    dependencies=[Idempotent],
)
async def replay_agent_run(
    request: Request, principal: ProposalsCreate, session: DbSession, run_id: Annotated[uuid.UUID, Path()]
) -> Envelope[AgentRunOut]:
    """Run again with the same input, as a new run (``replayOf`` names the first)."""
    run = await agents_service.replay(session, principal=principal, run_id=run_id)
    audit_target(request, "agent_run", run.id, replay_of=str(run_id))
    return Envelope(data=_run(run))


@router.post(
    "/devbizops/proposals/{proposal_id}/approve", response_model=Envelope[ProposalOut], name="devbizops.approve"
)
async def approve_proposal(
    body: ApproveIn,
    request: Request,
    principal: ProposalsDecide,
    session: DbSession,
    proposal_id: Annotated[uuid.UUID, Path()],
) -> Envelope[ProposalOut]:
    """Approve a proposal: the ticket is filed in the chosen Jira or Linear integration (or the existing work item
    gets the requirement as a comment) by a queued job, and linked to the run's deal or customer."""
    audit_target(request, "proposal", proposal_id, decision="approved")
    proposal = await agents_service.decide(
        session, principal=principal, proposal_id=proposal_id, approve=True, integration_id=body.integration_id
    )
    return Envelope(data=_proposal(proposal))


@router.post("/devbizops/proposals/{proposal_id}/reject", response_model=Envelope[ProposalOut], name="devbizops.reject")
async def reject_proposal(
    body: RejectIn,
    request: Request,
    principal: ProposalsDecide,
    session: DbSession,
    proposal_id: Annotated[uuid.UUID, Path()],
) -> Envelope[ProposalOut]:
    audit_target(request, "proposal", proposal_id, decision="rejected")
    proposal = await agents_service.decide(
        session, principal=principal, proposal_id=proposal_id, approve=False, reason=body.reason
    )
    return Envelope(data=_proposal(proposal))


def _roadmap_item(view: roadmap_service.ItemView) -> RoadmapItemOut:
    item, facts = view.item, view.facts
    return RoadmapItemOut(
        id=item.id,
        title=item.title,
        description=item.description,
        status=item.status,
        target_quarter=item.target_quarter,
        rank=item.rank,
        work_item_ids=view.work_item_ids,
        work_items=facts.total,
        done=facts.done,
        started=facts.started,
        demand=Money(amount=facts.demand, currency=view.currency),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


async def _view(session: DbSession, org_id: uuid.UUID, item_id: uuid.UUID) -> RoadmapItemOut:
    views = await roadmap_service.items(session, org_id=org_id)
    return _roadmap_item(next(view for view in views if view.item.id == item_id))


@router.get("/devbizops/roadmap", response_model=Envelope[list[RoadmapItemOut]], name="devbizops.roadmap")
async def list_roadmap(principal: EngineeringRead, session: DbSession) -> Envelope[list[RoadmapItemOut]]:
    """The roadmap by rank, each item with its progress and the revenue-weighted demand waiting on it. Changes are
    pushed on ``/events/stream`` (topic ``devbizops.roadmap``)."""
    return Envelope(
        data=[_roadmap_item(view) for view in await roadmap_service.items(session, org_id=principal.org_id)]
    )


@router.post(
    "/devbizops/roadmap",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[RoadmapItemOut],
    name="devbizops.roadmap_create",
    dependencies=[Idempotent],
)
async def create_roadmap_item(
    body: RoadmapItemIn, request: Request, principal: EngineeringUpdate, session: DbSession
) -> Envelope[RoadmapItemOut]:
    item = await roadmap_service.create_item(
        session,
        org_id=principal.org_id,
        user_id=principal.user_id,
        title=body.title,
        description=body.description,
        target_quarter=body.target_quarter,
        work_item_ids=body.work_item_ids,
    )
    audit_target(request, "roadmap_item", item.id)
    return Envelope(data=await _view(session, principal.org_id, item.id))


@router.patch("/devbizops/roadmap/{item_id}", response_model=Envelope[RoadmapItemOut], name="devbizops.roadmap_update")
async def update_roadmap_item(
    body: RoadmapItemUpdate,
    request: Request,
    principal: EngineeringUpdate,
    session: DbSession,
    item_id: Annotated[uuid.UUID, Path()],
) -> Envelope[RoadmapItemOut]:
    audit_target(request, "roadmap_item", item_id)
    item = await roadmap_service.update_item(
        session, org_id=principal.org_id, item_id=item_id, changes=body.model_dump(exclude_unset=True)
    )
    return Envelope(data=await _view(session, principal.org_id, item.id))


@router.delete("/devbizops/roadmap/{item_id}", status_code=status.HTTP_204_NO_CONTENT, name="devbizops.roadmap_delete")
async def delete_roadmap_item(
    request: Request, principal: EngineeringUpdate, session: DbSession, item_id: Annotated[uuid.UUID, Path()]
) -> None:
    await roadmap_service.delete_item(session, org_id=principal.org_id, item_id=item_id)
    audit_target(request, "roadmap_item", item_id)


@router.post(
    "/devbizops/agents/roadmap/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[AgentRunOut],
    name="devbizops.roadmap_run",
    dependencies=[Idempotent],
)
async def run_roadmap_agent(request: Request, principal: ProposalsCreate, session: DbSession) -> Envelope[AgentRunOut]:
    """Queue a RoadmapAgent run: status changes from the trackers' progress, slips when the remaining work exceeds
    the time left at the measured throughput, and ranks by revenue-weighted demand, each with its reason and
    numbers, proposed for approval."""
    run = await agents_service.start_roadmap(session, principal=principal)
    audit_target(request, "agent_run", run.id)
    return Envelope(data=_run(run))
