"""Work items tied to the business: the links to customers and deals, the changes that ship a work item, the demand
waiting on it and the revenue that moved after it shipped.

``relink`` runs with every recompute: it finds again which changes name which work items (their title and body) and
which deals' notes name a work item (``source`` ``mention``), keeping links made by hand or by an approved proposal.
``work_item_detail`` answers what a work item means to the business: the ARR of its linked customers and the open
pipeline of its linked deals today, and, once it shipped, the linked customers' MRR movements in the 90 days after
(a correlation, never claimed as a cause).
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bulk_insert, get_in_org
from northstar.core.http import AppError, Forbidden, NotFound, Unprocessable
from northstar.core.permissions import Principal
from northstar.devbizops.mentions import mentions
from northstar.devbizops.models import Change, ChangeWorkItem, Link, Repository, WorkItem
from northstar.metrics import service as metrics_service

IMPACT_DAYS = 90
CORRELATION = (
    "correlation: the linked customers' MRR movements in the 90 days after the work item shipped, "
    "whatever else happened then; not a measure of what the work caused"
)


class AlreadyLinked(AppError):
    status, code = 409, "already_linked"


# -- finding links -------------------------------------------------------------------------------------------------


async def relink(session: AsyncSession, *, org_id: uuid.UUID) -> tuple[int, int]:
    """Find again the changes that name work items and the deals whose notes do; returns (change links, deal
    links) found."""
    items = (await session.execute(select(WorkItem.id, WorkItem.key, WorkItem.url))).all()
    by_key = {row.key: row.id for row in items}
    by_key |= {row.url: row.id for row in items if row.url}
    repositories = {
        (row.integration_id, row.external_id): row.name
        for row in await session.execute(select(Repository.integration_id, Repository.external_id, Repository.name))
    }
    pairs: set[tuple[uuid.UUID, uuid.UUID]] = set()
    changes = await session.execute(
        select(Change.id, Change.integration_id, Change.repository, Change.title, Change.body)
    )
    for change in changes:
        repository = repositories.get((change.integration_id, change.repository))
        text_of = f"{change.title}\n{change.body or ''}"
        for mention in mentions(text_of, repository=repository):
            if mention.key in by_key:
                pairs.add((change.id, by_key[mention.key]))
    await session.execute(delete(ChangeWorkItem).where(ChangeWorkItem.org_id == org_id))
    await bulk_insert(
        session,
        ChangeWorkItem,
        [{"org_id": org_id, "change_id": change, "work_item_id": item} for change, item in sorted(pairs)],
    )
    found: dict[tuple[uuid.UUID, uuid.UUID, str], str] = {}
    for deal in await metrics_service.deals_with_notes(session, org_id=org_id):
        for mention in mentions(f"{deal.name or ''}\n{deal.notes or ''}"):
            if mention.key in by_key:
                found.setdefault((by_key[mention.key], deal.integration_id, deal.external_id), mention.evidence)
    await session.execute(delete(Link).where(Link.org_id == org_id, Link.source == "mention"))
    if found:
        rows = [
            {
                "org_id": org_id,
                "work_item_id": item,
                "deal_integration_id": integration,
                "deal_external_id": external,
                "source": "mention",
                "evidence": evidence,
            }
            for (item, integration, external), evidence in found.items()
        ]
        await session.execute(pg_insert(Link).values(rows).on_conflict_do_nothing())
    return len(pairs), len(found)


# -- links by hand -------------------------------------------------------------------------------------------------


async def get_work_item(session: AsyncSession, *, org_id: uuid.UUID, work_item_id: uuid.UUID) -> WorkItem:
    return await get_in_org(session, WorkItem, work_item_id, org_id=org_id, missing="No such work item")


async def check_business(
    session: AsyncSession, *, org_id: uuid.UUID, customer_id: uuid.UUID | None, deal: tuple[uuid.UUID, str] | None
) -> None:
    """The customer and the deal named, when named, are the org's (else 404)."""
    if customer_id is not None and not await metrics_service.customers_by_id(
        session, org_id=org_id, customer_ids=[customer_id]
    ):
        raise NotFound("No such customer")
    if deal is not None and not await metrics_service.deals_by_key(session, org_id=org_id, keys=[deal]):
        raise NotFound("No such deal")


async def add_link(
    session: AsyncSession,
    *,
    principal: Principal,
    work_item_id: uuid.UUID,
    customer_id: uuid.UUID | None,
    deal: tuple[uuid.UUID, str] | None,
    source: str = "manual",
    evidence: str | None = None,
) -> Link:
    """Tie a work item to one of the org's customers or deals (exactly one of them)."""
    org_id = principal.org_id
    await get_work_item(session, org_id=org_id, work_item_id=work_item_id)
    if (customer_id is None) == (deal is None):
        raise Unprocessable(
            "Link a work item to a customer or to a deal",
            details=[{"field": "body", "message": "give customerId or deal, not both", "type": "value_error"}],
        )
    await check_business(session, org_id=org_id, customer_id=customer_id, deal=deal)
    inserted = await session.scalar(
        pg_insert(Link)
        .values(
            org_id=org_id,
            work_item_id=work_item_id,
            customer_id=customer_id,
            deal_integration_id=deal[0] if deal else None,
            deal_external_id=deal[1] if deal else None,
            source=source,
            evidence=evidence,
            created_by=principal.user_id,
        )
        .on_conflict_do_nothing()
        .returning(Link.id)
    )
    if inserted is None:
        raise AlreadyLinked("The work item is already linked to it")
    found = await session.get(Link, inserted)
    assert found is not None
    return found


async def remove_link(
    session: AsyncSession, *, principal: Principal, work_item_id: uuid.UUID, link_id: uuid.UUID
) -> None:
    link = await get_in_org(session, Link, link_id, org_id=principal.org_id, missing="No such link")
    if link.work_item_id != work_item_id:
        raise NotFound("No such link")
    if not principal.can("delete", "engineering", owner_id=link.created_by):
        raise Forbidden("Your role can remove only the links you made")
    await session.delete(link)
    await session.flush()


# -- reading -------------------------------------------------------------------------------------------------------


async def list_work_items(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    offset: int,
    limit: int,
    status: str | None = None,
    query: str | None = None,
    linked: bool | None = None,
) -> tuple[list[tuple[WorkItem, int]], int]:
    """Work items, newest first, with how many customers and deals each is linked to."""
    links = select(func.count()).where(Link.work_item_id == WorkItem.id).scalar_subquery()
    statement = select(WorkItem, links.label("links")).where(WorkItem.org_id == org_id)
    if status is not None:
        statement = statement.where(WorkItem.status == status)
    if query:
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(WorkItem.key.ilike(pattern) | WorkItem.title.ilike(pattern))
    if linked is not None:
        statement = statement.where(links > 0 if linked else links == 0)
    total = await session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = await session.execute(
        statement.order_by(WorkItem.created_at.desc(), WorkItem.id).offset(offset).limit(limit)
    )
    return [(row[0], int(row[1])) for row in rows], int(total or 0)


@dataclass(frozen=True)
class LinkedCustomer:
    link: Link
    name: str | None
    mrr: int  # today, reporting currency minor units


@dataclass(frozen=True)
class LinkedDeal:
    link: Link
    deal: metrics_service.DealRef | None  # None: the deal is no longer synced


@dataclass(frozen=True)
class Impact:
    shipped_at: dt.datetime
    window_end: dt.date
    movements: dict[str, int]
    net: int
    label: str = CORRELATION


@dataclass
class WorkItemDetail:
    item: WorkItem
    currency: str
    customers: list[LinkedCustomer] = field(default_factory=list)
    deals: list[LinkedDeal] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    arr: int = 0
    open_pipeline: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    impact: Impact | None = None


_CHANGES = text(
    """SELECT c.id, c.number, c.title, c.url, c.state, c.merged_at,
              (SELECT min(coalesce(d.finished_at, d.created_at)) FROM devbizops.deployments d
               WHERE d.integration_id = c.integration_id AND d.repository = c.repository AND d.production
                 AND d.status = 'success' AND c.merged_at IS NOT NULL
                 AND coalesce(d.finished_at, d.created_at) >= c.merged_at) AS deployed_at
       FROM devbizops.change_work_items l JOIN devbizops.changes c ON c.id = l.change_id
       WHERE l.work_item_id = :item ORDER BY c.created_at"""
)


async def work_item_detail(session: AsyncSession, *, org_id: uuid.UUID, work_item_id: uuid.UUID) -> WorkItemDetail:
    item = await get_work_item(session, org_id=org_id, work_item_id=work_item_id)
    reporting = await metrics_service.reporting(session, org_id=org_id)
    detail = WorkItemDetail(item=item, currency=reporting.currency)
    links = list(
        (await session.scalars(select(Link).where(Link.work_item_id == item.id).order_by(Link.created_at))).all()
    )
    customer_ids = [link.customer_id for link in links if link.customer_id is not None]
    names = await metrics_service.customers_by_id(session, org_id=org_id, customer_ids=customer_ids)
    mrr = await metrics_service.customer_mrr(session, org_id=org_id, customer_ids=customer_ids, day=reporting.today)
    deals = await metrics_service.deals_by_key(
        session,
        org_id=org_id,
        keys=[
            (link.deal_integration_id, link.deal_external_id)
            for link in links
            if link.deal_integration_id and link.deal_external_id
        ],
    )
    pipeline: dict[str, int] = defaultdict(int)
    for link in links:
        if link.customer_id is not None:
            found = names.get(link.customer_id)
            detail.customers.append(LinkedCustomer(link, found.name if found else None, mrr.get(link.customer_id, 0)))
        elif link.deal_integration_id is not None and link.deal_external_id is not None:
            deal = deals.get((link.deal_integration_id, link.deal_external_id))
            detail.deals.append(LinkedDeal(link, deal))
            if deal is not None and not deal.closed and deal.amount is not None:
                pipeline[deal.currency] += deal.amount
    detail.arr = 12 * sum(customer.mrr for customer in detail.customers)
    detail.open_pipeline = dict(pipeline)
    detail.changes = [dict(row._mapping) for row in await session.execute(_CHANGES, {"item": item.id})]
    shipped = shipped_at(item, detail.changes)
    if shipped is not None and customer_ids:
        zone = await metrics_service.time_zone_of(session, org_id)
        start = shipped.astimezone(zoneinfo.ZoneInfo(zone)).date()
        end = start + dt.timedelta(days=IMPACT_DAYS)
        movements = await metrics_service.movements_between(
            session, org_id=org_id, customer_ids=customer_ids, start=start, end=end
        )
        detail.impact = Impact(shipped_at=shipped, window_end=end, movements=movements, net=sum(movements.values()))
    return detail


def shipped_at(item: WorkItem, changes: list[dict[str, Any]]) -> dt.datetime | None:
    """When a done work item reached users: the last production deployment of the changes naming it, else when it was
    marked done."""
    if item.status != "done":
        return None
    deployed = [change["deployed_at"] for change in changes if change.get("deployed_at") is not None]
    return max(deployed) if deployed else item.completed_at
