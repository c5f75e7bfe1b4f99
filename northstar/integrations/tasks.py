"""Queue tasks of the integrations module: syncs, webhook deliveries, and the schedule that keeps data fresh."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.queue import periodic_per_org, queue_app, task_database, tenant_task
from northstar.integrations import sync
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.models import Integration
from northstar.integrations.service import oauth


@queue_app.task(name="integrations.sync", queue="integrations", retry=3)
async def sync_integration(org_id: str, run_id: str) -> None:
    """One sync run (see ``sync.run_sync``); a killed run is picked up again and resumes after its last page."""
    await sync.run_sync(task_database(), org_id=uuid.UUID(org_id), run_id=uuid.UUID(run_id))


@tenant_task("integrations.webhook", queue="integrations")
async def process_webhook(session: AsyncSession, delivery_id: str) -> None:
    await sync.process_webhook(session, delivery_id=uuid.UUID(delivery_id))


@queue_app.task(name="integrations.apply_proposals", queue="integrations", retry=3)
async def apply_proposals(org_id: str) -> int:
    """Approved DevBizOps proposals filed in Jira or Linear (queued when proposals are approved); a retry finds the
    ones already claimed taken, and files none twice."""
    return await sync.apply_proposals(task_database(), org_id=uuid.UUID(org_id))


@periodic_per_org("integrations.schedule", cron="*/5 * * * *")
async def schedule_syncs(session: AsyncSession) -> int:
    """Every five minutes: queue a sync of each active integration whose last one is older than its interval."""
    now = dt.datetime.now(dt.UTC)
    due = [
        integration
        for integration in (await session.scalars(select(Integration).where(Integration.status == "active"))).all()
        if integration.last_sync_at is None
        or now - integration.last_sync_at >= dt.timedelta(minutes=_interval_minutes(integration))
    ]
    for integration in due:
        await sync.request_sync(session, integration=integration, trigger="schedule")
    return len(due)


@periodic_per_org("integrations.purge_oauth_states", cron="23 * * * *")
async def purge_oauth_states(session: AsyncSession) -> int:
    """Hourly: trips to a provider's consent screen over for a day are deleted (``oauth.purge_states``)."""
    return await oauth.purge_states(session)


def _interval_minutes(integration: Integration) -> int:
    """``syncEveryMinutes`` of the integration's config (60 unless set)."""
    settings = CONNECTORS[integration.provider].settings_model.model_validate(integration.config)
    return settings.sync_every_minutes
