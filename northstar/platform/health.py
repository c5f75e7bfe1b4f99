"""``GET /`` (service and dependency health, seed 003), ``/healthz``, ``/readyz`` and the Prometheus ``/metrics``."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from northstar.core.db import Database, set_tenant_context
from northstar.core.http import ORJSONResponse
from northstar.core.observability import Metrics
from northstar.core.queue import queue_depth, worker_liveness
from northstar.settings import Settings

SERVICE_VERSION = version("northstar")
log = structlog.get_logger("northstar.health")

router = APIRouter(tags=["health"])
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: {"description": "A dependency is down or not ready"}}


@router.get("/", name="health.service", responses=_UNAVAILABLE)
async def service_health(request: Request) -> Response:
    """Service, version and the state of each dependency: 503 when the database is down (nothing works), 200
    with ``status: degraded`` when Redis is down or no worker sends heartbeats (the API still serves)."""
    settings: Settings = request.app.state.settings
    checks: dict[str, Any] = {
        **await _database_status(request.app.state.database, stale_after=settings.queue.stalled_worker_timeout_seconds),
        "redis": await _redis_status(request.app.state.redis),
    }
    if checks["database"] != "ok" or checks["queue"] != "ok":
        status = "error"
    elif checks["redis"] == "error" or checks["worker"] != "ok":
        status = "degraded"
    else:
        status = "ok"
    body = {"data": {"service": "northstar", "version": SERVICE_VERSION, "status": status, **checks}}
    return ORJSONResponse(body, status_code=503 if status == "error" else 200)


@router.get("/healthz", name="health.live")
async def liveness() -> dict[str, Any]:
    return {"data": {"status": "ok"}}


@router.get("/readyz", name="health.ready", responses=_UNAVAILABLE)
async def readiness(request: Request) -> Response:
    """Ready when the database answers and its schema is at the code's migration head (``app.state.migration_head``,
    read from the migration files when the app starts)."""
    database: Database = request.app.state.database
    try:
        async with database.engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM public.alembic_version"))
    except Exception:
        current = None
    expected: str | None = request.app.state.migration_head
    ready = current is not None and current == expected
    body = {"data": {"ready": ready, "migration": current, "expectedMigration": expected}}
    return ORJSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", name="health.metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    database: Database = request.app.state.database
    for state, value in database.pool_status().items():
        metrics.db_pool.labels(state).set(value)
    try:
        async with database.sessionmaker() as session, session.begin():
            await set_tenant_context(session)
            for status, count in (await queue_depth(session)).items():
                metrics.queue_depth.labels(status).set(count)
    except Exception:
        metrics.queue_depth.labels("todo").set(-1)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _redis_status(client: Any) -> str:
    if client is None:
        return "disabled"
    try:
        await client.ping()
        return "ok"
    except Exception:
        return "error"


async def _database_status(database: Database, *, stale_after: float) -> dict[str, Any]:
    """The database, the queue's tables and the workers' heartbeats, in one transaction.

    ``worker`` is ``ok`` when some worker's heartbeat is recent, ``stale`` when workers are registered but none is
    (killed, hung, or cut off), ``none`` when none is registered, ``unknown`` when the database cannot tell.
    """
    status: dict[str, Any] = {"database": "error", "queue": "error", "worker": "unknown", "workers": 0}
    try:
        async with database.sessionmaker() as session, session.begin():
            await set_tenant_context(session)
            status["database"] = "ok"
            await queue_depth(session)
            alive, registered = await worker_liveness(session, stale_after_seconds=stale_after)
            status.update(queue="ok", worker="ok" if alive else "stale" if registered else "none", workers=alive)
    except Exception as exc:
        log.warning("health_check_failed", error=str(getattr(exc, "orig", None) or exc).splitlines()[0][:300])
    return status
