"""DevBizOps routes: the DORA and flow report per scope, and repositories with their teams."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.devbizops import dora, service
from northstar.devbizops.auth import (
    EngineeringRead,
    EngineeringUpdate,
)
from northstar.devbizops.models import Repository
from northstar.devbizops.schemas import (
    DoraMetric,
    RepositoryOut,
    RepositoryUpdate,
    ScopeKind,
    ScopeOut,
)

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)


FLOW = {
    "deployments": "deployments",
    "throughput": "throughput",
    "work_in_progress": "workInProgress",
    "reviews": "reviews",
    "review_load": "reviewLoad",
    "work_items_done": "workItemsDone",
    "coding_time_hours": "codingTimeHours",
    "pickup_time_hours": "pickupTimeHours",
    "review_time_hours": "reviewTimeHours",
    "deploy_time_hours": "deployTimeHours",
}


def _repository(repository: Repository) -> RepositoryOut:
    return RepositoryOut.model_validate(repository, from_attributes=True)


def _metric(report: service.ScopeReport, metric: str, band_metric: str) -> DoraMetric:
    """The latest month with a value, and its band."""
    values, bands = report.values[metric], report.values[band_metric]
    for position in range(len(report.months) - 1, -1, -1):
        if values[position] is not None:
            found = bands[position]
            return DoraMetric(
                value=values[position],
                band=dora.BAND_NAMES.get(int(found)) if found is not None else None,
                month=report.months[position],
                trend=values,
            )
    return DoraMetric(value=None, band=None, month=None, trend=values)


def _scope(report: service.ScopeReport) -> ScopeOut:
    flow: dict[str, list[Any]] = {name: report.values[metric] for metric, name in FLOW.items()}
    return ScopeOut(
        kind=report.scope.kind,
        name=report.scope.name,
        dims=report.scope.dims,
        months=report.months,
        deployment_frequency=_metric(report, "deployments", "deployment_frequency_band"),
        lead_time_hours=_metric(report, "lead_time_hours", "lead_time_band"),
        change_failure_rate=_metric(report, "change_failure_rate", "change_failure_band"),
        time_to_restore_hours=_metric(report, "time_to_restore_hours", "time_to_restore_band"),
        flow=flow,
    )


@router.get("/devbizops/dora", response_model=Envelope[list[ScopeOut]], name="devbizops.dora")
async def dora_report(
    principal: EngineeringRead,
    session: DbSession,
    months: Annotated[int, Query(ge=1, le=36, description="how many months, this one included")] = 12,
    scope: Annotated[ScopeKind | None, Query(description="only scopes of this kind")] = None,
) -> Envelope[list[ScopeOut]]:
    """The four DORA metrics with their performance band, and the flow metrics, per month: overall, per team and
    per repository (docs/devbizops.md)."""
    reports = await service.dora_report(session, org_id=principal.org_id, months=months, kind=scope)
    return Envelope(data=[_scope(report) for report in reports])


@router.get("/devbizops/repositories", response_model=PageEnvelope[RepositoryOut], name="devbizops.repositories")
async def list_repositories(
    principal: EngineeringRead,
    session: DbSession,
    page: Page,
    team_id: Annotated[uuid.UUID | None, Query(alias="teamId")] = None,
) -> PageEnvelope[RepositoryOut]:
    found, total = await service.list_repositories(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit, team_id=team_id
    )
    return PageEnvelope(data=[_repository(repository) for repository in found], meta=page.meta(total))


@router.get(
    "/devbizops/repositories/{repository_id}", response_model=Envelope[RepositoryOut], name="devbizops.repository"
)
async def get_repository(
    principal: EngineeringRead, session: DbSession, repository_id: Annotated[uuid.UUID, Path()]
) -> Envelope[RepositoryOut]:
    found = await service.get_repository(session, org_id=principal.org_id, repository_id=repository_id)
    return Envelope(data=_repository(found))


@router.patch(
    "/devbizops/repositories/{repository_id}",
    response_model=Envelope[RepositoryOut],
    name="devbizops.repository_update",
)
async def update_repository(
    body: RepositoryUpdate,
    request: Request,
    principal: EngineeringUpdate,
    session: DbSession,
    repository_id: Annotated[uuid.UUID, Path()],
) -> Envelope[RepositoryOut]:
    """Put the repository in a team (``teamId``, or null): its metrics are reported under the team from the next
    recompute, which this queues."""
    audit_target(request, "repository", repository_id)
    found = await service.set_repository_team(
        session, org_id=principal.org_id, repository_id=repository_id, team_id=body.team_id
    )
    return Envelope(data=_repository(found))
