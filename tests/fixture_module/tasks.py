"""One queue task, registered when the manifest is installed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.queue import tenant_task


@tenant_task("fixture_notes.tidy")
async def tidy(session: AsyncSession) -> None:
    """Nothing to tidy: the task exists to be found in the queue."""
