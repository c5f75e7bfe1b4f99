"""Documents another module publishes as reports: DevBizOps' InvestorDashboardAgent writes the investor dashboard
(KPIs beside engineering and roadmap facts) and publishes it here, so it is kept, read, shared through share links
and announced as any report is.

What a publisher gives is a ``Publication`` (with ``Chart`` and ``Table``) and the facts its text was written from.
Every number in its text (paragraphs, list items, metrics and table cells) must be one of the facts' (``core.numbers``,
the rule the coach's reports follow); a publication that states any other is refused whole."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import Unprocessable
from northstar.core.numbers import unsupported
from northstar.core.storage import ObjectStore
from northstar.reports import rendering, writer
from northstar.reports.facts import Fact, FactSheet, label
from northstar.reports.models import Report
from northstar.reports.rendering import Chart, Document, Table, blocks_of
from northstar.reports.service import generation

__all__ = [
    "Chart",
    "Fact",
    "InvestorKpis",
    "Publication",
    "Report",
    "Table",
    "blocks_of",
    "investor_kpis",
    "latest",
    "publish",
]


@dataclass(frozen=True)
class Publication:
    """What a published report shows. A paragraph's lines starting with "- " are its list."""

    title: str
    subtitle: str
    paragraphs: tuple[str, ...]
    metrics: list[tuple[str, str]] = field(default_factory=list)  # a metric's name and its fact's sentence
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    footer: str = ""

    def document(self) -> Document:
        return Document(
            title=self.title,
            subtitle=self.subtitle,
            blocks=blocks_of(self.paragraphs),
            metrics=self.metrics,
            charts=self.charts,
            tables=self.tables,
            footer=self.footer,
        )


@dataclass(frozen=True)
class InvestorKpis:
    """This month's KPIs investors may read, as facts to write from: the shared metrics and their goals."""

    month: dt.date
    today: dt.date
    currency: str
    exponent: int
    facts: list[Fact]
    metrics: list[tuple[str, str]]  # each shared metric's name and its fact's sentence
    paragraphs: tuple[str, ...]  # what the investor update says of them (list items as "- " lines)
    mrr: Chart | None  # MRR by month, when MRR is shared


async def investor_kpis(session: AsyncSession, *, org_id: uuid.UUID) -> InvestorKpis:
    sheet = await generation.investor_sheet(session, org_id=org_id, month=None)
    source = sheet.source
    series = [(day, value) for day, value in source.mrr_series if day <= source.today]
    mrr = None
    if sheet.get("kpi.mrr") is not None and any(value is not None for _, value in series):
        mrr = Chart(
            title="MRR by month",
            labels=[day.strftime("%b %Y") for day, _ in series],
            values=[None if value is None else Decimal(value).scaleb(-source.exponent) for _, value in series],
            unit=sheet.currency,
        )
    return InvestorKpis(
        month=sheet.month,
        today=source.today,
        currency=sheet.currency,
        exponent=source.exponent,
        facts=list(sheet.facts),
        metrics=[(label(fact.data["metric"]), fact.text) for fact in sheet.starting("kpi.")],
        paragraphs=_kpi_paragraphs(sheet),
        mrr=mrr,
    )


def _kpi_paragraphs(sheet: FactSheet) -> tuple[str, ...]:
    """The investor update's paragraphs, without its opening when MRR is not shared (it would ask for billing)."""
    told = writer.investor_update(sheet, tone="neutral").paragraphs
    return told if sheet.get("kpi.mrr") is not None else told[1:]


def written_text(document: Document) -> list[str]:
    """Everything of a document a reader takes as a statement: the numbers in it are checked."""
    said = [text for sentence, listed in document.blocks for text in (sentence, *listed)]
    said += [text for _, text in document.metrics]
    said += [cell for table in document.tables for row in table.rows for cell in row]
    return said


async def publish(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    kind: str,
    publication: Publication,
    stated: list[Fact],
    generator: str,
    checks: tuple[str, ...],
    period: tuple[dt.date, dt.date],
    requested_by: uuid.UUID | None,
    store: ObjectStore,
    public_url: str,
) -> Report:
    """Render ``publication`` as HTML and PDF and keep it as a completed report of ``kind`` (one of
    ``generation.PUBLISHED_KINDS``), once every number in its text is one of ``stated``'s."""
    if kind not in generation.PUBLISHED_KINDS:
        raise ValueError(f"{kind} is not a published kind")
    document = publication.document()
    stray = unsupported("\n".join(written_text(document)), [fact.text for fact in stated])
    if stray:
        raise Unprocessable(
            "The document states numbers none of its facts does",
            code="unverified_numbers",
            details=[{"numbers": stray}],
        )
    report = Report(
        id=uuid.uuid4(),
        org_id=org_id,
        kind=kind,
        period_start=period[0],
        period_end=period[1],
        formats=["html", "pdf"],
        status="running",
        requested_by=requested_by,
    )
    session.add(report)
    await session.flush()
    await generation.complete(
        session,
        report,
        store=store,
        files={"html": rendering.html(document), "pdf": rendering.pdf(document)},
        title=publication.title,
        narrative="\n\n".join(publication.paragraphs),
        stated=stated,
        generator=generator,
        checks=checks,
        public_url=public_url,
    )
    return report


async def latest(session: AsyncSession, *, org_id: uuid.UUID, kind: str) -> Report | None:
    """The newest completed report of ``kind``."""
    query = select(Report).where(Report.org_id == org_id, Report.kind == kind, Report.status == "completed")
    return await session.scalar(query.order_by(Report.completed_at.desc(), Report.id).limit(1))
