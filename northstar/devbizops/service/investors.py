"""InvestorDashboardAgent's service: it gathers the KPIs and goals shared with investors (as the metrics state
them), the overall DORA and velocity series (from the KPI store) and the roadmap, and writes the dashboard
(``investors.py``; optionally with a language model whose text must state only the facts' numbers) as a document.
The reports module publishes that document (``service.agents.DASHBOARD_WRITTEN``): an HTML page and a PDF, kept as
a report that investors read and founders share through share links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.documents import Chart, Document
from northstar.core.llm import FACTS_ONLY, LanguageModel, Spent, checked_answer
from northstar.devbizops import dora, investors
from northstar.devbizops import service as engineering
from northstar.devbizops.service import roadmap as roadmap_service
from northstar.metrics import service as metrics_service
from northstar.metrics import statements
from northstar.metrics.statements import MonthFacts

TREND_MONTHS = 13  # the reported month, the eleven before it and the current one
DETERMINISTIC = "deterministic"
INSTRUCTIONS = (
    "You write the narrative of a startup's investor dashboard: plain, factual and confident, no hype, in the third "
    f"person. Three or four short paragraphs: the business, engineering delivery, the roadmap. {FACTS_ONLY} Leave "
    "the risks out: they are listed apart. No headings, no markdown, no lists."
)


class DashboardDraft(BaseModel):
    """What a language model writes for the dashboard."""

    paragraphs: list[str] = Field(min_length=1, max_length=6)


@dataclass(frozen=True)
class Written:
    dashboard: investors.Dashboard
    paragraphs: tuple[str, ...]  # the prose, then the risks
    generator: str
    checks: tuple[str, ...]


async def build(session: AsyncSession, *, org_id: uuid.UUID, org_name: str) -> investors.Dashboard:
    """The dashboard of the org's data as it is now."""
    found = await metrics_service.month_facts(session, org_id=org_id, month=None)
    overall = await engineering.dora_report(session, org_id=org_id, months=TREND_MONTHS, kind="overall")
    series = (
        investors.Engineering(overall[0].months, overall[0].values)
        if overall
        else investors.Engineering([], {metric: [] for metric in dora.MONTH_METRICS})
    )
    views = await roadmap_service.items(session, org_id=org_id)
    state = investors.RoadmapState(
        items=[view.facts for view in views],
        pace=await roadmap_service.measured_pace(session, org_id=org_id, today=found.today),
        currency=found.currency,
        exponent=found.exponent,
    )
    shared = await metrics_service.shared_with_investors(session, org_id=org_id)
    kpis = _kpis(found, shared)
    return investors.build(org_name=org_name, kpis=kpis, engineering=series, state=state, today=found.today)


def _kpis(found: MonthFacts, shared: set[str]) -> investors.Kpis:
    """This month's statements of the metrics and goals the founder shares with investors (none of customers)."""
    say = statements.Formatter(found.currency, found.exponent)
    facts = [
        fact
        for fact in (*statements.kpi_facts(found, say), *statements.goal_facts(found, say))
        if fact.data["metric"] in shared
    ]
    series = [(day, value) for day, value in found.mrr_series if day <= found.today]
    mrr = None
    if "mrr" in shared and any(value is not None for _, value in series):
        mrr = Chart(
            title="MRR by month",
            labels=[day.strftime("%b %Y") for day, _ in series],
            values=[None if value is None else Decimal(value).scaleb(-found.exponent) for _, value in series],
            unit=found.currency,
        )
    return investors.Kpis(facts=facts, mrr=mrr)


async def write(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    dashboard: investors.Dashboard,
    model: LanguageModel | None,
    spent: list[Spent],
) -> Written:
    """The dashboard's narrative: the engine's, or the model's when every number it writes is a fact's."""
    if model is None:
        return Written(dashboard, (*dashboard.prose, dashboard.risk_block()), DETERMINISTIC, ())
    facts = "\n".join(f"- [{fact.id}] {fact.text}" for fact in dashboard.facts if not fact.id.startswith("risk."))
    draft = await checked_answer(
        model,
        session,
        org_id=org_id,
        purpose="devbizops.investor_dashboard",
        instructions=INSTRUCTIONS,
        prompt=f"Facts:\n{facts}\n\nWrite the dashboard's narrative.",
        schema=DashboardDraft,
        facts=[fact.text for fact in dashboard.facts],
        text_of=lambda draft: "\n\n".join(draft.paragraphs),
        spent=spent,
    )
    if draft.value is None:
        return Written(dashboard, (*dashboard.prose, dashboard.risk_block()), DETERMINISTIC, draft.checks)
    prose = tuple(paragraph.strip() for paragraph in draft.value.paragraphs if paragraph.strip())
    return Written(dashboard, (*prose, dashboard.risk_block()), f"llm:{model.config.model}", draft.checks)


def document(written: Written, *, org_name: str) -> Document:
    """The written dashboard as the document the reports module publishes."""
    dashboard = written.dashboard
    month = dashboard.month
    engineering_note = f"engineering through {investors.month_name(month)}" if month else "no engineering month yet"
    writer = "the built-in writer" if written.generator == DETERMINISTIC else written.generator.removeprefix("llm:")
    return dashboard.document(
        written.paragraphs,
        subtitle=f"Investor dashboard · {org_name} · KPIs as of {dashboard.today.isoformat()}, {engineering_note}",
        footer=f"Written by {writer} from the facts of the KPI store, the engineering metrics and the roadmap; "
        "every number in it is one of them.",
    )
