"""The coach: a month's insights (fact sheet, playbook, narrative) and answers to questions, in the org's voice.

Every text is built from the fact sheet (``facts``). The deterministic writer and the intent matcher are the
default and need nothing outside the platform. With a language model configured, it writes the text from the same
facts; a text with a number no fact states is sent back once with those numbers named, and if the second text
fails too (or the model is unavailable), the deterministic text is used. Either way the numbers are the facts'."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.llm import FACTS_ONLY, LanguageModel, checked_answer
from northstar.metrics import service as metrics_service
from northstar.metrics.statements import Fact, month_name
from northstar.reports import coach, facts, playbook, writer
from northstar.reports.facts import FactSheet
from northstar.reports.models import CoachSettings

DETERMINISTIC = "deterministic"
WEEK_DAYS = 7
VOICE = {
    "upbeat": "upbeat and direct, like a coach who believes in the founder; never gushing",
    "neutral": "plain and direct, like an analyst's note",
}
LENGTH = {
    "short": "two or three sentences and the single most important next step",
    "standard": "four short paragraphs: the headline, the movements and the customers behind them, goals, three steps",
    "detailed": "every fact worth telling, then up to five next steps",
}
RULES = f"{FACTS_ONLY} Name customers as the facts do. No headings, no markdown."


class NarrativeDraft(BaseModel):
    """What a language model writes for a month."""

    title: str = Field(min_length=3, max_length=120)
    paragraphs: list[str] = Field(min_length=1, max_length=8)


class AnswerDraft(BaseModel):
    """What a language model answers to a question, and the facts it rests on."""

    answer: str = Field(min_length=1, max_length=3000)
    cites: list[str] = Field(max_length=20, description="ids of the facts the answer rests on")


@dataclass(frozen=True)
class Insights:
    sheet: FactSheet
    steps: list[playbook.Step]
    narrative: writer.Narrative
    generator: str
    checks: tuple[str, ...] = ()  # what was refused on the way, in words


@dataclass(frozen=True)
class Reply:
    answer: coach.Answer
    citations: list[Fact]
    generator: str
    checks: tuple[str, ...] = ()


def _facts_prompt(stated: list[Fact], extra: str) -> str:
    lines = "\n".join(f"- [{fact.id}] {fact.text}" for fact in stated)
    return f"Facts:\n{lines}\n\n{extra}"


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


@dataclass(frozen=True)
class Told:
    """A narrative and who wrote it: the model's when it passed the number check, else the deterministic one."""

    narrative: writer.Narrative
    generator: str
    checks: tuple[str, ...]


async def narrate(
    session: AsyncSession,
    model: LanguageModel | None,
    *,
    org_id: uuid.UUID,
    stated: list[Fact],
    private_terms: tuple[str, ...],
    deterministic: writer.Narrative,
    voice: CoachSettings,
    brief: str,
) -> Told:
    """The narrative of ``stated`` facts by the model (told what to write by ``brief``), or ``deterministic``."""
    if model is None:
        return Told(deterministic, DETERMINISTIC, ())
    draft = await checked_answer(
        model,
        session,
        org_id=org_id,
        purpose="coach.narrative",
        instructions=f"You are a growth coach writing for a founder. Voice: {VOICE[voice.tone]}. "
        f"Length: {LENGTH[voice.length]}. {RULES}",
        prompt=_facts_prompt(stated, brief),
        schema=NarrativeDraft,
        facts=[fact.text for fact in stated],
        text_of=lambda draft: "\n\n".join(draft.paragraphs),
        private_terms=private_terms,
    )
    if draft.value is None:
        return Told(deterministic, DETERMINISTIC, draft.checks)
    written = writer.Narrative(draft.value.title, tuple(draft.value.paragraphs), deterministic.cites)
    return Told(written, f"llm:{model.config.model}", draft.checks)


def steps_brief(steps: list[playbook.Step], shown: int, what: str) -> str:
    """What the model is asked to write: the playbook's steps to tell, most pressing first, and the text."""
    listed = "\n".join(f"- {step.title}. {step.action}" for step in steps[:shown])
    return f"Next steps, most pressing first:\n{listed}\n\nWrite {what}." if listed else f"Write {what}."


async def insights(
    session: AsyncSession, *, org_id: uuid.UUID, month: dt.date | None, model: LanguageModel | None = None
) -> Insights:
    """The month's facts, the playbook's next steps and the narrative telling them (default: this month)."""
    sheet = await facts.build(session, org_id=org_id, month=month)
    steps = playbook.next_steps(sheet)
    voice = await coach_settings(session, org_id=org_id)
    told = await narrate(
        session,
        model,
        org_id=org_id,
        stated=list(sheet.facts),
        private_terms=sheet.customer_names,
        deterministic=writer.write(sheet, steps, tone=voice.tone, length=voice.length),
        voice=voice,
        brief=steps_brief(steps, writer.STEPS_SHOWN[voice.length], f"the review of {month_name(sheet.month)}"),
    )
    return Insights(sheet, steps, told.narrative, told.generator, told.checks)


async def ask(session: AsyncSession, *, org_id: uuid.UUID, question: str, model: LanguageModel | None = None) -> Reply:
    """An answer from the facts, citing them: the month the question names (default: this month)."""
    today = await metrics_service.org_today(session, org_id=org_id)
    intent = coach.intent_of(question)
    names: tuple[str, ...] = ()
    if intent == "since_last_week":
        recent = await metrics_service.range_facts(
            session, org_id=org_id, start=today - dt.timedelta(days=WEEK_DAYS - 1), end=today
        )
        answer, stated = coach.since_last_week(recent)
        names = tuple(sorted({name for movement in recent.top_movements if (name := movement.name)}))
    else:
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
        stated, names = list(sheet.facts), sheet.customer_names
    cited = [fact for fact in stated if fact.id in answer.cites]
    if model is None:
        return Reply(answer, cited, DETERMINISTIC)
    draft = await checked_answer(
        model,
        session,
        org_id=org_id,
        purpose="coach.ask",
        instructions=f"You are a growth coach answering a founder's question in a few sentences. {RULES} "
        "Cite the ids of the facts the answer rests on.",
        prompt=_facts_prompt(stated, f"Question: {question}"),
        schema=AnswerDraft,
        facts=[fact.text for fact in stated],
        text_of=lambda draft: draft.answer,
        private_terms=names,
    )
    if draft.value is None:
        return Reply(answer, cited, DETERMINISTIC, draft.checks)
    by_id = {fact.id: fact for fact in stated}
    chosen = [by_id[fact_id] for fact_id in dict.fromkeys(draft.value.cites) if fact_id in by_id] or cited
    told = coach.Answer(answer.intent, draft.value.answer, tuple(fact.id for fact in chosen), answer.month)
    return Reply(told, chosen, f"llm:{model.config.model}", draft.checks)
