"""DevBizOps: the unified engineering model's writes, the DORA and flow metrics' recompute, repositories and teams
(links to the business: ``links.py``).

Engineering connectors hand their pages to ``store_batch`` (through the integrations sync, in the page's
transaction); whatever changed queues one recompute per organization (``request_recompute``, deduplicated while one
waits), which reads the model, runs the engine (``dora.py``) and replaces the ``engineering`` series of the KPI
store, so dashboards, goals, anomalies and alerts see the metrics like any other.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import procrastinate.exceptions
from pydantic import BaseModel, Field
from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import projects as accounts_projects
from northstar.core.db import Base, bulk_insert, fetch_page, get_in_org
from northstar.core.http import Unprocessable
from northstar.core.llm import LanguageModel, LlmUnavailable, Spent
from northstar.core.queue import enqueue_named
from northstar.core.search.indexing import index_rows
from northstar.devbizops import dora, translator
from northstar.devbizops.inputs import EngineeringBatch
from northstar.devbizops.models import (
    Change,
    Deployment,
    EngineeringSource,
    Incident,
    Person,
    Repository,
    Review,
    WorkItem,
)
from northstar.devbizops.service import links
from northstar.metrics import service as metrics_service

RECOMPUTE_TASK = "devbizops.recompute"
TEAMS_LIMIT = 10_000  # an org's teams, named in a report at once
DUPLICATE_BODY = 500  # characters of a work item's description compared with a requirement
BODY_LIMIT = 20_000  # characters of a change's or work item's description that are kept (enough to find links)


def _unique(items: Iterable[Any]) -> list[Any]:
    """One record per source id, the last one read (a page may name an object twice; an upsert cannot)."""
    return list({item.external_id: item for item in items}.values())


def _row(item: Any, *, org_id: uuid.UUID, integration_id: uuid.UUID, drop: Sequence[str] = ()) -> dict[str, Any]:
    row = {name: value for name, value in dataclasses.asdict(item).items() if name not in drop}
    return {**row, "org_id": org_id, "integration_id": integration_id}


async def _upsert(
    session: AsyncSession, model: type[Base], table: str, rows: list[dict[str, Any]], *, keep: Sequence[str] = ()
) -> None:
    if rows:
        update = [column for column in rows[0] if column not in ("org_id", "integration_id", "external_id", *keep)]
        await bulk_insert(session, model, rows, conflict=f"uq_{table}_integration_id", update=update)


async def store_batch(
    session: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID, batch: EngineeringBatch
) -> bool:
    """Keep what an engineering page normalised into; True when it held anything (the metrics need a recompute)."""
    if not batch:
        return False
    owner = {"org_id": org_id, "integration_id": integration_id}
    repositories = [
        {
            **_row(item, org_id=org_id, integration_id=integration_id, drop=("created_at",)),
            "source_created_at": item.created_at,
        }
        for item in _unique(batch.repositories)
    ]
    await _upsert(session, Repository, "repositories", repositories)
    changes = _unique(batch.changes)
    await _upsert(
        session,
        Change,
        "changes",
        [
            {
                **_row(item, org_id=org_id, integration_id=integration_id, drop=("reviews", "updated_at", "body")),
                "body": item.body[:BODY_LIMIT] if item.body else item.body,
                "source_updated_at": item.updated_at,
            }
            for item in changes
        ],
    )
    if changes:
        await session.execute(
            delete(Review).where(
                Review.integration_id == integration_id,
                Review.change_external_id.in_([change.external_id for change in changes]),
            )
        )
        await bulk_insert(
            session,
            Review,
            [
                {
                    **owner,
                    "change_external_id": change.external_id,
                    "position": position,
                    "reviewer": review.reviewer,
                    "state": review.state,
                    "submitted_at": review.submitted_at,
                }
                for change in changes
                for position, review in enumerate(change.reviews)
            ],
        )
    await _upsert(
        session,
        Deployment,
        "deployments",
        [_row(item, org_id=org_id, integration_id=integration_id) for item in _unique(batch.deployments)],
    )
    await _upsert(
        session,
        Incident,
        "incidents",
        [_row(item, org_id=org_id, integration_id=integration_id) for item in _unique(batch.incidents)],
    )
    await _upsert(
        session,
        WorkItem,
        "work_items",
        [
            {
                **_row(item, org_id=org_id, integration_id=integration_id, drop=("updated_at", "labels", "body")),
                "body": item.body[:BODY_LIMIT] if item.body else item.body,
                "labels": list(item.labels),
                "source_updated_at": item.updated_at,
            }
            for item in _unique(batch.work_items)
        ],
    )
    if batch.work_items:  # upserted by SQL, past the flush that indexes rows for search
        stored = [item.external_id for item in batch.work_items]
        await index_rows(session, WorkItem, WorkItem.integration_id == integration_id, WorkItem.external_id.in_(stored))
    await _upsert(
        session,
        Person,
        "people",
        [_row(item, org_id=org_id, integration_id=integration_id) for item in _unique(batch.people)],
    )
    return True


async def note_source(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    integration_id: uuid.UUID,
    provider: str,
    name: str,
    files_tickets: bool,
) -> None:
    """Keep an engineering integration's provider and name as of its last sync (the trackers tickets go to)."""
    statement = pg_insert(EngineeringSource).values(
        org_id=org_id,
        integration_id=integration_id,
        provider=provider,
        name=name[:200],
        files_tickets=files_tickets,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[EngineeringSource.integration_id],
            set_={
                "provider": statement.excluded.provider,
                "name": statement.excluded.name,
                "files_tickets": statement.excluded.files_tickets,
                "synced_at": func.now(),
            },
        )
    )


async def trackers(session: AsyncSession, *, org_id: uuid.UUID) -> list[EngineeringSource]:
    """The org's integrations approved tickets can be filed in, by name."""
    found = await session.scalars(
        select(EngineeringSource)
        .where(EngineeringSource.org_id == org_id, EngineeringSource.files_tickets)
        .order_by(EngineeringSource.name)
    )
    return list(found.all())


async def request_recompute(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    """Queue the org's metrics recompute in the caller's transaction; one already waiting covers this change too."""
    try:
        async with session.begin_nested():
            await enqueue_named(session, RECOMPUTE_TASK, org_id=org_id, queueing_lock=f"{RECOMPUTE_TASK}:{org_id}")
    except procrastinate.exceptions.AlreadyEnqueued:
        return


_REPOSITORIES = text("SELECT integration_id, external_id, name, team_id FROM devbizops.repositories")
_CHANGES = text(
    """SELECT c.integration_id, c.external_id, c.repository, c.author, c.created_at, c.first_commit_at,
              c.merged_at, c.closed_at,
              coalesce(array_agg(r.reviewer ORDER BY r.position) FILTER (WHERE r.position IS NOT NULL), '{}'),
              coalesce(array_agg(r.submitted_at ORDER BY r.position) FILTER (WHERE r.position IS NOT NULL), '{}')
       FROM devbizops.changes c
       LEFT JOIN devbizops.reviews r
         ON r.integration_id = c.integration_id AND r.change_external_id = c.external_id
       GROUP BY c.id"""
)
_DEPLOYMENTS = text(
    """SELECT integration_id, external_id, repository, status = 'success', coalesce(finished_at, created_at)
       FROM devbizops.deployments WHERE production AND status IN ('success', 'failure')"""
)
_INCIDENTS = text("SELECT integration_id, repository, started_at, resolved_at FROM devbizops.incidents")
_DONE = text(
    """SELECT integration_id, repository, completed_at FROM devbizops.work_items
       WHERE status = 'done' AND completed_at IS NOT NULL"""
)


async def engineering_facts(session: AsyncSession) -> dora.Facts:
    """The unified model as the engine reads it (the session's organization: row-level security scopes it)."""

    def repo(integration_id: uuid.UUID, external_id: str | None) -> dora.RepoKey | None:
        return dora.RepoKey(integration_id, external_id) if external_id is not None else None

    repositories = {
        dora.RepoKey(row[0], row[1]): (row[2], row[3]) for row in (await session.execute(_REPOSITORIES)).all()
    }
    changes = [
        dora.ChangeFact(
            repo=dora.RepoKey(row[0], row[2]),
            author=row[3],
            created_at=row[4],
            first_commit_at=row[5],
            merged_at=row[6],
            closed_at=row[7],
            reviews=tuple(zip(row[8], row[9], strict=True)),
        )
        for row in (await session.execute(_CHANGES)).all()
    ]
    deployments = [
        dora.DeploymentFact(key=(row[0], row[1]), repo=dora.RepoKey(row[0], row[2]), succeeded=row[3], at=row[4])
        for row in (await session.execute(_DEPLOYMENTS)).all()
    ]
    incidents = [
        dora.IncidentFact(repo=repo(row[0], row[1]), started_at=row[2], resolved_at=row[3])
        for row in (await session.execute(_INCIDENTS)).all()
    ]
    done = [(repo(row[0], row[1]), row[2]) for row in (await session.execute(_DONE)).all()]
    return dora.Facts(
        repositories=repositories, changes=changes, deployments=deployments, incidents=incidents, work_items_done=done
    )


async def recompute(session: AsyncSession, *, org_id: uuid.UUID) -> int:
    """Find the model's links again (``links.relink``) and replace the org's engineering series with what the model
    says now; returns the points written."""
    await links.relink(session, org_id=org_id)
    facts = await engineering_facts(session)
    zone = await metrics_service.time_zone_of(session, org_id)
    today = await metrics_service.org_today(session, org_id=org_id)
    points = dora.compute(facts, zone=zone, today=today)
    return await metrics_service.store_series(session, org_id=org_id, source=dora.SOURCE, points=points)


async def has_engineering_data(session: AsyncSession, *, org_id: uuid.UUID) -> bool:
    """Whether any engineering source synced into the org (the nightly recompute skips the others)."""
    found = await session.scalar(select(Repository.id).where(Repository.org_id == org_id).limit(1))
    if found is None:
        found = await session.scalar(select(Change.id).where(Change.org_id == org_id).limit(1))
    return found is not None


# -- repositories and teams ------------------------------------------------------------------------------------


async def list_repositories(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int, team_id: uuid.UUID | None = None
) -> tuple[list[Repository], int]:
    query = select(Repository).where(Repository.org_id == org_id)
    if team_id is not None:
        query = query.where(Repository.team_id == team_id)
    return await fetch_page(session, query.order_by(Repository.name, Repository.id), offset=offset, limit=limit)


async def get_repository(session: AsyncSession, *, org_id: uuid.UUID, repository_id: uuid.UUID) -> Repository:
    return await get_in_org(session, Repository, repository_id, org_id=org_id, missing="No such repository")


async def set_repository_team(
    session: AsyncSession, *, org_id: uuid.UUID, repository_id: uuid.UUID, team_id: uuid.UUID | None
) -> Repository:
    """Put a repository in one of the org's teams (or none); its metrics move with it at once."""
    repository = await get_repository(session, org_id=org_id, repository_id=repository_id)
    if team_id is not None:
        await accounts_projects.get_team(session, org_id=org_id, team_id=team_id)
    repository.team_id = team_id
    await session.flush()
    await request_recompute(session, org_id=org_id)
    await session.refresh(repository)
    return repository


# -- the DORA report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    dims: str
    kind: str  # overall, repository, team
    name: str


@dataclass(frozen=True)
class ScopeReport:
    scope: Scope
    months: list[dt.date]
    values: dict[str, list[Any]]  # metric -> value per month (None where the month has none)


async def dora_report(
    session: AsyncSession, *, org_id: uuid.UUID, months: int, kind: str | None = None
) -> list[ScopeReport]:
    """Each scope's monthly engineering metrics over the last ``months`` months (its DORA bands among them)."""
    today = await metrics_service.org_today(session, org_id=org_id)
    first = today.replace(day=1)
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    points = await metrics_service.source_points(session, org_id=org_id, source=dora.SOURCE, grain="month", since=first)
    month_list = sorted({point.day for point in points})
    by_scope: dict[str, dict[str, dict[dt.date, Any]]] = {}
    for point in points:
        by_scope.setdefault(point.dims, {}).setdefault(point.metric, {})[point.day] = point.value
    found, _ = await accounts_projects.list_teams(
        session, org_id=org_id, project_id=None, only=None, offset=0, limit=TEAMS_LIMIT
    )
    teams = {str(team.id): team.name for team in found}
    reports = []
    for dims, metrics in by_scope.items():
        scope = _scope(dims, teams)
        if kind is not None and scope.kind != kind:
            continue
        values = {metric: [metrics.get(metric, {}).get(month) for month in month_list] for metric in dora.MONTH_METRICS}
        reports.append(ScopeReport(scope=scope, months=month_list, values=values))
    order = {"overall": 0, "team": 1, "repository": 2}
    reports.sort(key=lambda report: (order[report.scope.kind], report.scope.name))
    return reports


def _scope(dims: str, teams: dict[str, str]) -> Scope:
    if dims.startswith("repo="):
        return Scope(dims, "repository", dims.removeprefix("repo="))
    if dims.startswith("team="):
        team = dims.removeprefix("team=")
        return Scope(dims, "team", teams.get(team, team))
    return Scope(dims, "overall", "All repositories")


# -- TechTranslator ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    requirements: list[translator.Requirement]
    duplicates: dict[int, translator.Duplicate]  # requirement position -> the work item it repeats
    generator: str  # "deterministic", or "llm:<model>"
    rejected: list[str]  # the model's requirements refused, and why
    checks: list[str]  # why the model's reading was not used, when it was asked for


class ModelRequirement(BaseModel):
    """A requirement as the language model is asked to write it: every quote copied verbatim from the call."""

    title: str = Field(max_length=200)
    user_story: str = Field(max_length=1000)
    acceptance_criteria: list[str] = Field(max_length=20)
    priority: Literal["high", "medium", "low"]
    components: list[str] = Field(max_length=10)
    quotes: list[str] = Field(min_length=1, max_length=10)


class ModelReading(BaseModel):
    requirements: list[ModelRequirement] = Field(max_length=50)


TRANSLATOR_INSTRUCTIONS = (
    "You turn a sales or customer call into technical requirements for an engineering team. For each thing the "
    "customer asks for, write a short title, a user story (As …, I want …, so that … when they said why), "
    "acceptance criteria taken from what they stated, a priority (high when they called it a blocker, a "
    "deal-breaker, a must or urgent; low when they called it nice to have or not urgent; else medium), the product "
    "components it touches, and quotes: sentences copied character for character from the call, which show the "
    "ask. Never paraphrase a quote and never invent one: a quote that is not in the call is thrown away."
)


async def translate(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    transcript: str,
    transcript_format: translator.Format = "auto",
    customer: str | None = None,
    customer_speakers: Sequence[str] = (),
    model: LanguageModel | None = None,
    spent: list[Spent] | None = None,
) -> Translation:
    """TechTranslator's reading of a call: its requirements with their verbatim evidence, each checked against the
    org's work items for one it repeats. With ``model``, the language model reads it and every quote it gives is
    checked against the call (a requirement with a quote that is not in it is refused); without a model, or
    when its reading leaves nothing, the deterministic engine's reading is used."""
    try:
        requirements = translator.translate(
            transcript, transcript_format=transcript_format, customer=customer, customer_speakers=customer_speakers
        )
    except translator.BadTranscript as exc:
        raise Unprocessable(
            f"The transcript cannot be read: {exc}",
            details=[{"field": "body.transcript", "message": str(exc), "type": "value_error"}],
        ) from None
    generator = "deterministic"
    rejected: list[str] = []
    checks: list[str] = []
    if model is not None:
        try:
            reading = await model.generate(
                session,
                org_id=org_id,
                purpose="devbizops.tech_translator",
                instructions=TRANSLATOR_INSTRUCTIONS,
                prompt=f"Customer: {customer or 'unknown'}\n\nThe call:\n{transcript}",
                schema=ModelReading,
                private_terms=[customer] if customer else (),
                spent=spent,
            )
            verified, rejected = _verified(reading, transcript, customer)
            if verified:
                requirements, generator = verified, f"llm:{model.config.model}"
            else:
                checks.append("the language model's reading had no requirement with verbatim evidence")
        except LlmUnavailable as exc:
            checks.append(exc.message)
    rows = await session.execute(
        select(WorkItem.key, WorkItem.title, WorkItem.body).where(
            WorkItem.org_id == org_id, WorkItem.status != "canceled"
        )
    )
    items = [(row.key, f"{row.title} {(row.body or '')[:DUPLICATE_BODY]}") for row in rows]
    found = translator.duplicates(requirements, items)
    return Translation(
        requirements, {duplicate.requirement: duplicate for duplicate in found}, generator, rejected, checks
    )


def _verified(
    reading: ModelReading, transcript: str, customer: str | None
) -> tuple[list[translator.Requirement], list[str]]:
    """The model's requirements whose every quote is in the call (with the offsets found there) and whose every
    number is one the call states, and why the others were refused."""
    kept: list[translator.Requirement] = []
    refused: list[str] = []
    for found in reading.requirements:
        quotes = [translator.verify_quote(transcript, quote) for quote in found.quotes]
        missing = [quote for quote, placed in zip(found.quotes, quotes, strict=True) if placed is None]
        if missing:
            refused.append(f"{found.title}: the quote {missing[0]!r} is not in the call")
            continue
        written = "\n".join([found.title, found.user_story, *found.acceptance_criteria])
        invented = translator.unsupported_numbers(written, transcript)
        if invented:
            refused.append(f"{found.title}: the number {invented[0]} is not in the call")
            continue
        kept.append(
            translator.Requirement(
                title=found.title,
                user_story=found.user_story,
                acceptance_criteria=found.acceptance_criteria or [f"{found.title} works as asked"],
                priority=found.priority,
                components=found.components or ["product"],
                requested_by=customer,
                quotes=[quote for quote in quotes if quote is not None],
            )
        )
    return kept, refused
