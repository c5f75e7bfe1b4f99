"""Live visitor counts in Redis, when configured: one sorted set per site and per page, scored by time.

Without Redis the counts come from PostgreSQL (minute sketches for a whole site, page views for one page);
with it, "23 people are viewing this page" is one ``ZCOUNT`` however busy the site is, and is shared by every
API process. While Redis is unreachable, ``count`` answers ``None`` and the counts come from PostgreSQL again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

import structlog
from redis.exceptions import RedisError

from northstar.socialproof.ingest import EventRow
from northstar.socialproof.service.feed import page_of

log = structlog.get_logger("northstar.socialproof.live")
RETAIN = dt.timedelta(hours=1)  # the longest live window a notification may ask for


def _key(site_id: uuid.UUID, page: str | None) -> str:
    if page is None:
        return f"ns:live:{site_id}"
    return f"ns:live:{site_id}:{hashlib.blake2b(page.encode(), digest_size=12).hexdigest()}"


class RedisVisitors:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def record(self, site_id: uuid.UUID, rows: list[EventRow]) -> None:
        """Note the visitors of these stored events (page views also count for their page)."""
        latest: dict[str, dict[str, float]] = {}
        for row in rows:
            if row.visitor_id is None:
                continue
            at = row.occurred_at.timestamp()
            keys = [_key(site_id, None)]
            if row.event_type == "page_view" and row.url:
                keys.append(_key(site_id, page_of(row.url)))
            for key in keys:
                members = latest.setdefault(key, {})
                members[row.visitor_id] = max(at, members.get(row.visitor_id, 0.0))
        if not latest:
            return
        cutoff = (dt.datetime.now(dt.UTC) - RETAIN).timestamp()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, members in latest.items():
                    pipe.zadd(key, members, gt=True)
                    pipe.zremrangebyscore(key, "-inf", cutoff)
                    pipe.expire(key, int(RETAIN.total_seconds()) + 60)
                await pipe.execute()
        except (RedisError, OSError) as exc:  # the events are stored; Redis only misses them for live counts
            log.warning("redis_unavailable", error=str(exc))

    async def count(self, site_id: uuid.UUID, page: str | None, since: dt.datetime) -> int | None:
        """Visitors since ``since``, or ``None`` when Redis cannot answer (count them in PostgreSQL instead)."""
        try:
            return int(await self.redis.zcount(_key(site_id, page), since.timestamp(), "+inf"))
        except (RedisError, OSError) as exc:
            log.warning("redis_unavailable", error=str(exc))
            return None
