"""Queue tasks of the social proof module: partitions ahead, sketches folded, old rollups and raw months archived
and dropped, archives restored and restores expired."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import list_tenant_ids
from northstar.core.queue import periodic_per_org, queue_app, task_database, task_settings, task_storage, tenant_task
from northstar.socialproof.service import abtests, archives, billing, events, restores, rollups


@queue_app.periodic(cron="11 3 * * *", periodic_id="socialproof.event_partitions")
@queue_app.task(name="socialproof.event_partitions", queueing_lock="socialproof.event_partitions", retry=3)
async def create_event_partitions(timestamp: int) -> int:
    """Daily: next months' event partitions exist long before their first event (idempotent)."""
    async with task_database().engine.begin() as connection:
        return await events.ensure_event_partitions(connection)


@queue_app.periodic(cron="* * * * *", periodic_id="socialproof.fold_visitor_hashes")
@queue_app.task(name="socialproof.fold_visitor_hashes", queueing_lock="socialproof.fold_visitor_hashes", retry=False)
async def fold_visitor_hashes(timestamp: int) -> int:
    """Every minute: each org's new visitor hashes go into its sketches; then frozen months count as rolled up."""
    database = task_database()
    started = dt.datetime.now(dt.UTC)
    folded = 0
    for org_id in await list_tenant_ids(database):
        while True:
            async with database.tenant_transaction(org_id=org_id) as session:
                batch = await rollups.fold_visitor_hashes(session)
            folded += batch
            if batch < rollups.FOLD_BATCH:
                break
    async with database.engine.begin() as connection:
        await rollups.mark_rolled_up(connection, fold_started=started)
    return folded


@queue_app.periodic(cron="37 4 * * *", periodic_id="socialproof.retention")
@queue_app.task(name="socialproof.retention", queueing_lock="socialproof.retention", retry=3)
async def apply_retention(timestamp: int) -> int:
    """Daily: minute rollups past their week, raw months past retention (rollups complete, archived and verified),
    old visitor salts."""
    config = task_settings().socialproof
    database = task_database()
    removed = 0
    for org_id in await list_tenant_ids(database):
        async with database.tenant_transaction(org_id=org_id) as session:
            removed += await rollups.prune_minute_rollups(session, keep_days=config.minute_rollup_retention_days)
    async with database.engine.begin() as connection:
        archiver = functools.partial(
            archives.archive_month, store=task_storage(), row_group_rows=config.archive_row_group_rows
        )
        dropped = await rollups.drop_expired_months(
            connection, retention_days=config.raw_retention_days, archivers=[archiver]
        )
        removed += len(dropped)
        removed += await rollups.delete_old_salts(connection)
    return removed


@queue_app.periodic(cron="*/5 * * * *", periodic_id="socialproof.ab_test_winners")
@queue_app.task(name="socialproof.ab_test_winners", queueing_lock="socialproof.ab_test_winners", retry=False)
async def choose_ab_test_winners(timestamp: int) -> int:
    """Every 5 minutes: running tests get their sample-ratio flag; those with auto-winner complete once a winner
    is significant after the minimum sample (the notification then shows it); finished tests' visitors are
    forgotten. Returns how many tests completed."""
    database = task_database()
    completed = 0
    for org_id in await list_tenant_ids(database):
        async with database.tenant_transaction(org_id=org_id) as session:
            completed += len(await abtests.check_running_tests(session, org_id=org_id))
            await abtests.prune_finished_visitors(session, org_id=org_id)
    return completed


@tenant_task(restores.RESTORE_TASK, retry=False)
async def restore_archive(session: AsyncSession, restore_id: str) -> int:
    """One org's rows of a period of an archive, back in ``restored_events`` (a failure is recorded on the restore)."""
    return await restores.run_restore(session, restore_id=uuid.UUID(restore_id), store=task_storage())


@periodic_per_org("socialproof.expire_restores", cron="23 * * * *")
async def expire_restores(session: AsyncSession) -> int:
    """Hourly: restored events past their restore's days are dropped."""
    return await restores.expire_restores(session)


@queue_app.periodic(cron="*/5 * * * *", periodic_id="socialproof.check_quotas")
@queue_app.task(name="socialproof.check_quotas", queueing_lock="socialproof.check_quotas", retry=False)
async def check_quotas(timestamp: int) -> int:
    """Every five minutes: each org with sites measured against its plan's visitor quota (alerts, quota reached)."""
    database = task_database()
    alerts = 0
    for org_id in await list_tenant_ids(database):
        async with database.tenant_transaction(org_id=org_id) as session:
            if await billing.has_sites(session):
                alerts += len(await billing.check_quota(session, org_id=org_id))
    return alerts
