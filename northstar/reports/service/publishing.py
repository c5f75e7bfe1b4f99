"""The investor dashboard, published. DevBizOps' InvestorDashboardAgent writes it (a ``core.documents.Document``
and the facts it was written from) and announces it; this module, reacting, checks every number of its text
against those facts (``core.numbers``, the rule of the coach's reports), renders its page and PDF, keeps it as a
report of kind ``investor_dashboard`` and ends the agent's run. Investors read it, and founders share it with the
reports' share links, as any report."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.numbers import unsupported
from northstar.core.storage import ObjectStore
from northstar.devbizops.service import agents as agents_service
from northstar.reports import rendering
from northstar.reports.models import Report
from northstar.reports.service import generation

KIND = "investor_dashboard"


async def publish_written(session: AsyncSession, *, org_id: uuid.UUID, store: ObjectStore, public_url: str) -> int:
    """Publish each dashboard the org's agent runs wrote and no one published yet; a dashboard stating a number
    none of its facts does is refused, and its run ends failed. Returns how many were published."""
    published = 0
    for written in await agents_service.claim_written_dashboards(session, org_id=org_id):
        stray = unsupported("\n".join(written.document.text()), [fact.text for fact in written.facts])
        if stray:
            error = f"The dashboard states numbers none of its facts does: {', '.join(stray)}"
            await agents_service.dashboard_published(
                session, org_id=org_id, run_id=written.run_id, report_id=None, error=error
            )
            continue
        report = Report(
            id=uuid.uuid4(),
            org_id=org_id,
            kind=KIND,
            period_start=written.period[0],
            period_end=written.period[1],
            formats=["html", "pdf"],
            status="running",
            requested_by=written.created_by,
        )
        session.add(report)
        await session.flush()
        document = written.document
        await generation.complete(
            session,
            report,
            store=store,
            files={"html": rendering.html(document), "pdf": rendering.pdf(document)},
            title=document.title,
            narrative=written.narrative,
            stated=written.facts,
            generator=written.generator,
            checks=written.checks,
            public_url=public_url,
        )
        await agents_service.dashboard_published(
            session, org_id=org_id, run_id=written.run_id, report_id=report.id, error=None
        )
        published += 1
    return published


async def latest(session: AsyncSession, *, org_id: uuid.UUID) -> Report | None:
    """The newest published investor dashboard."""
    query = select(Report).where(Report.org_id == org_id, Report.kind == KIND, Report.status == "completed")
    return await session.scalar(query.order_by(Report.completed_at.desc(), Report.id).limit(1))
