"""A real Northstar process for benchmarks: fresh data dir, embedded PostgreSQL, rate limits off (unless the
environment given turns them on), and wrk."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the server ``server_url`` names (as a user allowed to create one), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environment(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NORTHSTAR_") and key not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL")
    }
    env.update(
        NORTHSTAR_DATA_DIR=str(data_dir),
        NORTHSTAR_HTTP__PORT=str(port),
        NORTHSTAR_LOG_LEVEL="WARNING",
        NORTHSTAR_RATE_LIMIT__ENABLED="false",
    )
    env.update(extra)
    return env


def wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> float:
    """Seconds until ``/readyz`` answers 200; raises if the process dies first."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"northstar exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1.0).status_code == 200:
                return time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError("northstar did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Server:
    base_url: str
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]


@contextmanager
def running_server(
    command: str = "run", data_dir: Path | None = None, *, args: tuple[str, ...] = (), **extra_env: str
) -> Iterator[Server]:
    """``northstar <command> <args>`` on a free port; the data dir is temporary unless given."""
    owned = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="northstar-bench-")) if data_dir is None else data_dir
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "northstar", command, *args],
        env=environment(directory, port, **extra_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(f"http://127.0.0.1:{port}", directory, port, process)
    try:
        # a loaded machine (other benchmarks, test runs) can take minutes to initialise a fresh data directory
        wait_ready(server.base_url, process, timeout=float(os.environ.get("NORTHSTAR_BENCH_READY_SECONDS", "120")))
        yield server
    finally:
        stop(process)
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


def signup(base_url: str, email: str) -> str:
    """A new founder; returns their access token."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/signup", timeout=30, json={"email": email, "password": PASSWORD, "name": "Bench User"}
    )
    response.raise_for_status()
    return str(response.json()["data"]["tokens"]["accessToken"])


@dataclass
class LoadResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _captured(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in wrk's output; a clear error if wrk printed something else."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{text}")
    return found.group(1)


def _latency_ms(text: str) -> float:
    value = _captured(r"^([\d.]+)(?:us|ms|s|m)$", text.strip())
    return float(value) * _UNITS_MS[text.strip()[len(value) :]]


def wrk(
    url: str,
    *,
    connections: int = 64,
    seconds: int = 10,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
) -> LoadResult:
    """Run wrk (``apt-get install wrk``) with two threads; parse throughput and the latency percentiles."""
    if shutil.which("wrk") is None:
        raise RuntimeError("the load benchmarks need wrk: apt-get install wrk")
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    rps = float(_captured(r"Requests/sec:\s+([\d.]+)", output))
    p50 = _latency_ms(_captured(r"^\s+50%\s+(\S+)", output))
    p99 = _latency_ms(_captured(r"^\s+99%\s+(\S+)", output))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return LoadResult(rps, p50, p99, int(errors.group(1)) if errors else 0)
