"""Queue tasks of DevBizOps: the engineering metrics' recompute after a sync or webhook changed the model, and
nightly, so a new month and today's work in progress appear even when nothing synced."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bound_org
from northstar.core.queue import periodic_per_org, tenant_task
from northstar.devbizops import service


@tenant_task(service.RECOMPUTE_TASK)
async def recompute(session: AsyncSession) -> int:
    return await service.recompute(session, org_id=await bound_org(session))


@periodic_per_org("devbizops.nightly", cron="23 2 * * *")
async def recompute_nightly(session: AsyncSession) -> int:
    org_id = await bound_org(session)
    if not await service.has_engineering_data(session, org_id=org_id):
        return 0
    return await service.recompute(session, org_id=org_id)
