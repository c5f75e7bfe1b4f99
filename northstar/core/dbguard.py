"""Never wait forever on PostgreSQL: tell a hung or dead server from a slow query, and answer 503 for it.

A stopped server (SIGSTOP, a frozen VM) still accepts TCP connections and its kernel still acknowledges what is
sent to it, so neither libpq's ``connect_timeout`` nor TCP keepalives notice anything: a query simply never gets
an answer. A server-side ``statement_timeout`` cannot fire either. So every connection the platform opens with
``ServerWatch.connect`` watches its own round trips: one that stays silent for ``stall_seconds`` asks the watch
whether the server still answers (``SELECT 1`` on the watch's own connection, bounded by
``probe_timeout_seconds``). A live server means the query is just slow, and the wait goes on; a silent one means
the connection is closed at once and the caller gets ``ServerNotAnswering``. Concurrent stalls share one probe,
and a "down" verdict is remembered for ``stall_seconds`` so that, meanwhile, every other use of a connection fails
at once instead of waiting again.

``database_problem`` turns what a database outage raises (from psycopg or SQLAlchemy) into the 503 the client
sees: ``database_unavailable`` when the server cannot be reached or went away, ``database_busy`` when it answered
too slowly (statement or lock timeout, no free pooled connection). Both carry ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg
import sqlalchemy.exc
import structlog
from psycopg.abc import PQGen
from psycopg.rows import Row

from northstar.core.http import AppError

log = structlog.get_logger("northstar.db")
RETRY_AFTER_SECONDS = 2
# libpq options every connection gets (unless the URL sets them): a dead peer on a live network is noticed by TCP
# keepalives after 10 + 3 x 5 s idle, and unacknowledged data is given up after 15 s (tcp_user_timeout).
CONNECT_OPTIONS = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}


class DatabaseUnavailable(AppError):
    status, code = 503, "database_unavailable"

    def __init__(self, message: str = "The database is unavailable right now; retry shortly") -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseBusy(AppError):
    status, code = 503, "database_busy"

    def __init__(self, message: str = "The database did not answer in time; retry shortly") -> None:
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class WriteCollided(AppError):
    """Two transactions waited on each other (a deadlock) or could not both stand: PostgreSQL rolled this one back,
    so nothing it did was kept, and the same request made again normally goes through."""

    status, code = 409, "write_conflict"

    def __init__(self) -> None:
        super().__init__(
            "This collided with a change made at the same moment (a sync, say); nothing was changed: try again"
        )


class ServerNotAnswering(psycopg.OperationalError):
    """The server did not answer a round trip, and did not answer the watch's probe either."""


# SQLSTATEs of a server that is going away or not there yet: connection exceptions, shutdowns, "starting up".
_GONE = ("08", "57P01", "57P02", "57P03", "57P04", "57P05", "53300")
_TOO_SLOW = (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)
_COLLIDED = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def database_problem(exc: BaseException) -> AppError | None:
    """The 503 a database outage or timeout answers, the 409 of a write that collided with another, or ``None`` when
    ``exc`` is something else."""
    if isinstance(exc, DatabaseUnavailable | DatabaseBusy):
        return exc
    if isinstance(exc, sqlalchemy.exc.TimeoutError):  # no pooled connection became free in time
        return DatabaseBusy()
    cause = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
    if isinstance(cause, _TOO_SLOW):
        return DatabaseBusy()
    if isinstance(cause, _COLLIDED):
        return WriteCollided()
    if isinstance(cause, psycopg.OperationalError):
        state = cause.sqlstate
        if state is None or state.startswith(_GONE):  # None: raised by the client (connect failed, connection lost)
            return DatabaseUnavailable()
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailable()
    return None


class WatchedConnection(psycopg.AsyncConnection[Row]):
    """A psycopg connection whose waits for the server ask a ``ServerWatch`` when they last too long.

    ``deadline`` instead gives every round trip a hard limit (the watch's own probe connection, which has no one
    to ask). psycopg calls ``wait`` for every exchange with the server; a generator resumed after a timed-out wait
    simply waits again (psycopg's own cancellation does the same).
    """

    watch: ServerWatch | None = None
    deadline: float | None = None

    async def wait(self, gen: PQGen[Any], interval: float = 0.1, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - psycopg's signature
        watch = self.watch
        if timeout is not None or (watch is None and self.deadline is None):
            return await super().wait(gen, interval, timeout)
        if watch is None:
            try:
                return await super().wait(gen, interval, self.deadline)
            except psycopg.errors._WaitTimeout:  # how psycopg says a wait timed out
                pass
            try:  # once more, briefly: an answer that came while the event loop was busy elsewhere is read now
                return await super().wait(gen, interval, interval)
            except psycopg.errors._WaitTimeout:
                self.pgconn.finish()
                raise ServerNotAnswering("the database server did not answer in time") from None
        if watch.known_down():
            self.pgconn.finish()
            raise ServerNotAnswering("the database server is not answering")
        while True:
            try:
                return await super().wait(gen, interval, watch.stall_seconds)
            except psycopg.errors._WaitTimeout:
                if not await watch.alive():
                    self.pgconn.finish()
                    raise ServerNotAnswering("the database server stopped answering") from None


class ServerWatch:
    """Whether one PostgreSQL server answers, asked only when something has waited on it for ``stall_seconds``."""

    def __init__(self, conninfo: str, *, stall_seconds: float, probe_timeout_seconds: float) -> None:
        self.conninfo = conninfo
        self.stall_seconds = stall_seconds
        self.probe_timeout_seconds = probe_timeout_seconds
        self.verdict: bool | None = None
        self.checked_at = 0.0
        self.probing: asyncio.Task[bool] | None = None
        self.probe: WatchedConnection[Any] | None = None

    def _recent(self) -> bool:
        return self.verdict is not None and asyncio.get_running_loop().time() - self.checked_at < self.stall_seconds

    def known_down(self) -> bool:
        """The last probe, a moment ago, found the server silent: fail now rather than wait again."""
        return self.verdict is False and self._recent()

    async def alive(self) -> bool:
        """Ask the server (one probe for all who ask at once; a fresh answer is reused)."""
        if self._recent():
            return bool(self.verdict)
        if self.probing is None:
            self.probing = asyncio.create_task(self._probe())
        return await asyncio.shield(self.probing)

    async def _probe(self) -> bool:
        try:
            if self.probe is None or self.probe.closed:
                self.probe = None
                probe: WatchedConnection[Any] = await asyncio.wait_for(
                    WatchedConnection.connect(self.conninfo, autocommit=True), self.probe_timeout_seconds
                )
                probe.deadline = self.probe_timeout_seconds
                self.probe = probe
            await self.probe.execute("SELECT 1")
            alive = True
        except (psycopg.Error, OSError, TimeoutError) as exc:
            alive = False
            if self.verdict is not False:
                log.warning("database_not_answering", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
            await self._drop_probe()
        finally:
            self.probing = None
        if alive and self.verdict is False:
            log.info("database_answering_again")
        self.verdict, self.checked_at = alive, asyncio.get_running_loop().time()
        return alive

    async def _drop_probe(self) -> None:
        if self.probe is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self.probe.close()
            self.probe = None

    async def connect(self, **kwargs: Any) -> WatchedConnection[Any]:
        """A new connection to the server, watched; fails fast (``ServerNotAnswering``) while the server is silent."""
        if self.known_down():
            raise ServerNotAnswering("the database server is not answering")
        attempt = asyncio.ensure_future(WatchedConnection.connect(self.conninfo, **kwargs))
        try:
            while True:
                done, _ = await asyncio.wait({attempt}, timeout=self.stall_seconds)
                if done:
                    connection: WatchedConnection[Any] = attempt.result()
                    connection.watch = self
                    return connection
                if not await self.alive():
                    raise ServerNotAnswering("the database server is not answering")
        finally:
            if not attempt.done():
                attempt.cancel()
                with contextlib.suppress(BaseException):
                    await attempt

    async def close(self) -> None:
        if self.probing is not None:
            self.probing.cancel()
            with contextlib.suppress(BaseException):
                await self.probing
        await self._drop_probe()
