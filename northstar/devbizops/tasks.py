"""Queue tasks of DevBizOps: the engineering metrics' recompute after a sync or webhook changed the model, and
nightly, so a new month and today's work in progress appear even when nothing synced; and agent runs."""

from __future__ import annotations

import uuid

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bound_org
from northstar.core.llm import llm_from_settings
from northstar.core.queue import periodic_per_org, task_settings, tenant_task
from northstar.devbizops import service
from northstar.devbizops.service import agents


@tenant_task(service.RECOMPUTE_TASK)
async def recompute(session: AsyncSession) -> int:
    return await service.recompute(session, org_id=await bound_org(session))


@periodic_per_org("devbizops.nightly", cron="23 2 * * *")
async def recompute_nightly(session: AsyncSession) -> int:
    org_id = await bound_org(session)
    if not await service.has_engineering_data(session, org_id=org_id):
        return 0
    return await service.recompute(session, org_id=org_id)


@tenant_task(agents.RUN_TASK, queue="agents")
async def run_agent(session: AsyncSession, run_id: str) -> None:
    """One agent run (``service.agents.execute``), with the configured language model and tracing."""
    settings = task_settings()
    tracer = trace.get_tracer("northstar.devbizops.agents") if settings.otel else trace.NoOpTracer()
    await agents.execute(
        session,
        org_id=await bound_org(session),
        run_id=uuid.UUID(run_id),
        model=llm_from_settings(settings),
        tracer=tracer,
    )
