"""Queue tasks of the webhooks module: one attempt of a delivery (each retry is a job scheduled for its time, so the
schedule and the attempt count live in ``webhook_deliveries``), and the e-mail to admins when an endpoint is turned
off."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bound_org
from northstar.core.queue import Backoff, queue_app, task_database, tenant_task
from northstar.webhooks.service import delivery
from northstar.webhooks.service.emission import DELIVER

# A job that fails itself (the database away, no connection free) is tried again: what it finished is skipped, what
# it had marked is sent again under the same message id, which receivers deduplicate.
JOB_RETRY = Backoff(max_attempts=6, base_seconds=5.0, max_seconds=600.0)


@queue_app.task(name=DELIVER, queue="webhooks", retry=JOB_RETRY)
async def deliver(org_id: str, delivery_ids: list[str], manual: bool = False) -> None:
    """One attempt of each delivery (those of one emission, or one retry); an outcome schedules the next attempt
    (the delivery's own retry schedule, not the queue's)."""
    await delivery.deliver(
        task_database(),
        org_id=uuid.UUID(org_id),
        delivery_ids=[uuid.UUID(delivery_id) for delivery_id in delivery_ids],
        manual=manual,
    )


@tenant_task(delivery.NOTIFY_DISABLED)
async def notify_disabled(session: AsyncSession, endpoint_id: str) -> int:
    """E-mail the admins about an endpoint turned off (in-app messages were written when it was)."""
    return await delivery.email_admins_disabled(
        session, org_id=await bound_org(session), endpoint_id=uuid.UUID(endpoint_id)
    )
