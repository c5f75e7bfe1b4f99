"""DevBizOps routes: TechTranslator's reading of a call, agent runs (with their steps and proposals) and the
decisions on proposals."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from pydantic.alias_generators import to_camel

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.devbizops import service
from northstar.devbizops.auth import (
    EngineeringCreate,
    ProposalsCreate,
    ProposalsDecide,
    ProposalsRead,
)
from northstar.devbizops.models import AgentRun, Proposal
from northstar.devbizops.schemas import (
    AgentRunDetailOut,
    AgentRunOut,
    AgentStepOut,
    ApproveIn,
    DuplicateOut,
    ProposalOut,
    QuoteOut,
    RejectIn,
    RequirementOut,
    TechTranslatorRunIn,
    TranslateIn,
    TranslationOut,
)
from northstar.devbizops.service import agents as agents_service

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)


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


def run_out(run: AgentRun) -> AgentRunOut:
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
    return Envelope(data=run_out(run))


@router.get("/devbizops/agents/runs", response_model=PageEnvelope[AgentRunOut], name="devbizops.agent_runs")
async def list_agent_runs(principal: ProposalsRead, session: DbSession, page: Page) -> PageEnvelope[AgentRunOut]:
    found, total = await agents_service.list_runs(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[run_out(run) for run in found], meta=page.meta(total))


@router.get("/devbizops/agents/runs/{run_id}", response_model=Envelope[AgentRunDetailOut], name="devbizops.agent_run")
async def get_agent_run(
    principal: ProposalsRead, session: DbSession, run_id: Annotated[uuid.UUID, Path()]
) -> Envelope[AgentRunDetailOut]:
    """A run with its input, output, every step (what it found, its span) and its proposals."""
    run, steps, proposals = await agents_service.run_details(session, org_id=principal.org_id, run_id=run_id)
    return Envelope(
        data=AgentRunDetailOut.model_validate(
            {
                **run_out(run).model_dump(),
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
    return Envelope(data=run_out(run))


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
