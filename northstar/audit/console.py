"""The console's audit page: the org's trail with the API's filters and paging, and whether its hash chain holds."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, ValidationError

from northstar.audit import service
from northstar.audit.auth import AuditReadPage
from northstar.audit.models import AuditEvent
from northstar.core.console.pages import console_router, field_errors, render
from northstar.core.context import DbSession
from northstar.core.http import Instant, Page, RequestModel

TEMPLATES = Path(__file__).parent / "templates"

router = console_router()


class AuditQuery(RequestModel):
    """The filters of ``GET /api/v1/audit``, under the same names and limits, read from the page's filter form."""

    action: str | None = Field(None, max_length=120)
    actor_id: uuid.UUID | None = Field(None, alias="actorId")
    target_type: str | None = Field(None, alias="targetType", max_length=60)
    target_id: str | None = Field(None, alias="targetId", max_length=120)
    since: Instant | None = Field(None, alias="from")
    until: Instant | None = Field(None, alias="to")


@router.get("/audit", name="console.audit_log")
async def audit_page(
    request: Request,
    principal: AuditReadPage,
    session: DbSession,
    page: Page,
) -> Response:
    """A filter the API would refuse is shown beside its field (422) with the unfiltered chain state."""
    names = ("action", "actorId", "targetType", "targetId", "from", "to")
    values = {name: request.query_params.get(name, "") for name in names}
    errors: dict[str, str] = {}
    events: list[AuditEvent] = []
    total = 0
    try:
        query = AuditQuery.model_validate({name: value for name, value in values.items() if value})
    except ValidationError as exc:
        errors = field_errors(exc)
    else:
        filters = service.AuditFilters(
            action=query.action,
            actor_id=query.actor_id,
            target_type=query.target_type,
            target_id=query.target_id,
            since=query.since,
            until=query.until,
        )
        events, total = await service.list_events(session, filters=filters, offset=page.offset, limit=page.limit)
    report = await service.verify_chain(session, org_id=principal.org_id)
    filtered = urlencode({name: value for name, value in values.items() if value})
    context = {
        "events": events,
        "total": total,
        "page": page,
        "values": values,
        "errors": errors,
        "report": report,
        "base_url": "/app/audit" + (f"?{filtered}" if filtered else ""),
    }
    return render(request, "audit/audit.html", context, status=422 if errors else 200)
