"""In-process caches for hot public reads: a TTL cache whose concurrent misses share one computation.

A thousand widgets asking for the same feed the moment its entry expires cause one database query, not a
thousand (the others wait for the first). ``invalidate`` drops an entry at once; a computation that was
already running when its key was invalidated answers its waiters but is not cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from cachetools import TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCache(Generic[K, V]):
    def __init__(self, *, maxsize: int, ttl_seconds: float) -> None:
        self.entries: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=ttl_seconds)
        self.running: dict[K, asyncio.Future[V]] = {}
        self.generation = 0

    def peek(self, key: K) -> V | None:
        return self.entries.get(key)

    async def get(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        try:
            return self.entries[key]
        except KeyError:
            pass
        running = self.running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self.running[key] = future
        generation = self.generation
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            del self.running[key]
        if generation == self.generation:
            self.entries[key] = value
        future.set_result(value)
        return value

    def invalidate(self, key: K | None = None) -> None:
        """Drop one entry, or every entry when ``key`` is None."""
        self.generation += 1
        if key is None:
            self.entries.clear()
        else:
            self.entries.pop(key, None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an exception as seen, so a computation nobody else waited on logs no 'never retrieved' warning."""
    if not future.cancelled():
        future.exception()
