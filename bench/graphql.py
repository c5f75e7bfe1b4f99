"""GraphQL (issue 14): ``sites { notifications }`` for a page of 50 sites, beside the REST routes, in the same run.

Runs a real ``northstar serve`` (API only, one process) on a fresh database of the run's PostgreSQL server
(``NORTHSTAR_BENCH_DATABASE_URL``, else an embedded one, as bench/platform.py). One founder has 50 sites with 3
notifications each. Timed, one request after another from one client (latency, not throughput), after a warm-up:

* GraphQL: ``sites(limit: 50) { items { id name domain notifications { id name type status } } }``, one request;
* baseline: REST's list of the same 50 sites (``GET /api/v1/sites?limit=50``), one request, without notifications;
* what REST costs for the same data: that list plus each site's ``GET /sites/{id}/notifications`` (51 requests).

Target: GraphQL p95 ≤ 30 ms.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from bench.platform import server_url
from bench.server import fresh_database, running_server, signup

SITES = 50
NOTIFICATIONS = 3
WARMUP = 10
REQUESTS = 200
REST_PAGES = 30  # the 51-request REST equivalent is timed fewer times
TARGET_P95_MS = 30.0
QUERY = (
    "query Sites($limit: Int!) { sites(limit: $limit) { total items { id name domain "
    "notifications { id name type status } } } }"
)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _timed(call: Callable[[], None], times: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    durations = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def _fill(client: httpx.Client) -> list[str]:
    ids = []
    for n in range(SITES):
        response = client.post(
            "/api/v1/sites", json={"name": f"Shop {n}", "domain": f"shop{n}-{uuid.uuid4().hex[:8]}.example.com"}
        )
        response.raise_for_status()
        site_id = response.json()["data"]["id"]
        for k in range(NOTIFICATIONS):
            created = client.post(
                f"/api/v1/sites/{site_id}/notifications",
                json={"name": f"Notice {k}", "type": "announcement", "status": "active"},
            )
            created.raise_for_status()
        ids.append(site_id)
    return ids


def _measures(name: str, durations: list[float]) -> dict[str, Any]:
    return {f"{name} p50 ms": _percentile(durations, 0.5), f"{name} p95 ms": _percentile(durations, 0.95)}


def run() -> dict[str, Any]:
    with (
        server_url() as database_server,
        fresh_database(database_server, "bench_graphql") as database_url,
        running_server(
            "serve",
            None,
            args=("--workers", "1"),
            DATABASE_URL=database_url,
            NORTHSTAR_AUTH__SECRET_KEY=secrets.token_urlsafe(32),
        ) as server,
    ):
        token = signup(server.base_url, "bench-graphql@example.com")
        client = httpx.Client(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})
        ids = _fill(client)

        def graphql() -> None:
            response = client.post("/graphql", json={"query": QUERY, "variables": {"limit": SITES}})
            response.raise_for_status()
            body = response.json()
            if "errors" in body or len(body["data"]["sites"]["items"]) != SITES:
                raise RuntimeError(f"GraphQL answered {body}")

        def rest_list() -> None:
            client.get("/api/v1/sites", params={"limit": SITES}).raise_for_status()

        def rest_with_notifications() -> None:
            rest_list()
            for site_id in ids:
                client.get(f"/api/v1/sites/{site_id}/notifications").raise_for_status()

        graph = _timed(graphql, REQUESTS)
        listed = _timed(rest_list, REQUESTS)
        both = _timed(rest_with_notifications, REST_PAGES)
        p95 = _percentile(graph, 0.95)
        return {
            "sites x notifications": f"{SITES} x {NOTIFICATIONS}",
            **_measures("GraphQL sites { notifications }", graph),
            **_measures("REST GET /sites (baseline, no notifications)", listed),
            **_measures("REST /sites + 50 x /notifications (same data)", both),
            f"GraphQL p95 ≤ {TARGET_P95_MS:.0f} ms": "met" if p95 <= TARGET_P95_MS else "**missed**",
        }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
