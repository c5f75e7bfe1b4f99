"""DevBizOps routes: work items with their links to customers and deals, the demand waiting on them and their
impact."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.devbizops.auth import (
    EngineeringCreate,
    EngineeringDelete,
    EngineeringRead,
)
from northstar.devbizops.models import Link, WorkItem
from northstar.devbizops.schemas import (
    DealRefIn,
    ImpactOut,
    LinkedChange,
    LinkIn,
    LinkOut,
    Money,
    WorkItemDetailOut,
    WorkItemOut,
    WorkStatus,
)
from northstar.devbizops.service import links as links_service

router = APIRouter(tags=["devbizops"], responses=ERROR_RESPONSES)


def _work_item(item: WorkItem, links: int) -> WorkItemOut:
    return WorkItemOut.model_validate({**_fields(item), "links": links})


def _fields(item: WorkItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in WorkItemOut.model_fields if name != "links"}


def _link(link: Link) -> LinkOut:
    deal = (
        DealRefIn(integration_id=link.deal_integration_id, external_id=link.deal_external_id)
        if link.deal_integration_id is not None and link.deal_external_id is not None
        else None
    )
    return LinkOut(
        id=link.id,
        source=link.source,
        evidence=link.evidence,
        created_at=link.created_at,
        customer_id=link.customer_id,
        deal=deal,
    )


def _detail(detail: links_service.WorkItemDetail) -> WorkItemDetailOut:
    currency = detail.currency
    customers = [
        _link(found.link).model_copy(
            update={"customer_name": found.name, "mrr": Money(amount=found.mrr, currency=currency)}
        )
        for found in detail.customers
    ]
    deals = [
        _link(found.link).model_copy(
            update={
                "deal_name": found.deal.name,
                "deal_amount": Money(amount=found.deal.amount, currency=found.deal.currency)
                if found.deal.amount is not None
                else None,
                "deal_open": not found.deal.closed,
            }
            if found.deal is not None
            else {}
        )
        for found in detail.deals
    ]
    impact = (
        ImpactOut(
            shipped_at=detail.impact.shipped_at,
            window_end=detail.impact.window_end,
            movements={
                kind: Money(amount=amount, currency=currency) for kind, amount in detail.impact.movements.items()
            },
            net=Money(amount=detail.impact.net, currency=currency),
            label=detail.impact.label,
        )
        if detail.impact is not None
        else None
    )
    return WorkItemDetailOut.model_validate(
        {
            **_fields(detail.item),
            "links": len(customers) + len(deals),
            "body": detail.item.body,
            "customers": customers,
            "deals": deals,
            "changes": [LinkedChange.model_validate(change) for change in detail.changes],
            "arr": Money(amount=detail.arr, currency=currency),
            "open_pipeline": [
                Money(amount=amount, currency=code) for code, amount in sorted(detail.open_pipeline.items())
            ],
            "impact": impact,
        }
    )


@router.get("/devbizops/work-items", response_model=PageEnvelope[WorkItemOut], name="devbizops.work_items")
async def list_work_items(
    principal: EngineeringRead,
    session: DbSession,
    page: Page,
    status_filter: Annotated[WorkStatus | None, Query(alias="status")] = None,
    q: Annotated[str | None, Query(max_length=200, description="in the key or title")] = None,
    linked: Annotated[bool | None, Query(description="only those linked (or not) to customers or deals")] = None,
) -> PageEnvelope[WorkItemOut]:
    found, total = await links_service.list_work_items(
        session,
        org_id=principal.org_id,
        offset=page.offset,
        limit=page.limit,
        status=status_filter,
        query=q,
        linked=linked,
    )
    return PageEnvelope(data=[_work_item(item, count) for item, count in found], meta=page.meta(total))


@router.get(
    "/devbizops/work-items/{work_item_id}", response_model=Envelope[WorkItemDetailOut], name="devbizops.work_item"
)
async def get_work_item(
    principal: EngineeringRead, session: DbSession, work_item_id: Annotated[uuid.UUID, Path()]
) -> Envelope[WorkItemDetailOut]:
    """A work item with its customers and deals, the changes that name it, the ARR and open pipeline waiting on it,
    and, once shipped, its linked customers' MRR movements in the 90 days after (a correlation)."""
    detail = await links_service.work_item_detail(session, org_id=principal.org_id, work_item_id=work_item_id)
    return Envelope(data=_detail(detail))


@router.post(
    "/devbizops/work-items/{work_item_id}/links",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[LinkOut],
    name="devbizops.link_create",
    dependencies=[Idempotent],
)
async def add_link(
    body: LinkIn,
    request: Request,
    principal: EngineeringCreate,
    session: DbSession,
    work_item_id: Annotated[uuid.UUID, Path()],
) -> Envelope[LinkOut]:
    """Link the work item to a customer (``customerId``) or a deal (``deal``): the customers who asked for it and
    the deals waiting on it."""
    link = await links_service.add_link(
        session,
        principal=principal,
        work_item_id=work_item_id,
        customer_id=body.customer_id,
        deal=(body.deal.integration_id, body.deal.external_id) if body.deal else None,
    )
    audit_target(request, "work_item_link", link.id, work_item=str(work_item_id))
    return Envelope(data=_link(link))


@router.delete(
    "/devbizops/work-items/{work_item_id}/links/{link_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    name="devbizops.link_delete",
)
async def remove_link(
    request: Request,
    principal: EngineeringDelete,
    session: DbSession,
    work_item_id: Annotated[uuid.UUID, Path()],
    link_id: Annotated[uuid.UUID, Path()],
) -> None:
    """Remove a link (members: the ones they made). A link found in a deal's notes comes back at the next
    recompute while the notes still name the work item."""
    await links_service.remove_link(session, principal=principal, work_item_id=work_item_id, link_id=link_id)
    audit_target(request, "work_item_link", link_id)
