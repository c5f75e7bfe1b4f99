"""Reading what the platform stored, as a test checks it: rows under one tenant's row-level security."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from northstar.core.db import Database


async def rows_of(
    database: Database, org_id: uuid.UUID | None, sql: str, *, user_id: uuid.UUID | None = None, **params: Any
) -> list[Any]:
    """The rows ``sql`` reads in ``org_id``'s tenant (None: no tenant, or only ``user_id``'s own rows)."""
    async with database.tenant_transaction(org_id=org_id, user_id=user_id) as session:
        return list((await session.execute(text(sql), params)).all())
