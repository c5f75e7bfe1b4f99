"""Queue tasks of the reports module: making a report, publishing the investor dashboards DevBizOps writes, and
the schedule that makes reports on time."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations
from northstar.core.db import bound_org
from northstar.core.llm import llm_from_settings
from northstar.core.queue import (
    periodic_per_org,
    queue_app,
    task_database,
    task_settings,
    task_storage,
    tenant_task,
)
from northstar.reports.service import generation, publishing, schedules


@queue_app.task(name="reports.generate", queue="reports", retry=3)
async def generate_report(org_id: str, report_id: str) -> None:
    """Write and render one report; a failure is recorded on the report before the job is retried."""
    database, org, report = task_database(), uuid.UUID(org_id), uuid.UUID(report_id)
    try:
        async with database.tenant_transaction(org_id=org) as session:
            found = await organizations.get_organization(session, org_id=org)
            await generation.generate(
                session,
                report_id=report,
                store=task_storage(),
                model=llm_from_settings(task_settings()),
                org_name=found.name,
                public_url=task_settings().public_url,
            )
    except Exception as exc:
        async with database.tenant_transaction(org_id=org) as session:
            await generation.mark_failed(session, report_id=report, error=f"{type(exc).__name__}: {exc}"[:500])
        raise


@tenant_task("reports.publish_dashboards", queue="reports")
async def publish_dashboards(session: AsyncSession) -> int:
    """The investor dashboards DevBizOps' agent wrote, published (queued when one is written)."""
    settings = task_settings()
    return await publishing.publish_written(
        session, org_id=await bound_org(session), store=task_storage(), public_url=settings.public_url
    )


@periodic_per_org("reports.run_schedules", cron="*/15 * * * *")
async def run_schedules(session: AsyncSession) -> int:
    """Every quarter of an hour: queue each org's reports whose local time has come (unless schedules are off)."""
    if not task_settings().reports.scheduled:
        return 0
    return await schedules.run_due(session, org_id=await bound_org(session), now=dt.datetime.now(dt.UTC))
