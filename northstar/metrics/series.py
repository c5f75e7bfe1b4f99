"""The KPI store (``metrics.kpis``, the seed's KPIs table): each source's points, replaced whole when rebuilt.

Every domain (billing, commerce, traffic, product, pipeline) writes its own ``source`` and never another's, so a
domain rebuilds its series without touching the rest. Dashboards, goals, anomalies and exports read the store.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import bulk_insert
from northstar.metrics.models import Kpi


@dataclass(frozen=True)
class Point:
    """One value of a metric: per ``day`` or per month (``grain`` "month", ``day`` the first of the month)."""

    metric: str
    grain: str
    day: dt.date
    value: Decimal | int | float
    dims: str = ""


async def replace_series(session: AsyncSession, *, org_id: uuid.UUID, source: str, points: Iterable[Point]) -> int:
    """Replace every point of ``source`` with ``points``; returns how many were written."""
    await session.execute(delete(Kpi).where(Kpi.org_id == org_id, Kpi.source == source))
    rows = [
        {
            "org_id": org_id,
            "metric": point.metric,
            "grain": point.grain,
            "day": point.day,
            "source": source,
            "dims": point.dims,
            "value": Decimal(str(point.value)),
        }
        for point in points
    ]
    await bulk_insert(session, Kpi, rows)
    return len(rows)
