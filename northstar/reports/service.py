"""The coach: a month's insights (fact sheet, playbook, narrative) and answers to questions, in the org's voice.

Every text is built from the fact sheet (``facts``); the deterministic writer and the intent matcher are the
default and need nothing outside the platform."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import service as metrics_service
from northstar.reports import coach, facts, playbook, writer
from northstar.reports.facts import Fact, FactSheet
from northstar.reports.models import CoachSettings

DETERMINISTIC = "deterministic"
WEEK_DAYS = 7


@dataclass(frozen=True)
class Insights:
    sheet: FactSheet
    steps: list[playbook.Step]
    narrative: writer.Narrative
    generator: str


@dataclass(frozen=True)
class Reply:
    answer: coach.Answer
    citations: list[Fact]
    generator: str


async def coach_settings(session: AsyncSession, *, org_id: uuid.UUID) -> CoachSettings:
    """The org's coaching voice (the defaults until it picks one)."""
    found = await session.get(CoachSettings, org_id)
    return found or CoachSettings(org_id=org_id, tone="upbeat", length="standard")


async def update_coach_settings(session: AsyncSession, *, org_id: uuid.UUID, changes: dict[str, Any]) -> CoachSettings:
    found = await session.get(CoachSettings, org_id)
    if found is None:
        found = CoachSettings(org_id=org_id, tone="upbeat", length="standard")
        session.add(found)
    for name, value in changes.items():
        setattr(found, name, value)
    await session.flush()
    await session.refresh(found)
    return found


async def insights(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date | None) -> Insights:
    """The month's facts, the playbook's next steps and the narrative telling them (default: this month)."""
    sheet = await facts.build(session, org_id=org_id, month=month)
    steps = playbook.next_steps(sheet)
    voice = await coach_settings(session, org_id=org_id)
    narrative = writer.write(sheet, steps, tone=voice.tone, length=voice.length)  # type: ignore[arg-type]
    return Insights(sheet=sheet, steps=steps, narrative=narrative, generator=DETERMINISTIC)


async def ask(session: AsyncSession, *, org_id: uuid.UUID, question: str) -> Reply:
    """An answer from the facts, citing them: the month the question names (default: this month)."""
    today = await metrics_service.org_today(session, org_id=org_id)
    intent = coach.intent_of(question)
    if intent == "since_last_week":
        recent = await metrics_service.recent_facts(session, org_id=org_id, days=WEEK_DAYS)
        answer, stated = coach.since_last_week(recent)
        return Reply(answer, [fact for fact in stated if fact.id in answer.cites], DETERMINISTIC)
    sheet = await facts.build(session, org_id=org_id, month=coach.month_of(question, today))
    match intent:
        case "why_changed":
            answer = coach.why_changed(question, sheet)
        case "top_customers":
            answer = coach.top_customers(question, sheet)
        case "goal_outlook":
            answer = coach.goal_outlook(question, sheet)
        case _:
            answer = coach.overview(sheet)
    cited = [fact for fact in (sheet.get(fact_id) for fact_id in answer.cites) if fact is not None]
    return Reply(answer, cited, DETERMINISTIC)
