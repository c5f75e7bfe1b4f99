"""Queue tasks of the alerts module: evaluation after each metrics refresh (the manifest's reaction to
``metrics.refreshed``) and every 15 minutes, deliveries with retries and backoff, and the daily digests."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.alerts.service import delivery, evaluation, firing
from northstar.core.db import bound_org
from northstar.core.queue import Backoff, periodic_per_org, queue_app, task_database, tenant_task
from northstar.settings import get_settings

_config = get_settings().alerts  # Procrastinate fixes a task's retry strategy when the task is declared
RETRY = Backoff(
    max_attempts=_config.delivery_attempts,
    base_seconds=_config.retry_base_seconds,
    max_seconds=_config.retry_max_seconds,
    transient=(delivery.DeliveryFailed,),
)


@tenant_task("alerts.evaluate", retry=False)
async def evaluate(session: AsyncSession) -> int:
    """After a metrics refresh committed: the rules against the new numbers (the schedule is the retry)."""
    return await evaluation.evaluate(session, org_id=await bound_org(session))


@periodic_per_org("alerts.evaluate_scheduled", cron="*/15 * * * *")
async def evaluate_scheduled(session: AsyncSession) -> int:
    """What changes without a refresh: integrations falling behind or failing, goals' dates passing."""
    return await evaluation.evaluate(session, org_id=await bound_org(session))


@periodic_per_org("alerts.send_digests", cron="*/5 * * * *")
async def send_digests(session: AsyncSession) -> int:
    """Members' e-mails collected for a digest go out once its hour has come."""
    return await delivery.send_digests(session, org_id=await bound_org(session))


@queue_app.task(name=firing.DELIVER, retry=RETRY)
async def deliver(org_id: str, delivery_id: str) -> None:
    """One try of one delivery; a failed try is retried with exponential backoff and jitter."""
    await delivery.deliver(
        task_database(),
        org_id=uuid.UUID(org_id),
        delivery_id=uuid.UUID(delivery_id),
        max_attempts=RETRY.max_attempts,
    )
