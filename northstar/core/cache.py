"""In-process caches for hot public reads: a TTL cache whose concurrent misses share one computation.

A thousand widgets asking for the same feed the moment its entry expires cause one database query, not a
thousand (the others wait for the first). ``invalidate`` drops an entry at once; a computation that was
already running when its key was invalidated answers its waiters but is not cached.

With ``stale_if``, an expired value is kept (as many as ``maxsize``) and served again when recomputing it fails
with an error ``stale_if`` accepts (the database is down): stale while the outage lasts, fresh once it is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

from cachetools import LRUCache, TTLCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedCache(Generic[K, V]):
    def __init__(
        self, *, maxsize: int, ttl_seconds: float, stale_if: Callable[[BaseException], bool] | None = None
    ) -> None:
        self.entries: TTLCache[K, V] = TTLCache(maxsize=maxsize, ttl=ttl_seconds)
        self.running: dict[K, asyncio.Future[V]] = {}
        self.generation = 0
        self.stale_if = stale_if
        self.last: LRUCache[K, V] | None = LRUCache(maxsize=maxsize) if stale_if is not None else None

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
            stale = self._stale(key, exc)
            if stale is None:
                future.set_exception(exc)
                raise
            future.set_result(stale)
            return stale
        finally:
            del self.running[key]
        if generation == self.generation:
            self.entries[key] = value
            if self.last is not None:
                self.last[key] = value
        future.set_result(value)
        return value

    def _stale(self, key: K, exc: BaseException) -> V | None:
        if self.last is None or self.stale_if is None or not isinstance(exc, Exception) or not self.stale_if(exc):
            return None
        return self.last.get(key)

    def invalidate(self, key: K | None = None) -> None:
        """Drop one entry, or every entry when ``key`` is None (a changed value is never served stale)."""
        self.generation += 1
        for store in (self.entries, self.last) if self.last is not None else (self.entries,):
            if key is None:
                store.clear()
            else:
                store.pop(key, None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an exception as seen, so a computation nobody else waited on logs no 'never retrieved' warning."""
    if not future.cancelled():
        future.exception()
