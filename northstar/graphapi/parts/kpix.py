"""KPIx in the graph, read only: the dashboard's KPI cards and the reports, through ``metrics.service`` and
``reports.service`` and behind the same gates as ``GET /dashboard`` and ``GET /reports``."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from northstar.core.context import require
from northstar.core.permissions import Role
from northstar.graphapi.context import context_of
from northstar.graphapi.wire import from_row, window
from northstar.metrics import service as metrics
from northstar.reports.service import generation

DASHBOARD_READ = require("dashboards", "read")
REPORTS_READ = require("reports", "read")


@strawberry.enum
class ReportKind(enum.Enum):
    WEEKLY_DIGEST = "weekly_digest"
    MONTHLY_REPORT = "monthly_report"
    INVESTOR_UPDATE = "investor_update"
    INVESTOR_DASHBOARD = "investor_dashboard"


@strawberry.type(description="A KPI card; money is {amount, currency, exponent} in integer minor units.")
class Card:
    metric: str
    value: JSON | None = strawberry.field(description="this month")
    previous: JSON | None = strawberry.field(description="last month")
    change: JSON | None
    change_percent: float | None
    sparkline: JSON = strawberry.field(description="the last 12 months, oldest first")
    goal: JSON | None


@strawberry.type
class Dashboard:
    currency: str
    as_of: dt.date
    problem: str | None
    cards: list[Card]


@strawberry.type
class Report:
    id: uuid.UUID
    kind: str
    period_start: dt.date
    period_end: dt.date
    status: str
    title: str | None
    generator: str | None
    formats: list[str]
    files: JSON
    error: str | None
    scheduled: bool
    created_at: dt.datetime
    completed_at: dt.datetime | None
    narrative: str | None
    facts: JSON
    recommendations: JSON
    checks: list[str]


@strawberry.type
class ReportPage:
    items: list[Report]
    page: int
    limit: int
    total: int


@strawberry.type
class Query:
    @strawberry.field(description="As GET /dashboard: the KPI cards (investors: the metrics shared with them).")
    async def dashboard(self, info: Info) -> Dashboard | None:
        ctx = context_of(info)
        principal = ctx.allow(DASHBOARD_READ)
        async with ctx.db() as session:
            found = await metrics.headline(session, org_id=principal.org_id, investor=principal.role == Role.INVESTOR)
        return Dashboard(
            currency=found.currency,
            as_of=found.today,
            problem=found.problem,
            cards=[
                Card(
                    metric=card.metric,
                    value=card.value,
                    previous=card.previous,
                    change=card.change,
                    change_percent=card.change_percent,
                    sparkline=JSON(list(card.sparkline)),
                    goal=JSON(card.goal) if card.goal is not None else None,
                )
                for card in found.cards
            ],
        )

    @strawberry.field(description="As GET /reports: newest first; investors see investor updates only.")
    async def reports(
        self, info: Info, page: int = 1, limit: int = 20, kind: ReportKind | None = None
    ) -> ReportPage | None:
        ctx = context_of(info)
        principal = ctx.allow(REPORTS_READ)
        bounds = window(page, limit)
        async with ctx.db() as session:
            rows, total = await generation.list_reports(
                session,
                principal=principal,
                kind=kind.value if kind else None,
                offset=bounds.offset,
                limit=bounds.limit,
            )
        return ReportPage(
            items=[from_row(Report, row) for row in rows], page=bounds.page, limit=bounds.limit, total=total
        )

    @strawberry.field(description="As GET /reports/{reportId}: with its facts, narrative and next steps.")
    async def report(self, info: Info, id: uuid.UUID) -> Report | None:
        ctx = context_of(info)
        principal = ctx.allow(REPORTS_READ)
        async with ctx.db() as session:
            return from_row(Report, await generation.readable_report(session, principal=principal, report_id=id))
