"""Fixed-window rate limits: Redis when configured (shared by all replicas), in-process otherwise.

While Redis cannot be reached, limits are counted in-process (per replica) rather than not at all, and Redis is
tried again every ``REDIS_RETRY_SECONDS``: a Redis outage neither fails requests nor lifts the limits.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import structlog
from redis.exceptions import RedisError

from northstar.core.http import TooManyRequests

log = structlog.get_logger("northstar.ratelimit")
REDIS_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int


class RateLimiter(ABC):
    @abstractmethod
    async def hit(self, key: str, *, limit: int, window_seconds: int) -> Decision: ...

    async def enforce(self, key: str, *, limit: int, window_seconds: int = 60) -> None:
        decision = await self.hit(key, limit=limit, window_seconds=window_seconds)
        if not decision.allowed:
            raise TooManyRequests(
                "Too many requests; slow down and retry later",
                details={"retryAfter": decision.retry_after},
                headers={"Retry-After": str(decision.retry_after)},
            )

    async def close(self) -> None:
        return None


class MemoryRateLimiter(RateLimiter):
    """Single-process limiter; counts reset when the window rolls over."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._windows: dict[str, tuple[int, int]] = {}
        self._max_keys = max_keys

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> Decision:
        now = time.time()
        window = int(now // window_seconds)
        slot = f"{key}:{window}"
        if len(self._windows) >= self._max_keys:
            self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        _, count = self._windows.get(slot, (window, 0))
        count += 1
        self._windows[slot] = (window, count)
        retry_after = max(1, math.ceil((window + 1) * window_seconds - now))
        return Decision(count <= limit, max(0, limit - count), retry_after)


class RedisRateLimiter(RateLimiter):
    """INCR + EXPIRE in one pipeline: one round trip per check."""

    def __init__(self, client: Any) -> None:
        self._redis = client
        self._fallback = MemoryRateLimiter()
        self._retry_at = 0.0  # while Redis is unreachable: when to try it again

    async def hit(self, key: str, *, limit: int, window_seconds: int) -> Decision:
        if time.monotonic() < self._retry_at:
            return await self._fallback.hit(key, limit=limit, window_seconds=window_seconds)
        try:
            return await self._redis_hit(key, limit=limit, window_seconds=window_seconds)
        except (RedisError, OSError) as exc:
            log.warning("redis_unavailable", error=str(exc), retryInSeconds=REDIS_RETRY_SECONDS)
            self._retry_at = time.monotonic() + REDIS_RETRY_SECONDS
            return await self._fallback.hit(key, limit=limit, window_seconds=window_seconds)

    async def _redis_hit(self, key: str, *, limit: int, window_seconds: int) -> Decision:
        now = time.time()
        window = int(now // window_seconds)
        slot = f"ns:rl:{key}:{window}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(slot)
            pipe.expire(slot, window_seconds + 1)
            count, _ = await pipe.execute()
        retry_after = max(1, math.ceil((window + 1) * window_seconds - now))
        return Decision(int(count) <= limit, max(0, limit - int(count)), retry_after)

    async def close(self) -> None:
        await self._redis.aclose()
