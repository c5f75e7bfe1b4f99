"""Coach routes (seed 000 "AI-powered insights"): the month's insights and answers to questions, from the facts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic.alias_generators import to_camel

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope
from northstar.reports import service
from northstar.reports.auth import CoachRead, CoachSettingsRead, CoachSettingsUpdate
from northstar.reports.facts import Fact
from northstar.reports.schemas import (
    AnswerOut,
    CoachSettingsChange,
    CoachSettingsOut,
    FactOut,
    InsightsOut,
    Question,
    StepOut,
)

router = APIRouter(tags=["coach"], responses=ERROR_RESPONSES)

MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM; default this month")]


def _fact(fact: Fact) -> FactOut:
    return FactOut(id=fact.id, text=fact.text, data={to_camel(name): value for name, value in fact.data.items()})


@router.get("/coach/insights", response_model=Envelope[InsightsOut], name="coach.insights")
async def get_insights(
    request: Request, principal: CoachRead, session: DbSession, month: MonthQuery = None
) -> Envelope[InsightsOut]:
    """The month's facts, what the playbook proposes (each step citing its facts) and the narrative telling both."""
    chosen = dt.date.fromisoformat(f"{month}-01") if month else None
    found = await service.insights(session, org_id=principal.org_id, month=chosen, model=request.app.state.llm)
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
    reply = await service.ask(session, org_id=principal.org_id, question=body.question, model=request.app.state.llm)
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
    found = await service.coach_settings(session, org_id=principal.org_id)
    return Envelope(data=CoachSettingsOut.model_validate(found))


@router.patch("/coach/settings", response_model=Envelope[CoachSettingsOut], name="coach.settings.update")
async def update_settings(
    body: CoachSettingsChange, request: Request, principal: CoachSettingsUpdate, session: DbSession
) -> Envelope[CoachSettingsOut]:
    """The coach's voice: its tone and how long its narratives are."""
    changes = body.model_dump(exclude_none=True)
    found = await service.update_coach_settings(session, org_id=principal.org_id, changes=changes)
    audit_target(request, "coach_settings", principal.org_id, **changes)
    return Envelope(data=CoachSettingsOut.model_validate(found))
