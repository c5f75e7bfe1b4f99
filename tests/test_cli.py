"""The command line, including `northstar run` as a user starts it: real process, Ctrl-C, restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from typer.testing import CliRunner

from northstar.cli import app
from tests.conftest import free_port
from tests.factories import PASSWORD, unique_email

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "serve", "worker", "dev", "migrate", "seed", "create-user", "audit"):
        assert command in result.output


def test_migrate_create_user_and_seed(database_url: str) -> None:
    assert "up to date" in runner.invoke(app, ["migrate"]).output
    email = unique_email("cli")
    created = runner.invoke(app, ["create-user", "--email", email, "--password", PASSWORD, "--organization", "CLI Co"])
    assert created.exit_code == 0, created.output
    assert email in created.output
    duplicate = runner.invoke(app, ["create-user", "--email", email, "--password", PASSWORD])
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    weak = runner.invoke(app, ["create-user", "--email", unique_email(), "--password", "password"])
    assert weak.exit_code == 1 and "too common" in weak.output
    seeded = runner.invoke(app, ["seed"])
    assert seeded.exit_code == 0, seeded.output
    for role in ("founder", "admin", "member", "analyst", "investor"):
        assert role in seeded.output
    assert "ns_test_" in seeded.output


def _wait_for(url: str, deadline: float) -> httpx.Response:
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=1)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in time")


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NORTHSTAR_DATA_DIR")}
    env.update({"NORTHSTAR_DATA_DIR": str(data_dir), "NORTHSTAR_HTTP__PORT": str(port)})
    return subprocess.Popen([sys.executable, "-m", "northstar", "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    return process.wait(timeout=30)


def _postgres_running_in(data_dir: Path) -> bool:
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "postgres" in (proc.info["name"] or "") and str(data_dir) in cmdline:
            return True
    return False


def test_run_serves_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(tmp_path, port)
    try:
        health = _wait_for(f"{base}/", time.monotonic() + 60).json()["data"]
        assert (health["database"], health["queue"]) == ("ok", "ok")
        email = unique_email("run")
        signup = httpx.post(f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
        assert signup.status_code == 201
    finally:
        code = _stop(process)
    assert code == 0
    assert not _postgres_running_in(tmp_path)

    process = _start(tmp_path, port)
    try:
        _wait_for(f"{base}/readyz", time.monotonic() + 60)
        login = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200
    finally:
        assert _stop(process) == 0
