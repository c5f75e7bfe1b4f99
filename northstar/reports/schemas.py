"""The coach's request and response shapes."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, Day, RequestModel
from northstar.reports.models import Length, Tone

MONTH_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])$"  # YYYY-MM


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


ReportKind = Literal["weekly_digest", "monthly_report", "investor_update"]  # asked for and scheduled
StoredKind = Literal["weekly_digest", "monthly_report", "investor_update", "investor_dashboard"]
ReportFormat = Literal["html", "pdf", "mp4"]


class ReportCreate(RequestModel):
    kind: ReportKind
    period: Day | None = Field(None, description="any day of the week or month to report on; default the last one over")
    formats: list[ReportFormat] = Field(["html", "pdf"], min_length=1, max_length=3)


class ReportFileOut(CamelModel):
    media_type: str
    bytes: int


class ReportOut(CamelModel):
    id: uuid.UUID
    kind: StoredKind
    period_start: dt.date
    period_end: dt.date
    status: Literal["queued", "running", "completed", "failed"]
    title: str | None
    generator: str | None
    formats: list[str]
    files: dict[str, ReportFileOut]
    error: str | None
    scheduled: bool
    created_at: dt.datetime
    completed_at: dt.datetime | None


class ReportDetail(ReportOut):
    narrative: str | None
    facts: list[FactOut]
    recommendations: list[StepOut]
    checks: list[str]


class FileLink(CamelModel):
    url: str
    expires_in: int = Field(description="seconds")


class InvestorDashboardOut(CamelModel):
    report_id: uuid.UUID = Field(description="the report it is kept as: share it with POST /reports/{id}/shares")
    title: str
    period_start: dt.date = Field(description="the first day of the engineering month it reports")
    period_end: dt.date = Field(description="the day it was made, in the org's time zone")
    generator: str
    narrative: str
    risks: list[str] = Field(description="the top risks, most pressing first")
    facts: list[FactOut] = Field(description="what it was written from: every number in it is one of these")
    checks: list[str] = Field(description="what was refused on the way (a model's text stating other numbers)")
    files: dict[str, FileLink] = Field(description="expiring links to its page (html) and PDF")
    completed_at: dt.datetime


class ScheduleOut(CamelModel):
    kind: ReportKind
    enabled: bool
    weekday: int = Field(description="0 Monday to 6 Sunday (weekly digest)")
    day: int = Field(description="day of the month, 1 to 28 (monthly kinds)")
    hour: int = Field(description="local hour in the org's time zone")
    formats: list[str]
    last_period: dt.date | None


class ScheduleChange(RequestModel):
    enabled: bool | None = None
    weekday: int | None = Field(None, ge=0, le=6)
    day: int | None = Field(None, ge=1, le=28)
    hour: int | None = Field(None, ge=0, le=23)
    formats: list[ReportFormat] | None = Field(None, min_length=1, max_length=3)


class ShareCreate(RequestModel):
    label: str = Field(min_length=1, max_length=200, examples=["Seed investors"])
    expires_in_days: int = Field(14, ge=1, le=90)
    passcode: str | None = Field(None, min_length=6, max_length=100)


class ShareOut(CamelModel):
    id: uuid.UUID
    report_id: uuid.UUID | None = Field(description="null: the live investor dashboard")
    label: str
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    views: int
    last_viewed_at: dt.datetime | None
    created_at: dt.datetime
    passcode: bool


class ShareCreated(ShareOut):
    url: str = Field(description="shown once: the token is kept only as its hash")
