"""InvestorDashboardAgent's service: it gathers the KPIs shared with investors (from the reports module), the
overall DORA and velocity series (from the KPI store) and the roadmap, writes the dashboard (``investors.py``,
optionally with a language model whose text must state only the facts' numbers), and publishes it as a report of
kind ``investor_dashboard``: an HTML page and a PDF, read by investors and shared through the reports' share links.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.llm import FACTS_ONLY, LanguageModel, Spent, checked_answer
from northstar.core.storage import ObjectStore
from northstar.devbizops import dora, investors
from northstar.devbizops import service as engineering
from northstar.devbizops.service import roadmap as roadmap_service
from northstar.reports.service import publishing

KIND = "investor_dashboard"
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
    kpis = await publishing.investor_kpis(session, org_id=org_id)
    overall = await engineering.dora_report(session, org_id=org_id, months=TREND_MONTHS, kind="overall")
    series = (
        investors.Engineering(overall[0].months, overall[0].values)
        if overall
        else investors.Engineering([], {metric: [] for metric in dora.MONTH_METRICS})
    )
    views = await roadmap_service.items(session, org_id=org_id)
    state = investors.RoadmapState(
        items=[view.facts for view in views],
        pace=await roadmap_service.measured_pace(session, org_id=org_id, today=kpis.today),
        currency=kpis.currency,
        exponent=kpis.exponent,
    )
    return investors.build(org_name=org_name, kpis=kpis, engineering=series, state=state, today=kpis.today)


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


async def publish(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    org_name: str,
    written: Written,
    requested_by: uuid.UUID | None,
    store: ObjectStore,
    public_url: str,
) -> publishing.Report:
    dashboard = written.dashboard
    month = dashboard.month
    engineering_note = f"engineering through {investors.month_name(month)}" if month else "no engineering month yet"
    writer = "the built-in writer" if written.generator == DETERMINISTIC else written.generator.removeprefix("llm:")
    publication = publishing.Publication(
        title=dashboard.title,
        subtitle=f"Investor dashboard · {org_name} · KPIs as of today, {engineering_note}",
        paragraphs=written.paragraphs,
        metrics=dashboard.metrics,
        charts=dashboard.charts,
        tables=dashboard.tables,
        footer=f"Written by {writer} from the facts of the KPI store, the engineering metrics and the roadmap; "
        "every number in it is one of them.",
    )
    return await publishing.publish(
        session,
        org_id=org_id,
        kind=KIND,
        publication=publication,
        stated=dashboard.facts,
        generator=written.generator,
        checks=written.checks,
        period=(month or dashboard.today.replace(day=1), dashboard.today),
        requested_by=requested_by,
        store=store,
        public_url=public_url,
    )


async def latest(session: AsyncSession, *, org_id: uuid.UUID) -> publishing.Report | None:
    """The newest published investor dashboard."""
    return await publishing.latest(session, org_id=org_id, kind=KIND)
