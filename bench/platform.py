"""Platform core (issue 2): authenticated list throughput against a bare endpoint, login latency, cold start."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.server import PASSWORD, environment, free_port, running_server, signup, stop, wait_ready, wrk

PROJECTS = 20
LOGINS = 20


def _list_throughput(base_url: str, seconds: int) -> dict[str, Any]:
    token = signup(base_url, "bench-list@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    for number in range(PROJECTS):
        httpx.post(f"{base_url}/api/v1/projects", json={"name": f"Project {number}"}, headers=headers,
                   timeout=30).raise_for_status()
    baseline = wrk(f"{base_url}/healthz", seconds=seconds)
    listing = wrk(f"{base_url}/api/v1/projects?limit=20", seconds=seconds, headers=headers)
    return {
        "healthz_rps": baseline.requests_per_second, "healthz_p99_ms": baseline.p99_ms,
        "projects_rps": listing.requests_per_second, "projects_p50_ms": listing.p50_ms,
        "projects_p99_ms": listing.p99_ms, "projects_errors": listing.non_2xx,
        "projects_to_healthz": listing.requests_per_second / baseline.requests_per_second,
    }


def _login_latency(base_url: str) -> dict[str, Any]:
    """Sequential logins: argon2id dominates by design, so this is a floor for one core."""
    signup(base_url, "bench-login@example.com")
    durations = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(LOGINS):
            started = time.perf_counter()
            client.post("/api/v1/auth/login", json={"email": "bench-login@example.com", "password": PASSWORD}
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
            process = subprocess.Popen([sys.executable, "-m", "northstar", "run"], env=environment(data_dir, port),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                timings.append(wait_ready(f"http://127.0.0.1:{port}", process))
            finally:
                stop(process)
        return {"first_start_s": timings[0], "cold_start_s": statistics.median(timings[1:])}
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(seconds: int = 10) -> dict[str, Any]:
    with running_server("serve") as server:
        results = _list_throughput(server.base_url, seconds)
        results |= _login_latency(server.base_url)
    return results | _cold_starts()


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:24} {value:10.2f}")
