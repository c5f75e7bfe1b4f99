"""Queue tasks of the privacy module: exports run as jobs; audit retention runs nightly per org."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.queue import periodic_per_org, task_storage, tenant_task
from northstar.privacy import service


@tenant_task(service.EXPORT_TASK)
async def export(session: AsyncSession, *, request_id: str) -> str:
    """Write the data-subject export; the request then carries its signed link."""
    request = await service.run_export(session, store=task_storage(), request_id=uuid.UUID(request_id))
    return request.file_key or ""


@periodic_per_org("privacy.audit_retention", cron="23 2 * * *")
async def audit_retention(session: AsyncSession) -> int:
    """Nightly: each org's audit entries older than its retention leave the trail."""
    org_id = await service.current_org(session)
    return await service.apply_audit_retention(session, org_id=org_id)
