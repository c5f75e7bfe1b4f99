"""DevBizOps routes: the roadmap and RoadmapAgent runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope
from northstar.core.idempotency import Idempotent
from northstar.devbizops.api.agents import run_out
from northstar.devbizops.auth import (
    EngineeringRead,
    EngineeringUpdate,
    ProposalsCreate,
)
from northstar.devbizops.schemas import (
    AgentRunOut,
    Money,
    RoadmapItemIn,
    RoadmapItemOut,
    RoadmapItemUpdate,
)
from northstar.devbizops.service import agents as agents_service
from northstar.devbizops.service import roadmap as roadmap_service

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)


def _roadmap_item(view: roadmap_service.ItemView) -> RoadmapItemOut:
    item, facts = view.item, view.facts
    return RoadmapItemOut(
        id=item.id,
        title=item.title,
        description=item.description,
        status=item.status,
        target_quarter=item.target_quarter,
        rank=item.rank,
        work_item_ids=view.work_item_ids,
        work_items=facts.total,
        done=facts.done,
        started=facts.started,
        demand=Money(amount=facts.demand, currency=view.currency),
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


async def _view(session: DbSession, org_id: uuid.UUID, item_id: uuid.UUID) -> RoadmapItemOut:
    views = await roadmap_service.items(session, org_id=org_id)
    return _roadmap_item(next(view for view in views if view.item.id == item_id))


@router.get("/devbizops/roadmap", response_model=Envelope[list[RoadmapItemOut]], name="devbizops.roadmap")
async def list_roadmap(principal: EngineeringRead, session: DbSession) -> Envelope[list[RoadmapItemOut]]:
    """The roadmap by rank, each item with its progress and the revenue-weighted demand waiting on it. Changes are
    pushed on ``/events/stream`` (topic ``devbizops.roadmap``)."""
    return Envelope(
        data=[_roadmap_item(view) for view in await roadmap_service.items(session, org_id=principal.org_id)]
    )


@router.post(
    "/devbizops/roadmap",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[RoadmapItemOut],
    name="devbizops.roadmap_create",
    dependencies=[Idempotent],
)
async def create_roadmap_item(
    body: RoadmapItemIn, request: Request, principal: EngineeringUpdate, session: DbSession
) -> Envelope[RoadmapItemOut]:
    item = await roadmap_service.create_item(
        session,
        org_id=principal.org_id,
        user_id=principal.user_id,
        title=body.title,
        description=body.description,
        target_quarter=body.target_quarter,
        work_item_ids=body.work_item_ids,
    )
    audit_target(request, "roadmap_item", item.id)
    return Envelope(data=await _view(session, principal.org_id, item.id))


@router.patch("/devbizops/roadmap/{item_id}", response_model=Envelope[RoadmapItemOut], name="devbizops.roadmap_update")
async def update_roadmap_item(
    body: RoadmapItemUpdate,
    request: Request,
    principal: EngineeringUpdate,
    session: DbSession,
    item_id: Annotated[uuid.UUID, Path()],
) -> Envelope[RoadmapItemOut]:
    audit_target(request, "roadmap_item", item_id)
    item = await roadmap_service.update_item(
        session, org_id=principal.org_id, item_id=item_id, changes=body.model_dump(exclude_unset=True)
    )
    return Envelope(data=await _view(session, principal.org_id, item.id))


@router.delete("/devbizops/roadmap/{item_id}", status_code=status.HTTP_204_NO_CONTENT, name="devbizops.roadmap_delete")
async def delete_roadmap_item(
    request: Request, principal: EngineeringUpdate, session: DbSession, item_id: Annotated[uuid.UUID, Path()]
) -> None:
    await roadmap_service.delete_item(session, org_id=principal.org_id, item_id=item_id)
    audit_target(request, "roadmap_item", item_id)


@router.post(
    "/devbizops/agents/roadmap/runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[AgentRunOut],
    name="devbizops.roadmap_run",
    dependencies=[Idempotent],
)
async def run_roadmap_agent(request: Request, principal: ProposalsCreate, session: DbSession) -> Envelope[AgentRunOut]:
    """Queue a RoadmapAgent run: status changes from the trackers' progress, slips when the remaining work exceeds
    the time left at the measured throughput, and ranks by revenue-weighted demand, each with its reason and
    numbers, proposed for approval."""
    run = await agents_service.start_roadmap(session, principal=principal)
    audit_target(request, "agent_run", run.id)
    return Envelope(data=run_out(run))
