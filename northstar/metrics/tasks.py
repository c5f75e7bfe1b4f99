"""Queue tasks of the metrics module: a nightly recompute, so months and rates roll over without a sync."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bound_org
from northstar.core.queue import periodic_per_org, tenant_task
from northstar.metrics import service


@periodic_per_org("metrics.nightly", cron="17 2 * * *")
async def recompute_nightly(session: AsyncSession) -> int:
    """Every org's metrics once a day: today's point and a new month appear even when nothing synced."""
    await service.refresh(session, org_id=await bound_org(session))
    return 1


@tenant_task("metrics.recompute")
async def recompute_everything(session: AsyncSession) -> int:
    """After a change of rules (reporting currency, time zone, discounts, rates, spend): every customer again."""
    org_id = await bound_org(session)
    await service.refresh(session, org_id=org_id)
    return 1
