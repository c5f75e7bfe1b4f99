"""Queue tasks of the social proof module: partitions ahead, sketches folded, old rollups and raw months dropped."""

from __future__ import annotations

from northstar.core.queue import queue_app, task_database
from northstar.socialproof.service import events


@queue_app.periodic(cron="11 3 * * *", periodic_id="socialproof.event_partitions")
@queue_app.task(name="socialproof.event_partitions", queueing_lock="socialproof.event_partitions", retry=3)
async def create_event_partitions(timestamp: int) -> int:
    """Daily: next months' event partitions exist long before their first event (idempotent)."""
    async with task_database().engine.begin() as connection:
        return await events.ensure_event_partitions(connection)
