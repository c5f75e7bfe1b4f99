"""Platform core: the authenticated API under load against ``/healthz`` of the same server, with one API process and
with one per core, rate limits off and on; the FastAPI full-stack template beside it; login latency; cold start.

One PostgreSQL server for everything in the run (embedded, in a temporary directory, unless
``NORTHSTAR_BENCH_DATABASE_URL`` names a server): Northstar and the template each get a fresh database on it. The
load is spread over ``PRINCIPALS`` founders of as many organizations (each with 20 projects and KPIs), one credential
per request in turn, so with rate limits on (production defaults, counted in Redis) no single caller is over its
limit and the limiter's own cost is what is measured. ``POST /generate`` runs against ``serve`` without a queue worker:
it measures the request (the job is enqueued in its transaction), not the job.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench import fullstack_template
from bench.datasets import GENERATE_BODY
from bench.kpix import MONTHS, _batch_of, _months_ago
from bench.server import (
    PASSWORD,
    environment,
    free_port,
    fresh_database,
    running_server,
    signup,
    stop,
    wait_ready,
    wrk,
)
from northstar.core.db import Database, start_embedded_postgres
from northstar.demo.stripe_account import generate, rates_body
from northstar.metrics import service as metrics
from northstar.metrics.inputs import SourceBatch

PROJECTS = 20
PRINCIPALS = 64
KPI_CUSTOMERS = 200
LOGINS = 20
LIST = "/api/v1/projects?limit=20"
SECRET = secrets.token_urlsafe(32)


@contextmanager
def server_url() -> Iterator[str]:
    """The PostgreSQL server of the run (its ``postgres`` database, as a superuser)."""
    configured = os.environ.get("NORTHSTAR_BENCH_DATABASE_URL")
    if configured:
        yield configured
        return
    directory = Path(tempfile.mkdtemp(prefix="northstar-bench-pg-"))
    try:
        yield start_embedded_postgres(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of the bench's own on a free port, keeping nothing on disk."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("the rate-limited runs need redis-server: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()


def _founder(base_url: str, number: int, rates: dict[str, Any]) -> tuple[str, str]:
    """A founder with ``PROJECTS`` projects, a Stripe connection and FX rates (for KPIs): their token and the
    connection's id."""
    token = signup(base_url, f"bench-{number}@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for project in range(PROJECTS):
            client.post("/api/v1/projects", json={"name": f"Project {project}"}).raise_for_status()
        integration = client.post(
            "/api/v1/integrations",
            json={
                "provider": "stripe",
                "name": "Stripe",
                "credentials": {"apiKey": "sk_test_bench"},
                "config": {},
                "test": False,
            },
        )
        integration.raise_for_status()
        client.put("/api/v1/metrics/fx-rates", json=rates).raise_for_status()
    return token, str(integration.json()["data"]["id"])


async def _store_kpis(database_url: str, integrations: list[str], batch: SourceBatch) -> None:
    """The same generated Stripe account's lines stored and computed in each founder's organization."""
    database = Database(database_url)
    try:
        with psycopg.connect(database_url) as connection:
            orgs: dict[str, uuid.UUID] = dict(
                connection.execute("SELECT id::text, org_id FROM integrations.integrations").fetchall()
            )
        for integration in integrations:
            org_id = orgs[integration]
            async with database.tenant_transaction(org_id=org_id) as session:
                await metrics.store_batch(session, org_id=org_id, integration_id=uuid.UUID(integration), batch=batch)
                await metrics.recompute(session, org_id=org_id)
    finally:
        await database.dispose()


def _seed(base_url: str, database_url: str) -> list[str]:
    """``PRINCIPALS`` founders (signed up in parallel, as argon2 is slow by design); their tokens."""
    account = generate(customers=KPI_CUSTOMERS, months=MONTHS, seed=7, start=_months_ago(MONTHS))
    rates = rates_body(account.fx_rates)
    with ThreadPoolExecutor(4) as pool:
        founders = list(pool.map(lambda number: _founder(base_url, number, rates), range(PRINCIPALS)))
    asyncio.run(_store_kpis(database_url, [integration for _, integration in founders], _batch_of(account)))
    return [token for token, _ in founders]


def _script(directory: Path, name: str, tokens: list[str], *, method: str = "GET", body: str | None = None) -> Path:
    """A wrk script sending each request with the next token in turn (and the body, for POST)."""
    listed = ", ".join(f'"{token}"' for token in tokens)
    lines = [f"local tokens = {{{listed}}}", "local next_token = 0", f'wrk.method = "{method}"']
    if body is not None:
        lines += [f"wrk.body = '{body}'", 'wrk.headers["Content-Type"] = "application/json"']
    lines += [
        "request = function()",
        "  next_token = next_token % #tokens + 1",
        '  wrk.headers["Authorization"] = "Bearer " .. tokens[next_token]',
        "  return wrk.format()",
        "end",
    ]
    path = directory / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _load(base_url: str, scripts: dict[str, Path], seconds: int, label: str) -> dict[str, Any]:
    """``/healthz``, the list, ``POST /generate`` and the KPI dashboard, one after another, on one server."""
    baseline = wrk(f"{base_url}/healthz", seconds=seconds)
    listing = wrk(f"{base_url}{LIST}", seconds=seconds, script=scripts["list"])
    enqueue = wrk(f"{base_url}/api/v1/generate", seconds=seconds, script=scripts["generate"])
    dashboard = wrk(f"{base_url}/api/v1/dashboard", connections=32, seconds=seconds, script=scripts["dashboard"])
    return {
        f"{label}_healthz_rps": baseline.requests_per_second,
        f"{label}_healthz_p99_ms": baseline.p99_ms,
        f"{label}_projects_rps": listing.requests_per_second,
        f"{label}_projects_p99_ms": listing.p99_ms,
        f"{label}_projects_errors": listing.non_2xx,
        f"{label}_projects_to_healthz": listing.requests_per_second / baseline.requests_per_second,
        f"{label}_generate_rps": enqueue.requests_per_second,
        f"{label}_generate_p99_ms": enqueue.p99_ms,
        f"{label}_generate_errors": enqueue.non_2xx,
        f"{label}_dashboard32_rps": dashboard.requests_per_second,
        f"{label}_dashboard32_p99_ms": dashboard.p99_ms,
        f"{label}_dashboard32_errors": dashboard.non_2xx,
    }


def _template(database_server: str, listing: dict[str, float], seconds: int) -> dict[str, Any]:
    clone, reason = fullstack_template.source()
    if clone is not None and make_url(database_server).host is None:
        clone, reason = None, "its settings take a TCP database URL: set NORTHSTAR_BENCH_DATABASE_URL"
    if clone is None:
        print(f"full-stack template skipped: {reason}", file=sys.stderr)
        return {"template": f"skipped: {reason}"}
    results: dict[str, Any] = {}
    with fullstack_template.running_template(clone, database_server) as template:
        headers = {"Authorization": f"Bearer {template.token}"}
        results["template_ref"] = fullstack_template.ref()
        for connections in (16, 64):
            items = wrk(
                f"{template.base_url}/api/v1/items/?limit=20", connections=connections, seconds=seconds, headers=headers
            )
            results |= {
                f"template_items{connections}_rps": items.requests_per_second,
                f"template_items{connections}_p99_ms": items.p99_ms,
                f"template_items{connections}_errors": items.non_2xx,
                f"projects{connections}_to_template": listing[f"projects{connections}"] / items.requests_per_second,
            }
    return results


def _login_latency(base_url: str) -> dict[str, Any]:
    """Sequential logins: argon2id dominates by design, so this is a floor for one core."""
    signup(base_url, "bench-login@example.com")
    durations = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(LOGINS):
            started = time.perf_counter()
            client.post(
                "/api/v1/auth/login", json={"email": "bench-login@example.com", "password": PASSWORD}
            ).raise_for_status()
            durations.append((time.perf_counter() - started) * 1000)
    return {"login_p50_ms": statistics.median(durations), "login_max_ms": max(durations)}


def _cold_starts(runs: int = 3) -> dict[str, Any]:
    """``northstar run`` on an existing data dir until ``/readyz`` is 200 (the first, initdb run, is separate)."""
    data_dir = Path(tempfile.mkdtemp(prefix="northstar-bench-cold-"))
    try:
        timings = []
        for _ in range(runs + 1):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "northstar", "run"],
                env=environment(data_dir, port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                timings.append(wait_ready(f"http://127.0.0.1:{port}", process))
            finally:
                stop(process)
        return {"first_start_s": timings[0], "cold_start_s": statistics.median(timings[1:])}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(seconds: int = 10) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0], "api_processes_per_core": cores}
    with (
        server_url() as database_server,
        tempfile.TemporaryDirectory() as scratch,
        fresh_database(database_server, "bench_platform") as database_url,
    ):
        common = {"DATABASE_URL": database_url, "NORTHSTAR_AUTH__SECRET_KEY": SECRET}
        with running_server("serve", None, args=("--workers", "1"), **common) as server:
            tokens = _seed(server.base_url, database_url)
            scripts = {
                "list": _script(Path(scratch), "list", tokens),
                "generate": _script(Path(scratch), "generate", tokens, method="POST", body=GENERATE_BODY),
                "dashboard": _script(Path(scratch), "dashboard", tokens),
            }
            list16 = wrk(f"{server.base_url}{LIST}", connections=16, seconds=seconds, script=scripts["list"])
            results |= {
                "one_process_projects16_rps": list16.requests_per_second,
                "one_process_projects16_p99_ms": list16.p99_ms,
            }
            results |= _load(server.base_url, scripts, seconds, "one_process")
            results |= _login_latency(server.base_url)
        with running_server("serve", None, args=("--workers", str(cores)), **common) as server:
            results |= _load(server.base_url, scripts, seconds, "per_core")
        with (
            private_redis() as redis_url,
            running_server(
                "serve",
                None,
                args=("--workers", str(cores)),
                **common,
                REDIS_URL=redis_url,
                NORTHSTAR_RATE_LIMIT__ENABLED="true",
            ) as server,
        ):
            results |= _load(server.base_url, scripts, seconds, "per_core_limits_on")
        listing = {
            "projects16": results["one_process_projects16_rps"],
            "projects64": results["one_process_projects_rps"],
        }
        results |= _template(database_server, listing, seconds)
    results |= _cold_starts()
    results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:40} {value:14,.2f}" if isinstance(value, float) else f"{name:40} {value}")
