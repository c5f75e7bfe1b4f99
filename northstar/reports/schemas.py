"""The coach's request and response shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, RequestModel

Tone = Literal["upbeat", "neutral"]
Length = Literal["short", "standard", "detailed"]


class CoachSettingsOut(CamelModel):
    tone: Tone
    length: Length


class CoachSettingsChange(RequestModel):
    tone: Tone | None = None
    length: Length | None = Field(None, description="how many sections a narrative tells")


class FactOut(CamelModel):
    id: str = Field(description="what texts cite")
    text: str
    data: dict[str, Any]


class StepOut(CamelModel):
    rule: str = Field(description="the playbook rule that proposed it")
    title: str
    action: str
    cites: list[str] = Field(description="the ids of the facts that made the rule fire")


class InsightsOut(CamelModel):
    month: dt.date
    generator: str = Field(description='"deterministic", or the language model that wrote the narrative')
    title: str
    narrative: str
    paragraphs: list[str]
    recommendations: list[StepOut]
    facts: list[FactOut] = Field(description="every fact the narrative may use; each of its numbers is one of these")
    checks: list[str] = Field(description="what was refused on the way: a model's text with numbers no fact states")


class Question(RequestModel):
    question: str = Field(min_length=3, max_length=500, examples=["Why did MRR drop in March?"])


class AnswerOut(CamelModel):
    intent: Literal["why_changed", "top_customers", "goal_outlook", "since_last_week", "overview"]
    answer: str
    month: dt.date | None
    generator: str
    citations: list[FactOut]
    checks: list[str]
