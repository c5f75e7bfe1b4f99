"""``GET /api/v1/audit``: the org's audit trail, newest first (founders and admins)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from northstar.audit import service
from northstar.audit.auth import AuditRead
from northstar.audit.schemas import AuditEventOut
from northstar.core.context import DbSession
from northstar.core.http import ERROR_RESPONSES, Instant, Page, PageEnvelope

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", response_model=PageEnvelope[AuditEventOut], name="audit.list")
async def list_audit_events(
    principal: AuditRead,
    session: DbSession,
    page: Page,
    action: Annotated[str | None, Query(max_length=120, description="action prefix, e.g. `auth.`")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(alias="actorId")] = None,
    target_type: Annotated[str | None, Query(alias="targetType", max_length=60)] = None,
    target_id: Annotated[str | None, Query(alias="targetId", max_length=120)] = None,
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
) -> PageEnvelope[AuditEventOut]:
    filters = service.AuditFilters(
        action=action, actor_id=actor_id, target_type=target_type, target_id=target_id, since=since, until=until
    )
    events, total = await service.list_events(session, filters=filters, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[AuditEventOut.model_validate(e) for e in events], meta=page.meta(total))
