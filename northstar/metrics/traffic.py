"""Traffic metrics (source ``traffic``): sessions, users, new users, conversions and conversion rate, from GA4 days.

Every stored row is one day of one channel (``models.Traffic``). Daily and monthly points are sums of those rows, for
all channels together (``dims`` "") and for each channel (``dims`` "channel=<name>"); the conversion rate is
conversions / sessions * 100, kept to four decimals, and has no point where there were no sessions. Days are GA4's
own (the property's time zone), so they are not moved into the reporting time zone. ``users`` are summed like the
rest: a person who visits on three days, or through two channels, counts each time, so monthly users are user-days
rather than distinct people (docs/integrations/google_analytics.md).
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.metrics import engine
from northstar.metrics.series import Point, replace_series

SOURCE = "traffic"
METRICS = ("sessions", "users", "new_users", "conversions", "conversion_rate")

_SUMS = text("""
    WITH rows AS (
        SELECT day, date_trunc('month', day)::date AS month, channel, sessions, users, new_users, conversions
        FROM metrics.traffic WHERE org_id = :org
    ), sums AS (
        SELECT 'day' AS grain, day, channel, grouping(channel) = 1 AS every_channel, sum(sessions) AS sessions,
               sum(users) AS users, sum(new_users) AS new_users, sum(conversions) AS conversions
        FROM rows GROUP BY GROUPING SETS ((day, channel), (day))
        UNION ALL
        SELECT 'month', month, channel, grouping(channel) = 1, sum(sessions), sum(users), sum(new_users),
               sum(conversions)
        FROM rows GROUP BY GROUPING SETS ((month, channel), (month))
    )
    SELECT grain, day, channel, every_channel, sessions, users, new_users, conversions,
           round(conversions * 100 / nullif(sessions, 0), 4) AS conversion_rate
    FROM sums ORDER BY grain, every_channel DESC, day, channel""")


async def rebuild(session: AsyncSession, org_id: uuid.UUID, policy: engine.Policy) -> str | None:
    """Replace the traffic series with sums of the stored days (daily points first, then monthly)."""
    rows = (await session.execute(_SUMS, {"org": org_id})).mappings().all()
    points = [
        Point(
            metric, row["grain"], row["day"], row[metric], "" if row["every_channel"] else f"channel={row['channel']}"
        )
        for row in rows
        for metric in METRICS
        if row[metric] is not None
    ]
    await replace_series(session, org_id=org_id, source=SOURCE, points=points)
    return None  # nothing of theirs needs a rate
