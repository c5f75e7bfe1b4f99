"""The reindex of one org's search documents, queued (importing this module also installs the index's upkeep on
every flush: ``indexing``)."""

from __future__ import annotations

import uuid

from northstar.core.queue import default_retry, queue_app, task_database
from northstar.core.search import indexing


@queue_app.task(name="core.search_reindex", retry=default_retry())
async def search_reindex(org_id: str) -> int:
    return await indexing.reindex(task_database(), uuid.UUID(org_id))
