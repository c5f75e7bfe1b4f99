"""Reports: a weekly digest, a monthly report or an investor update, asked for (or scheduled), made by a queued job
from the facts of its period, and kept with the facts it was written from and its files in the object store.

Periods are whole weeks (Monday to Sunday) or months, in the org's time zone. A report of a period not yet over
covers it so far. The investor update holds only the metrics the founder shares with investors, and no customer."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts import service as alerts_service
from northstar.core import crypto
from northstar.core.db import fetch_page, get_in_org
from northstar.core.documents import Chart, Document, blocks_of
from northstar.core.http import Forbidden, NotFound, Unprocessable
from northstar.core.llm import LanguageModel
from northstar.core.permissions import Principal
from northstar.core.queue import enqueue_named
from northstar.core.storage import ObjectStore
from northstar.metrics import service as metrics_service
from northstar.metrics.statements import Fact, label, month_name
from northstar.reports import facts, playbook, rendering, video, writer
from northstar.reports.facts import FactSheet
from northstar.reports.models import Report
from northstar.reports.service import coaching
from northstar.settings import Settings

KINDS = ("weekly_digest", "monthly_report", "investor_update")  # what is asked for and scheduled here
PUBLISHED_KINDS = ("investor_dashboard",)  # what another module publishes whole (``publishing``)
INVESTOR_KINDS = ("investor_update", "investor_dashboard")
FORMATS = ("html", "pdf", "mp4")
KIND_NAMES = {
    "weekly_digest": "Weekly digest",
    "monthly_report": "Monthly report",
    "investor_update": "Investor update",
    "investor_dashboard": "Investor dashboard",
}
FILES = {  # a report's files: name in the store and its media type
    "html": ("report.html", "text/html; charset=utf-8"),
    "pdf": ("report.pdf", "application/pdf"),
    "mp4": ("report.mp4", "video/mp4"),
    "vtt": ("report.vtt", "text/vtt; charset=utf-8"),
    "poster": ("poster.png", "image/png"),
}
VIDEO_STEPS = 3
FILE_LINKS = "reports/files"  # the purpose of the key signing links to report files
LINK_TTL_SECONDS = 3600
WEEK_MOVERS = 5


@dataclass(frozen=True)
class Written:
    """A report's content before it becomes files."""

    title: str
    narrative: writer.Narrative
    stated: list[Fact]
    steps: list[playbook.Step]
    generator: str
    checks: tuple[str, ...]
    sheet: FactSheet


def period_of(kind: str, day: dt.date) -> tuple[dt.date, dt.date]:
    """The week (Monday to Sunday) or the month holding ``day``."""
    if kind == "weekly_digest":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    start = day.replace(day=1)
    return start, (start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def last_complete_period(kind: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last week or month that is over by ``today``."""
    current, _ = period_of(kind, today)
    return period_of(kind, current - dt.timedelta(days=1))


async def request_report(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    requested_by: uuid.UUID | None,
    kind: str,
    period: dt.date | None,
    formats: list[str],
    scheduled: bool = False,
) -> Report:
    """A queued report of the period holding ``period`` (default: the last one over); made by ``reports.generate``
    once the caller's transaction commits."""
    today = await metrics_service.org_today(session, org_id=org_id)
    start, end = period_of(kind, period) if period else last_complete_period(kind, today)
    if start > today:
        raise Unprocessable(
            "That period has not started yet",
            details=[{"field": "body.period", "message": "a day not after today", "type": "value_error"}],
        )
    report = Report(
        id=uuid.uuid4(),
        org_id=org_id,
        kind=kind,
        period_start=start,
        period_end=end,
        formats=list(dict.fromkeys(formats)),
        status="queued",
        scheduled=scheduled,
        requested_by=requested_by,
    )
    session.add(report)
    await session.flush()
    await enqueue_named(session, "reports.generate", org_id=org_id, report_id=str(report.id))
    return report


async def _monthly(session: AsyncSession, report: Report, model: LanguageModel | None) -> Written:
    found = await coaching.insights(session, org_id=report.org_id, month=report.period_start, model=model)
    title = found.narrative.title
    return Written(
        title, found.narrative, list(found.sheet.facts), found.steps, found.generator, found.checks, found.sheet
    )


async def _weekly(session: AsyncSession, report: Report, model: LanguageModel | None) -> Written:
    sheet = await facts.build(session, org_id=report.org_id, month=report.period_end)
    recent = await metrics_service.range_facts(
        session, org_id=report.org_id, start=report.period_start, end=report.period_end
    )
    week = facts.week_facts(recent, WEEK_MOVERS)
    steps = playbook.next_steps(sheet)
    voice = await coaching.coach_settings(session, org_id=report.org_id)
    stated = [*week, *sheet.facts]
    names = tuple(sorted({*sheet.customer_names, *(name for m in recent.top_movements if (name := m.name))}))
    told = await coaching.narrate(
        session,
        model,
        org_id=report.org_id,
        stated=stated,
        private_terms=names,
        deterministic=writer.weekly(sheet, week, steps, tone=voice.tone, length=voice.length),
        voice=voice,
        brief=coaching.steps_brief(steps, 2, f"the weekly digest of {report.period_start} to {report.period_end}"),
    )
    return Written(told.narrative.title, told.narrative, stated, steps, told.generator, told.checks, sheet)


async def investor_sheet(session: AsyncSession, *, org_id: uuid.UUID, month: dt.date | None) -> FactSheet:
    """The month's facts investors may read (default: this month): the metrics the founder shares with them and
    those metrics' goals; no customer."""
    shared = await metrics_service.shared_with_investors(session, org_id=org_id)
    full = await facts.build(session, org_id=org_id, month=month)
    return full.only(lambda fact: fact.id.startswith(("kpi.", "goal.")) and fact.data["metric"] in shared)


async def _investor(session: AsyncSession, report: Report, model: LanguageModel | None) -> Written:
    sheet = await investor_sheet(session, org_id=report.org_id, month=report.period_start)
    voice = await coaching.coach_settings(session, org_id=report.org_id)
    told = await coaching.narrate(
        session,
        model,
        org_id=report.org_id,
        stated=list(sheet.facts),
        private_terms=(),
        deterministic=writer.investor_update(sheet, tone=voice.tone),
        voice=voice,
        brief=f"an investor update for {month_name(sheet.month)}: the metrics and goals only, no next steps",
    )
    return Written(told.narrative.title, told.narrative, list(sheet.facts), [], told.generator, told.checks, sheet)


WRITERS = {"weekly_digest": _weekly, "monthly_report": _monthly, "investor_update": _investor}


def document_of(kind: str, start: dt.date, end: dt.date, written: Written, org_name: str) -> Document:
    """What the files of a report of ``kind`` from ``start`` to ``end`` show."""
    sheet = written.sheet
    series = [(day, value) for day, value in sheet.source.mrr_series if day <= end]
    show_chart = sheet.get("kpi.mrr") is not None and any(value is not None for _, value in series)
    charts = (
        [
            Chart(
                title="MRR by month",
                labels=[day.strftime("%b %Y") for day, _ in series],
                values=[
                    None if value is None else Decimal(value).scaleb(-sheet.source.exponent) for _, value in series
                ],
                unit=sheet.currency,
            )
        ]
        if show_chart
        else []
    )
    writer_name = "the built-in writer" if written.generator == coaching.DETERMINISTIC else written.generator[4:]
    return Document(
        title=written.title,
        subtitle=f"{KIND_NAMES[kind]} · {org_name} · {start} to {end}",
        blocks=blocks_of(written.narrative.paragraphs),
        metrics=[(label(fact.data["metric"]), fact.text) for fact in sheet.starting("kpi.")],
        charts=charts,
        footer=f"Written by {writer_name} from the facts of the period; every number in it is one of them.",
    )


def video_of(kind: str, start: dt.date, end: dt.date, written: Written) -> video.VideoSpec:
    """The video's slides: the headline, MRR by month, the month's movements, goals and the top next steps, each
    narrated with the facts' own sentences (so what is said passes the same check as what is written)."""
    sheet = written.sheet
    source = sheet.source
    mrr, movements = sheet.get("kpi.mrr"), sheet.get("movements")
    headline_text = mrr.text if mrr else f"No MRR for {month_name(sheet.month)} yet."
    slides = [
        video.Slide(
            "headline",
            written.title,
            headline_text,
            video.Headline(amount=source.mrr_end, subtitle=f"MRR, {start} to {end}"),
        )
    ]
    points = tuple((day.strftime("%b %Y"), value) for day, value in source.mrr_series if value is not None)
    if points:
        said = f"MRR month by month, up to {month_name(source.mrr_series[-1][0])}."
        slides.append(video.Slide("mrr_chart", "MRR by month", said, video.MrrChart(points)))
    if movements is not None and kind != "investor_update":
        steps = tuple((moved.capitalize(), amount) for moved, amount in source.movements.items() if amount)
        waterfall = video.Waterfall(start=source.mrr_start, steps=steps, end=source.mrr_end)
        slides.append(video.Slide("waterfall", "Where MRR moved", movements.text, waterfall))
    goals = sheet.starting("goal.")[:5]
    if goals:
        items = tuple(video.Goal(label(goal.data["metric"]), _progress(goal), goal.data["status"]) for goal in goals)
        slides.append(video.Slide("goals", "Goals", " ".join(goal.text for goal in goals), video.Goals(items)))
    chosen = written.steps[:VIDEO_STEPS]
    if chosen:
        said = " ".join(f"{step.title}." for step in chosen)
        slides.append(
            video.Slide("recommendations", "Next steps", said, video.Recommendations(tuple(s.title for s in chosen)))
        )
    return video.VideoSpec(title=written.title, currency=sheet.currency, exponent=source.exponent, slides=tuple(slides))


def _progress(goal: Fact) -> float:
    """How far a goal is from its start to its target, in percent, as the metrics count it (0 to 100)."""
    return float(max(0.0, min(100.0, goal.data.get("progress") or 0.0)))


def _video(spec: video.VideoSpec) -> dict[str, bytes]:
    """The rendered video, its subtitles and its poster, read back from a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="northstar-video-") as scratch:
        made = video.render_video(spec, Path(scratch))
        return {"mp4": made.mp4.read_bytes(), "vtt": made.vtt.read_bytes(), "poster": made.poster.read_bytes()}


def _key(report: Report, name: str) -> str:
    return f"reports/{report.org_id}/{report.id}/{name}"


async def generate(
    session: AsyncSession,
    *,
    report_id: uuid.UUID,
    store: ObjectStore,
    model: LanguageModel | None,
    org_name: str,
    public_url: str,
) -> Report:
    """Write the report from its period's facts, render its files and record them (``complete``)."""
    report = await get_report(session, org_id=None, report_id=report_id)
    report.status = "running"
    written = await WRITERS[report.kind](session, report, model)
    document = document_of(report.kind, report.period_start, report.period_end, written, org_name)
    bodies = {kind: render(document) for kind, render in (("html", rendering.html), ("pdf", rendering.pdf))}
    files = {kind: bodies[kind] for kind in report.formats if kind in bodies}
    if "mp4" in report.formats:
        spec = video_of(report.kind, report.period_start, report.period_end, written)
        files.update(await asyncio.to_thread(_video, spec))
    report.recommendations = [
        {"rule": step.rule, "title": step.title, "action": step.action, "cites": list(step.cites)}
        for step in written.steps
    ]
    await complete(
        session,
        report,
        store=store,
        files=files,
        title=written.title,
        narrative=written.narrative.text,
        stated=written.stated,
        generator=written.generator,
        checks=written.checks,
        public_url=public_url,
    )
    return report


async def complete(
    session: AsyncSession,
    report: Report,
    *,
    store: ObjectStore,
    files: dict[str, bytes],
    title: str,
    narrative: str,
    stated: list[Fact],
    generator: str,
    checks: tuple[str, ...],
    public_url: str,
) -> None:
    """Put a made report's files in the store, record it with the facts it was written from, and tell the alert
    rules watching for ready reports (in the same transaction, so an alert never names a report that is not
    there)."""
    stored: dict[str, Any] = {}
    for kind, body in files.items():
        name, media_type = FILES[kind]
        await store.put_bytes(_key(report, name), body, content_type=media_type)
        stored[kind] = {"name": name, "mediaType": media_type, "bytes": len(body)}
    report.title, report.narrative, report.generator = title, narrative, generator
    report.facts = [{"id": fact.id, "text": fact.text, "data": fact.data} for fact in stated]
    report.checks = list(checks)
    report.files = stored
    report.status = "completed"
    report.error = None
    report.completed_at = dt.datetime.now(dt.UTC)
    await session.flush()
    url = f"{public_url.rstrip('/')}/app/reports/{report.id}"
    await alerts_service.report_ready(session, org_id=report.org_id, report_id=report.id, title=title, url=url)


async def mark_failed(session: AsyncSession, *, report_id: uuid.UUID, error: str) -> None:
    report = await get_report(session, org_id=None, report_id=report_id)
    report.status, report.error = "failed", error
    await session.flush()


async def get_report(session: AsyncSession, *, org_id: uuid.UUID | None, report_id: uuid.UUID) -> Report:
    """A report of the bound org (``org_id`` names it where the caller knows it)."""
    if org_id is not None:
        return await get_in_org(session, Report, report_id, org_id=org_id, missing="No such report")
    found = await session.get(Report, report_id)
    if found is None:
        raise NotFound("No such report")
    return found


def visible_kinds(principal: Principal) -> tuple[str, ...]:
    """Investors read the investor updates and dashboards; everyone else who may read reports reads every kind."""
    return INVESTOR_KINDS if principal.role == "investor" else (*KINDS, *PUBLISHED_KINDS)


async def list_reports(
    session: AsyncSession, *, principal: Principal, kind: str | None, offset: int, limit: int
) -> tuple[list[Report], int]:
    kinds = [each for each in visible_kinds(principal) if kind is None or each == kind]
    query = select(Report).where(Report.org_id == principal.org_id, Report.kind.in_(kinds))
    return await fetch_page(session, query.order_by(Report.created_at.desc()), offset=offset, limit=limit)


async def readable_report(session: AsyncSession, *, principal: Principal, report_id: uuid.UUID) -> Report:
    """A report the principal may read: another kind than theirs is as missing as another org's."""
    report = await get_report(session, org_id=principal.org_id, report_id=report_id)
    if report.kind not in visible_kinds(principal):
        raise NotFound("No such report")
    return report


async def delete_report(
    session: AsyncSession, *, principal: Principal, report_id: uuid.UUID, store: ObjectStore
) -> None:
    report = await readable_report(session, principal=principal, report_id=report_id)
    if not principal.can("delete", "reports", owner_id=report.requested_by):
        raise Forbidden("Your role cannot delete a report someone else asked for", code="not_owner")
    for entry in report.files.values():
        await store.delete(_key(report, entry["name"]))
    await session.delete(report)
    await session.flush()


def file_of(report: Report, kind: str) -> tuple[str, str]:
    """The store key and media type of one of the report's files."""
    entry = report.files.get(kind)
    if report.status != "completed" or entry is None:
        raise NotFound("This report has no such file", code="file_not_found")
    return _key(report, entry["name"]), entry["mediaType"]


async def file_link(store: ObjectStore, settings: Settings, report: Report, kind: str) -> str:
    """An expiring link to one of the report's files: the store's presigned URL (S3), else one signed by us."""
    key, _ = file_of(report, kind)
    presigned = await store.signed_url(key, expires_seconds=LINK_TTL_SECONDS)
    if presigned:
        return presigned
    query = crypto.signed_until(
        settings.resolved_secret_key(),
        FILE_LINKS,
        org_id=report.org_id,
        subject=f"{report.id}/{kind}",
        ttl_seconds=LINK_TTL_SECONDS,
    )
    return f"{settings.public_url.rstrip('/')}/api/v1/report-files/{report.id}/{kind}?{query}"


def check_file_link(
    settings: Settings,
    *,
    org_id: uuid.UUID | None,
    report_id: uuid.UUID,
    kind: str,
    expires: int | None,
    signature: str | None,
) -> uuid.UUID:
    return crypto.check_signed(
        settings.resolved_secret_key(),
        FILE_LINKS,
        org_id=org_id,
        subject=f"{report_id}/{kind}",
        expires=expires,
        signature=signature,
    )


async def investor_dashboard(session: AsyncSession, *, org_id: uuid.UUID, org_name: str) -> Document:
    """The live investor dashboard a share link shows: this month's metrics shared with investors and their goals."""
    sheet = await investor_sheet(session, org_id=org_id, month=None)
    narrative = writer.investor_update(sheet, tone="neutral")
    written = Written(f"{org_name}: investor dashboard", narrative, list(sheet.facts), [], "deterministic", (), sheet)
    return document_of("investor_update", sheet.month, sheet.source.today, written, org_name)
