"""Requests and responses of the DevBizOps API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, Name, RequestModel

ScopeKind = Literal["overall", "team", "repository"]
Band = Literal["elite", "high", "medium", "low"]


class RepositoryOut(CamelModel):
    id: uuid.UUID
    integration_id: uuid.UUID
    name: str
    url: str | None
    default_branch: str | None
    archived: bool
    team_id: uuid.UUID | None


class RepositoryUpdate(RequestModel):
    team_id: uuid.UUID | None = Field(description="one of the organization's teams, or null for none")


class DoraMetric(CamelModel):
    """A DORA metric's latest month with a value, its band there, and its value per month of the report."""

    value: Any = Field(description="the latest month's value (hours, a percentage, or deployments)")
    band: Band | None
    month: dt.date | None
    trend: list[Any]


class ScopeOut(CamelModel):
    kind: ScopeKind
    name: str
    dims: str = Field(description="the KPI store's dims of this scope's series: '', 'repo=<name>' or 'team=<id>'")
    months: list[dt.date]
    deployment_frequency: DoraMetric
    lead_time_hours: DoraMetric
    change_failure_rate: DoraMetric
    time_to_restore_hours: DoraMetric
    flow: dict[str, list[Any]] = Field(
        description="per month: deployments, throughput, workInProgress, reviews, reviewLoad, workItemsDone, and the "
        "cycle time's phases (codingTimeHours, pickupTimeHours, reviewTimeHours, deployTimeHours)"
    )


class RecomputeOut(CamelModel):
    points: int


WorkStatus = Literal["todo", "in_progress", "done", "canceled"]


class WorkItemOut(CamelModel):
    id: uuid.UUID
    integration_id: uuid.UUID
    key: str
    title: str
    status: WorkStatus
    url: str | None
    assignee: str | None
    labels: list[str]
    created_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    links: int = Field(description="customers and deals linked to it")


class Money(CamelModel):
    amount: int = Field(description="minor units of the currency")
    currency: str


class DealRefIn(RequestModel):
    integration_id: uuid.UUID
    external_id: str = Field(min_length=1, max_length=255, description="the deal's id in the CRM")


class LinkIn(RequestModel):
    customer_id: uuid.UUID | None = Field(None, description="a billing customer (KPIx)")
    deal: DealRefIn | None = Field(None, description="a CRM deal, by its integration and id there")


class LinkOut(CamelModel):
    id: uuid.UUID
    source: Literal["manual", "mention", "agent"]
    evidence: str | None
    created_at: dt.datetime
    customer_id: uuid.UUID | None
    customer_name: str | None = None
    mrr: Money | None = Field(None, description="the customer's MRR today")
    deal: DealRefIn | None = None
    deal_name: str | None = None
    deal_amount: Money | None = None
    deal_open: bool | None = None


class LinkedChange(CamelModel):
    id: uuid.UUID
    number: int
    title: str
    url: str | None
    state: str
    merged_at: dt.datetime | None
    deployed_at: dt.datetime | None


class ImpactOut(CamelModel):
    shipped_at: dt.datetime
    window_end: dt.date
    movements: dict[str, Money] = Field(description="the linked customers' MRR movements by kind in the window")
    net: Money
    label: str = Field(description="what the numbers are: a correlation, not a cause")


class WorkItemDetailOut(WorkItemOut):
    body: str | None
    customers: list[LinkOut]
    deals: list[LinkOut]
    changes: list[LinkedChange]
    arr: Money = Field(description="the linked customers' ARR today")
    open_pipeline: list[Money] = Field(description="the linked open deals' amounts, per currency")
    impact: ImpactOut | None = Field(description="once shipped, with linked customers")


MAX_TRANSCRIPT = 500_000  # characters: a few hours of talk


class TranslateIn(RequestModel):
    transcript: str = Field(min_length=1, max_length=MAX_TRANSCRIPT, description="plain text, WebVTT or SRT")
    format: Literal["auto", "text", "vtt", "srt"] = "auto"
    customer: str | None = Field(None, max_length=200, description="who asked: the customer's or deal's name")
    customer_speakers: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=50, description="only these speakers' words count (default: everyone's)"
    )
    mode: Literal["deterministic", "llm"] = Field(
        "deterministic", description="llm: the configured language model reads the call, its quotes checked"
    )


class QuoteOut(CamelModel):
    text: str = Field(description="verbatim: transcript[start:end]")
    start: int
    end: int
    speaker: str | None


class DuplicateOut(CamelModel):
    key: str = Field(description="the existing work item to add this to instead of filing it again")
    similarity: float


class RequirementOut(CamelModel):
    title: str
    user_story: str
    acceptance_criteria: list[str]
    priority: Literal["high", "medium", "low"]
    components: list[str]
    requested_by: str | None
    evidence: list[QuoteOut]
    duplicate_of: DuplicateOut | None


class TranslationOut(CamelModel):
    requirements: list[RequirementOut]
    generator: str = Field(description="deterministic, or llm:<model>")
    rejected: list[str] = Field(description="the model's requirements refused: a quote not in the call")
    checks: list[str] = Field(description="why the model's reading was not used, when it was asked for")


class TechTranslatorRunIn(TranslateIn):
    deal: DealRefIn | None = Field(None, description="the deal the call was about: approved tickets are linked to it")
    customer_id: uuid.UUID | None = Field(None, description="or the billing customer it was with")


class AgentRunOut(CamelModel):
    id: uuid.UUID
    agent: str
    status: Literal["queued", "running", "succeeded", "failed"]
    mode: Literal["deterministic", "llm"]
    generator: str | None
    input_tokens: int
    output_tokens: int
    cost_micros: int = Field(description="millionths of the language model's currency")
    trace_id: str | None
    error: str | None
    replay_of: uuid.UUID | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class AgentStepOut(CamelModel):
    position: int
    name: str
    detail: dict[str, Any]
    span_id: str | None
    started_at: dt.datetime
    finished_at: dt.datetime


class ProposalOut(CamelModel):
    id: uuid.UUID
    run_id: uuid.UUID
    kind: Literal["create_ticket", "add_to_work_item", "roadmap_status", "roadmap_slip", "roadmap_rank"]
    status: Literal["proposed", "approved", "filing", "rejected", "applied", "failed"]
    requirement: dict[str, Any] = Field(
        description="TechTranslator: the requirement; RoadmapAgent: the item, the change, its reason and numbers"
    )
    work_item_id: uuid.UUID | None
    target_integration_id: uuid.UUID | None
    external_key: str | None
    external_url: str | None
    decided_by: uuid.UUID | None
    decided_at: dt.datetime | None
    reason: str | None
    error: str | None


class AgentRunDetailOut(AgentRunOut):
    input: dict[str, Any]
    output: dict[str, Any] | None
    steps: list[AgentStepOut]
    proposals: list[ProposalOut]


class ApproveIn(RequestModel):
    integration_id: uuid.UUID | None = Field(None, description="the Jira or Linear integration to file a new ticket in")


class RejectIn(RequestModel):
    reason: str | None = Field(None, max_length=2000)


Quarter = Annotated[str, Field(pattern=r"^\d{4}-Q[1-4]$", examples=["2027-Q1"])]


class RoadmapItemIn(RequestModel):
    title: Name = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    target_quarter: Quarter
    work_item_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class RoadmapItemUpdate(RequestModel):
    title: Name | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    status: Literal["planned", "in_progress", "shipped", "dropped"] | None = None
    target_quarter: Quarter | None = None
    rank: int | None = Field(None, ge=1, le=100_000)
    work_item_ids: list[uuid.UUID] | None = Field(None, max_length=500)


class RoadmapItemOut(CamelModel):
    id: uuid.UUID
    title: str
    description: str
    status: Literal["planned", "in_progress", "shipped", "dropped"]
    target_quarter: str
    rank: int
    work_item_ids: list[uuid.UUID]
    work_items: int = Field(description="work items that deliver it, canceled ones left out")
    done: int
    started: int
    demand: Money = Field(description="ARR of its customers and open pipeline of its deals, in the reporting currency")
    created_at: dt.datetime
    updated_at: dt.datetime


class InvestorDashboardRunIn(RequestModel):
    mode: Literal["deterministic", "llm"] = Field(
        "deterministic", description="llm: the configured model writes the narrative, from the same facts"
    )
