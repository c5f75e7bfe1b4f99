"""The roadmap: items with their status, target quarter and rank, the work items that deliver them, their progress
and the revenue-weighted demand waiting on them; RoadmapAgent's facts; and every change pushed on the org's event
stream (``devbizops.roadmap``), so open dashboards follow it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import get_in_org
from northstar.core.http import Unprocessable
from northstar.core.pubsub import publish_on_commit
from northstar.devbizops import roadmap
from northstar.devbizops.models import Link, RoadmapItem, RoadmapWorkItem, WorkItem
from northstar.metrics import service as metrics_service

TOPIC = "devbizops.roadmap"
QUARTER = re.compile(r"^\d{4}-Q[1-4]$")


@dataclass(frozen=True)
class ItemView:
    item: RoadmapItem
    work_item_ids: list[uuid.UUID]
    facts: roadmap.ItemFacts
    currency: str


def _check_quarter(quarter: str) -> None:
    if not QUARTER.match(quarter):
        raise Unprocessable(
            "A target quarter is written 2027-Q1",
            details=[{"field": "body.targetQuarter", "message": "like 2027-Q1", "type": "value_error"}],
        )


async def _set_work_items(session: AsyncSession, item: RoadmapItem, work_item_ids: Sequence[uuid.UUID]) -> None:
    wanted = set(work_item_ids)
    found = set((await session.scalars(select(WorkItem.id).where(WorkItem.id.in_(wanted)))).all()) if wanted else set()
    if wanted - found:
        raise Unprocessable(
            "Some work items are not this organization's",
            details=[{"field": "body.workItemIds", "message": "no such work item", "type": "value_error"}],
        )
    await session.execute(delete(RoadmapWorkItem).where(RoadmapWorkItem.roadmap_item_id == item.id))
    session.add_all(
        RoadmapWorkItem(org_id=item.org_id, roadmap_item_id=item.id, work_item_id=work_item) for work_item in wanted
    )


async def _changed(session: AsyncSession, item: RoadmapItem, change: str) -> None:
    await publish_on_commit(
        session,
        item.org_id,
        TOPIC,
        {
            "id": str(item.id),
            "change": change,
            "title": item.title,
            "status": item.status,
            "targetQuarter": item.target_quarter,
            "rank": item.rank,
        },
    )


async def create_item(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None,
    title: str,
    description: str,
    target_quarter: str,
    work_item_ids: Sequence[uuid.UUID],
) -> RoadmapItem:
    """A new planned item, ranked last."""
    _check_quarter(target_quarter)
    last = await session.scalar(select(func.max(RoadmapItem.rank)).where(RoadmapItem.org_id == org_id))
    item = RoadmapItem(
        id=uuid.uuid4(),
        org_id=org_id,
        title=title,
        description=description,
        status="planned",
        target_quarter=target_quarter,
        rank=(last or 0) + 1,
        created_by=user_id,
    )
    session.add(item)
    await session.flush()
    await _set_work_items(session, item, work_item_ids)
    await _changed(session, item, "created")
    await session.flush()
    await session.refresh(item)
    return item


async def get_item(session: AsyncSession, *, org_id: uuid.UUID, item_id: uuid.UUID) -> RoadmapItem:
    return await get_in_org(session, RoadmapItem, item_id, org_id=org_id, missing="No such roadmap item")


async def update_item(
    session: AsyncSession, *, org_id: uuid.UUID, item_id: uuid.UUID, changes: dict[str, Any]
) -> RoadmapItem:
    """Change an item (``work_item_ids`` replaces its work items); the change is pushed to open pages."""
    item = await get_item(session, org_id=org_id, item_id=item_id)
    if "target_quarter" in changes:
        _check_quarter(changes["target_quarter"])
    for name in ("title", "description", "status", "target_quarter", "rank"):
        if name in changes:
            setattr(item, name, changes[name])
    if "work_item_ids" in changes:
        await _set_work_items(session, item, changes["work_item_ids"])
    await session.flush()
    await _changed(session, item, "updated")
    await session.refresh(item)
    return item


async def delete_item(session: AsyncSession, *, org_id: uuid.UUID, item_id: uuid.UUID) -> None:
    item = await get_item(session, org_id=org_id, item_id=item_id)
    await _changed(session, item, "deleted")
    await session.delete(item)
    await session.flush()


async def items(session: AsyncSession, *, org_id: uuid.UUID) -> list[ItemView]:
    """Every roadmap item by rank, with its progress and the revenue-weighted demand waiting on it."""
    found = list(
        (
            await session.scalars(select(RoadmapItem).where(RoadmapItem.org_id == org_id).order_by(RoadmapItem.rank))
        ).all()
    )
    rows = (
        await session.execute(
            select(RoadmapWorkItem.roadmap_item_id, WorkItem.id, WorkItem.status)
            .join(WorkItem, WorkItem.id == RoadmapWorkItem.work_item_id)
            .where(RoadmapWorkItem.org_id == org_id)
        )
    ).all()
    members: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = defaultdict(list)
    for row in rows:
        members[row[0]].append((row[1], row[2]))
    demand, currency = await _demand(session, org_id=org_id, work_items={row[1] for row in rows})
    views = []
    for item in found:
        delivering = [(work_item, status) for work_item, status in members[item.id] if status != "canceled"]
        facts = roadmap.ItemFacts(
            id=item.id,
            title=item.title,
            status=item.status,
            target_quarter=item.target_quarter,
            rank=item.rank,
            total=len(delivering),
            done=sum(status == "done" for _, status in delivering),
            started=sum(status in ("in_progress", "done") for _, status in delivering),
            demand=_sum_demand(demand, [work_item for work_item, _ in members[item.id]]),
        )
        views.append(ItemView(item, [work_item for work_item, _ in members[item.id]], facts, currency))
    return views


def _sum_demand(demand: dict[uuid.UUID, dict[str, int]], work_items: list[uuid.UUID]) -> int:
    """The item's customers and deals, each counted once however many of its work items they are linked to."""
    merged: dict[str, int] = {}
    for work_item in work_items:
        merged |= demand.get(work_item, {})
    return sum(merged.values())


async def _demand(
    session: AsyncSession, *, org_id: uuid.UUID, work_items: set[uuid.UUID]
) -> tuple[dict[uuid.UUID, dict[str, int]], str]:
    """Per work item, what waits on it by customer or deal (``customer:<id>`` -> ARR, ``deal:<key>`` -> open
    amount in the reporting currency; deals in other currencies are left out of the weight)."""
    reporting = await metrics_service.reporting(session, org_id=org_id)
    links = (
        list((await session.scalars(select(Link).where(Link.work_item_id.in_(work_items)))).all()) if work_items else []
    )
    customers = [link.customer_id for link in links if link.customer_id is not None]
    mrr = await metrics_service.customer_mrr(session, org_id=org_id, customer_ids=customers, day=reporting.today)
    deals = await metrics_service.deals_by_key(
        session,
        org_id=org_id,
        keys=[
            (link.deal_integration_id, link.deal_external_id)
            for link in links
            if link.deal_integration_id and link.deal_external_id
        ],
    )
    found: dict[uuid.UUID, dict[str, int]] = defaultdict(dict)
    for link in links:
        if link.customer_id is not None:
            found[link.work_item_id][f"customer:{link.customer_id}"] = 12 * mrr.get(link.customer_id, 0)
        elif link.deal_integration_id is not None and link.deal_external_id is not None:
            deal = deals.get((link.deal_integration_id, link.deal_external_id))
            if deal is not None and not deal.closed and deal.amount is not None and deal.currency == reporting.currency:
                found[link.work_item_id][f"deal:{link.deal_integration_id}:{link.deal_external_id}"] = deal.amount
    return found, reporting.currency


async def measured_pace(session: AsyncSession, *, org_id: uuid.UUID, today: dt.date) -> Fraction:
    """Work items finished a week over the last ``roadmap.THROUGHPUT_WEEKS`` weeks, days in the org's time zone."""
    tz = zoneinfo.ZoneInfo(await metrics_service.time_zone_of(session, org_id))
    since = dt.datetime.now(dt.UTC) - dt.timedelta(weeks=roadmap.THROUGHPUT_WEEKS + 1)  # the window, and a margin
    moments = await session.scalars(
        select(WorkItem.completed_at).where(
            WorkItem.org_id == org_id, WorkItem.status == "done", WorkItem.completed_at >= since
        )
    )
    return roadmap.throughput([moment.astimezone(tz).date() for moment in moments.all() if moment is not None], today)


async def apply(session: AsyncSession, *, org_id: uuid.UUID, item_id: uuid.UUID, change: dict[str, Any]) -> None:
    """An approved proposal's change to its item."""
    allowed = {key: value for key, value in change.items() if key in ("status", "target_quarter", "rank")}
    await update_item(session, org_id=org_id, item_id=item_id, changes=allowed)
