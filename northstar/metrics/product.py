"""Product metrics (source ``product``): active users, WAU, MAU, events and stickiness, from product events.

Every stored event (``models.ProductEvent``, one per insert id) falls on a day of the reporting time zone. For every
day from the first event's to the last event's: ``active_users`` (DAU) are the distinct ids with an event that day,
``wau`` and ``mau`` those with an event in the 7 and 28 days ending that day (rolling windows: 28 days hold four of
each weekday, so MAU does not swing with the calendar), ``events`` counts the events, and ``stickiness`` is
100 * DAU / MAU, kept to four decimals (no point when MAU is 0). Events without a distinct id count as events but not
as users. Every connected product analytics source is counted together.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import engine
from northstar.metrics.series import Point, replace_series

SOURCE = "product"
METRICS = ("active_users", "wau", "mau", "events", "stickiness")

_DAYS = text("""
    WITH events AS (
        SELECT distinct_id, (occurred_at AT TIME ZONE CAST(:zone AS text))::date AS day
        FROM metrics.product_events WHERE org_id = :org
    ), active AS (
        SELECT DISTINCT distinct_id, day FROM events WHERE distinct_id <> ''
    ), counted AS (
        SELECT day, count(*) AS events FROM events GROUP BY day
    ), span AS (
        SELECT generate_series(min(day), max(day), interval '1 day')::date AS day FROM counted
    ), users AS (
        SELECT s.day, count(DISTINCT a.distinct_id) FILTER (WHERE a.day = s.day) AS active_users,
               count(DISTINCT a.distinct_id) FILTER (WHERE a.day > s.day - 7) AS wau,
               count(DISTINCT a.distinct_id) AS mau
        FROM span s LEFT JOIN active a ON a.day > s.day - 28 AND a.day <= s.day
        GROUP BY s.day
    )
    SELECT u.day, u.active_users, u.wau, u.mau, coalesce(c.events, 0) AS events,
           round(u.active_users * 100.0 / nullif(u.mau, 0), 4) AS stickiness
    FROM users u LEFT JOIN counted c ON c.day = u.day ORDER BY u.day""")


async def rebuild(session: AsyncSession, org_id: uuid.UUID, policy: engine.Policy) -> str | None:
    """Replace the product series with the daily counts of the stored events."""
    rows = (await session.execute(_DAYS, {"org": org_id, "zone": policy.timezone})).mappings().all()
    points = [
        Point(metric, "day", row["day"], row[metric]) for row in rows for metric in METRICS if row[metric] is not None
    ]
    await replace_series(session, org_id=org_id, source=SOURCE, points=points)
    return None  # nothing of theirs needs a rate
