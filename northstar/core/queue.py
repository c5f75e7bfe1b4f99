"""Procrastinate on PostgreSQL: jobs are enqueued inside the caller's transaction.

A job row exists exactly when the data it refers to does (it commits or rolls back with the request),
and tenant jobs run under the same row-level security as requests.
"""

from __future__ import annotations

import contextlib
import functools
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import Database, list_tenant_ids, to_libpq_url
from northstar.core.storage import ObjectStore, open_object_store
from northstar.settings import Settings, get_settings


def default_retry() -> procrastinate.RetryStrategy:
    """Exponential backoff (base ** attempt seconds), like the seed's BullMQ defaults but bounded.

    Read from the process's settings when a task is declared: Procrastinate fixes a task's retry strategy then."""
    queue = get_settings().queue
    return procrastinate.RetryStrategy(
        max_attempts=queue.retry_attempts, exponential_wait=queue.retry_base_delay_seconds
    )


class Backoff(procrastinate.BaseRetryStrategy):
    """Exponential backoff with full jitter, capped, retrying only ``transient`` exceptions.

    Jitter spreads retries of jobs that failed together (say, while the database restarted) so they
    do not all come back at the same second.
    """

    def __init__(
        self,
        *,
        max_attempts: int,
        base_seconds: float,
        max_seconds: float,
        transient: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.max_attempts = max_attempts
        self.base_seconds = base_seconds
        self.max_seconds = max_seconds
        self.transient = transient

    def will_retry(self, exception: BaseException, attempts: int) -> bool:
        """``attempts`` counts the runs before this one, as Procrastinate does."""
        return attempts + 1 < self.max_attempts and isinstance(exception, self.transient)

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> procrastinate.RetryDecision | None:
        if not self.will_retry(exception, job.attempts):
            return None
        ceiling = min(self.max_seconds, self.base_seconds * 2**job.attempts)
        delay = timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not a secret
        return procrastinate.RetryDecision(retry_at=datetime.now(UTC) + delay)


# Tasks register on it as their modules are imported: the worker imports the task modules of the installed manifests.
queue_app = procrastinate.App(connector=procrastinate.PsycopgConnector())


class _Runtime:
    """The database the worker's tasks use; set once by ``open_queue``."""

    database: Database | None = None


runtime = _Runtime()


@contextlib.contextmanager
def tasks_using(database: Database) -> Iterator[None]:
    """Inside the block, tasks this process runs itself (not fetched from the queue) use ``database``."""
    previous, runtime.database = runtime.database, database
    try:
        yield
    finally:
        runtime.database = previous


def task_database() -> Database:
    if runtime.database is None:
        raise RuntimeError("queue is not open: call open_queue() first")
    return runtime.database


def task_settings() -> Settings:
    """The worker's settings: the one object its ``Database`` was opened with (as requests see ``create_app``'s)."""
    return task_database().settings


@functools.cache
def task_storage() -> ObjectStore:
    """The worker's object store, opened once from its settings."""
    settings = task_settings()
    return open_object_store(settings.storage_url, data_dir=settings.data_dir, s3_endpoint_url=settings.s3_endpoint_url)


def tenant_task(
    name: str, *, queue: str = "default", retry: bool = True
) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
    """Register ``fn(session, **kwargs)`` as a task that runs inside its org's RLS transaction.

    The job carries ``org_id``; the wrapper opens the tenant transaction, so task code looks exactly
    like service code and commits once at the edge.
    """

    def decorator(fn: Callable[..., Awaitable[Any]]) -> Any:
        @queue_app.task(name=name, queue=queue, retry=default_retry() if retry else False)
        @functools.wraps(fn)
        async def run(org_id: str, **kwargs: Any) -> Any:
            async with task_database().tenant_transaction(org_id=uuid.UUID(org_id)) as session:
                return await fn(session, **kwargs)

        return run

    return decorator


def periodic_per_org(name: str, *, cron: str) -> Callable[[Callable[[AsyncSession], Awaitable[int]]], Any]:
    """A cron task that runs ``fn(session)`` once per org, each in that org's own RLS transaction.

    Only the tenant list is read with the maintenance flag; the work itself sees one tenant at a time.
    """

    def decorator(fn: Callable[[AsyncSession], Awaitable[int]]) -> Any:
        @queue_app.periodic(cron=cron, periodic_id=name)
        @queue_app.task(name=name, queueing_lock=name, retry=default_retry())
        @functools.wraps(fn)
        async def run(timestamp: int) -> int:
            database = task_database()
            done = 0
            for org_id in await list_tenant_ids(database):
                async with database.tenant_transaction(org_id=org_id) as session:
                    done += await fn(session)
            return done

        return run

    return decorator


@queue_app.periodic(cron="* * * * * */10", periodic_id="queue.recover_stalled_jobs")
@queue_app.task(name="queue.recover_stalled_jobs", queueing_lock="queue.recover_stalled_jobs", retry=False)
async def recover_stalled_jobs(timestamp: int) -> int:
    """Jobs of a worker that stopped sending heartbeats (killed, lost) go back to the queue.

    Tasks make their effect idempotent (checkpoints in the same transaction as the data), so a job
    picked up again finishes exactly once.
    """
    stalled = list(
        await queue_app.job_manager.get_stalled_jobs(
            seconds_since_heartbeat=task_settings().queue.stalled_worker_timeout_seconds
        )
    )
    for job in stalled:
        await queue_app.job_manager.retry_job(job)
    return len(stalled)


def worker_options(settings: Settings) -> dict[str, Any]:
    queue = settings.queue
    return {
        "update_heartbeat_interval": queue.heartbeat_seconds,
        "stalled_worker_timeout": queue.stalled_worker_timeout_seconds,
    }


async def enqueue(session: AsyncSession, task: Any, *, org_id: uuid.UUID, **kwargs: Any) -> int:
    """Defer ``task`` on the session's own connection, so it commits with the caller's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    job_id: int = await task.configure(connection=raw.driver_connection).defer_async(org_id=str(org_id), **kwargs)
    return job_id


async def enqueue_named(
    session: AsyncSession,
    name: str,
    *,
    org_id: uuid.UUID,
    schedule_at: datetime | None = None,
    queueing_lock: str | None = None,
    **kwargs: Any,
) -> int:
    """``enqueue`` by task name, for modules whose tasks import the code that queues them; ``schedule_at`` runs it
    no earlier than then, and with a ``queueing_lock`` a job already waiting under it raises ``AlreadyEnqueued``."""
    deferrer = await _deferrer(session, name, schedule_at=schedule_at, queueing_lock=queueing_lock)
    job_id: int = await deferrer.defer_async(org_id=str(org_id), **kwargs)
    return job_id


async def enqueue_named_batch(
    session: AsyncSession, name: str, *, org_id: uuid.UUID, jobs: Sequence[Mapping[str, Any]]
) -> list[int]:
    """``enqueue_named`` for many jobs of one task (each its arguments), in one statement."""
    deferrer = await _deferrer(session, name)
    job_ids: list[int] = await deferrer.batch_defer_async(*({"org_id": str(org_id), **job} for job in jobs))
    return job_ids


async def _deferrer(session: AsyncSession, name: str, **options: Any) -> Any:
    """The task ``name`` deferred on the session's own connection (it commits with the caller's transaction)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return queue_app.configure_task(name, connection=raw.driver_connection, **options)


# Signals: what a module announces ("its metrics were refreshed") and the tasks other modules queue when it does,
# from the installed manifests (``Manifest.reactions``). The announcing module names no listener, so a module
# reacts to another's work without the other importing it.
REACTIONS: dict[str, list[str]] = {}


def register_reactions(reactions: Mapping[str, tuple[str, ...]]) -> None:
    for signal, tasks in reactions.items():
        known = REACTIONS.setdefault(signal, [])
        known.extend(task for task in tasks if task not in known)


async def announce(session: AsyncSession, signal: str, *, org_id: uuid.UUID) -> None:
    """Queue, in the caller's transaction, each task that reacts to ``signal``, with the org's id. A reaction already
    waiting in the queue for this org is not queued twice: when it runs it sees everything announced until then."""
    for name in REACTIONS.get(signal, ()):
        try:
            async with session.begin_nested():  # a refused duplicate must not abort the caller's transaction
                await enqueue_named(session, name, org_id=org_id, queueing_lock=f"{name}:{org_id}")
        except procrastinate.exceptions.AlreadyEnqueued:
            continue


async def open_queue(database: Database, *, max_size: int = 4) -> AsyncConnectionPool:
    """Open the Procrastinate app on its own small pool (the worker's fetch/LISTEN connections)."""
    runtime.database = database
    pool = AsyncConnectionPool(to_libpq_url(database.url), min_size=1, max_size=max_size, open=False)
    await pool.open(wait=True)
    await queue_app.open_async(pool)
    return pool


async def close_queue(pool: AsyncConnectionPool) -> None:
    await queue_app.close_async()
    await pool.close()


async def queue_depth(session: AsyncSession) -> dict[str, int]:
    """Jobs waiting or running, for /metrics and the health check."""
    rows = await session.execute(
        text("SELECT status::text, count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing') GROUP BY status")
    )
    depth = {"todo": 0, "doing": 0}
    depth.update({status: int(count) for status, count in rows.all()})
    return depth


async def worker_liveness(session: AsyncSession, *, stale_after_seconds: float) -> tuple[int, int]:
    """(workers whose heartbeat is younger than ``stale_after_seconds``, workers registered), for the health check.

    Procrastinate workers register themselves and update their heartbeat every ``heartbeat_seconds``; a killed
    worker's row stays, with an ageing heartbeat, until another worker prunes it.
    """
    alive, registered = (
        await session.execute(
            text(
                "SELECT count(*) FILTER (WHERE last_heartbeat > now() - make_interval(secs => :stale)), count(*)"
                " FROM procrastinate_workers"
            ),
            {"stale": stale_after_seconds},
        )
    ).one()
    return int(alive), int(registered)
