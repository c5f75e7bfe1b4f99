"""The command line, including `northstar run` as a user starts it (real process, Ctrl-C, restart), and `login`,
`orgs` and `logout` against a running API, with the profile they keep."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pyotp
import pytest
from click.testing import Result
from typer.testing import CliRunner

from northstar.app import create_app
from northstar.cli import app
from northstar.demo.loopback import free_port, serving
from northstar.settings import Settings
from tests.factories import PASSWORD, Account, unique_email

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in (
        "run",
        "serve",
        "worker",
        "dev",
        "migrate",
        "seed",
        "create-user",
        "audit",
        "login",
        "logout",
        "orgs",
        "jobs",
    ):
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


def test_seed_demo_prints_the_users_the_key_and_the_console(database_url: str, settings: Settings) -> None:
    """What `northstar seed --demo` fills is checked in tests/demo/; here, what it tells the person who ran it."""
    seeded = runner.invoke(app, ["seed", "--demo"])
    assert seeded.exit_code == 0, seeded.output
    for role in ("founder", "admin", "member", "analyst", "investor"):
        assert f"{role}+" in seeded.output and "@demo.northstar.dev" in seeded.output
    assert seeded.output.count("demo-") >= 5  # a password per user
    assert "API key (admin): ns_test_" in seeded.output
    assert f"Console: {settings.public_url}/app" in seeded.output


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


def _start(data_dir: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    """`northstar run` on an embedded database in ``data_dir``, what it prints going to ``output``."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NORTHSTAR_DATA_DIR")}
    env.update({"NORTHSTAR_DATA_DIR": str(data_dir), "NORTHSTAR_HTTP__PORT": str(port)})
    with output.open("wb") as printed:
        return subprocess.Popen([sys.executable, "-m", "northstar", "run"], env=env, stdout=printed, stderr=printed)


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
    process = _start(tmp_path, port, tmp_path / "first.log")
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
    first = (tmp_path / "first.log").read_text()
    assert f"Console: {base}/app" in first
    assert "No organization yet. Load a demo one (in another terminal): " in first and " seed --demo" in first

    process = _start(tmp_path, port, tmp_path / "second.log")
    try:
        _wait_for(f"{base}/readyz", time.monotonic() + 60)
        login = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200
    finally:
        assert _stop(process) == 0
    assert "seed --demo" not in (tmp_path / "second.log").read_text()  # the org signed up before is there


def test_serve_runs_one_process_per_worker_sharing_the_pool(database_url: str, tmp_path: Path) -> None:
    """``serve --workers 2``: two API processes answer on one port, each with half the pool, and stop on Ctrl-C."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NORTHSTAR_DATA_DIR"}
    env.update(
        {
            "NORTHSTAR_DATA_DIR": str(tmp_path),
            "NORTHSTAR_HTTP__PORT": str(port),
            "DATABASE_URL": database_url,
            "NORTHSTAR_DATABASE_POOL_SIZE": "6",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "northstar", "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/readyz", time.monotonic() + 90)
        servers = [
            child for child in psutil.Process(process.pid).children() if "--multiprocessing-fork" in child.cmdline()
        ]
        assert len(servers) == 2
        assert {child.environ()["NORTHSTAR_DATABASE_POOL_SIZE"] for child in servers} == {"3"}
        signup = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/signup",
            timeout=30,
            json={"email": unique_email("workers"), "password": PASSWORD},
        )
        assert signup.status_code == 201
    finally:
        assert _stop(process) == 0
    assert not any(child.is_running() for child in servers)


# --- against a running API, as a logged-in user -----------------------------------------------------------------


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    """Where the CLI keeps its profiles ($XDG_CONFIG_HOME), private to the test."""
    return tmp_path / "config"


async def northstar(config_home: Path, *args: str) -> Result:
    """The CLI with its profiles in ``config_home``, output not a terminal (as in a pipe), off the event loop that
    serves the API."""
    cli = CliRunner(
        env={"XDG_CONFIG_HOME": str(config_home), "COLUMNS": None, "NORTHSTAR_PROFILE": None, "NORTHSTAR_ORG": None}
    )
    return await asyncio.to_thread(cli.invoke, app, list(args))


def stored(config_home: Path) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads((config_home / "northstar" / "profiles.json").read_bytes())
    return found


async def test_login_keeps_a_private_profile_and_commands_act_in_its_organization(
    client: httpx.AsyncClient, served: str, founder: Account, config_home: Path
) -> None:
    logged_in = await northstar(
        config_home, "login", "--url", served, "--email", founder.email, "--password", founder.password
    )
    assert logged_in.exit_code == 0, logged_in.output
    assert str(founder.org_id) in logged_in.output
    profile_file = config_home / "northstar" / "profiles.json"
    assert stat.S_IMODE(profile_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(profile_file.parent.stat().st_mode) == 0o700
    profile = stored(config_home)["default"]
    assert (profile["url"], profile["email"], profile["org_id"]) == (served, founder.email, str(founder.org_id))
    assert profile["refresh_token"] not in logged_in.output and profile["access_token"] not in logged_in.output

    listed = await northstar(config_home, "orgs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert [(org["id"], org["role"], org["current"]) for org in orjson.loads(listed.output)] == [
        (str(founder.org_id), "founder", True)
    ]

    second = await client.post("/api/v1/organizations", headers=founder.headers, json={"name": "Second Co"})
    assert second.status_code == 201, second.text
    second_id = second.json()["data"]["id"]
    switched = await northstar(config_home, "orgs", "use", second_id)
    assert switched.exit_code == 0 and "Second Co" in switched.output, switched.output
    current = {
        org["id"]: org["current"]
        for org in orjson.loads((await northstar(config_home, "orgs", "list", "--json")).output)
    }
    assert current == {str(founder.org_id): False, second_id: True}
    assert stat.S_IMODE(profile_file.stat().st_mode) == 0o600

    stranger = await northstar(config_home, "orgs", "use", str(uuid.uuid4()))
    assert stranger.exit_code == 1 and stored(config_home)["default"]["org_id"] == second_id

    spent = stored(config_home)["default"]["refresh_token"]
    logged_out = await northstar(config_home, "logout")
    assert logged_out.exit_code == 0, logged_out.output
    assert "default" not in stored(config_home)
    refreshed = await client.post("/api/v1/auth/refresh", json={"refreshToken": spent})
    assert refreshed.status_code == 401  # the session ended on the server too, not only on this machine
    after = await northstar(config_home, "jobs", "list")
    assert after.exit_code == 1 and "Not logged in: run `northstar login` first" in after.output


async def test_an_expired_or_refused_access_token_is_refreshed_once_and_kept(
    client: httpx.AsyncClient, served: str, founder: Account, config_home: Path
) -> None:
    assert (
        await northstar(config_home, "login", "--url", served, "--email", founder.email, "--password", founder.password)
    ).exit_code == 0
    profile_file = config_home / "northstar" / "profiles.json"

    def edit(**changes: Any) -> dict[str, Any]:
        document = stored(config_home)
        document["default"].update(changes)
        profile_file.write_bytes(orjson.dumps(document))
        return dict(document["default"])

    expired = edit(expires_at=time.time() - 1)  # its 15 minutes are over
    listed = await northstar(config_home, "orgs", "list", "--json")
    assert listed.exit_code == 0, listed.output
    renewed = stored(config_home)["default"]
    assert renewed["refresh_token"] != expired["refresh_token"] and renewed["access_token"] != expired["access_token"]
    assert renewed["expires_at"] > time.time() + 60
    assert stat.S_IMODE(profile_file.stat().st_mode) == 0o600

    refused = edit(access_token="not-a-token-the-api-accepts")  # not expired by its clock, refused by the API
    listed = await northstar(config_home, "jobs", "list", "--json")
    assert listed.exit_code == 0 and orjson.loads(listed.output) == [], listed.output
    assert stored(config_home)["default"]["refresh_token"] != refused["refresh_token"]

    # the session ended elsewhere (logout with the profile's own access token): told to log in again
    ended = await client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {stored(config_home)['default']['access_token']}"}
    )
    assert ended.status_code == 204, ended.text
    listed = await northstar(config_home, "orgs", "list")
    assert listed.exit_code == 1
    assert "The session has ended" in listed.output and "northstar login" in listed.output
    assert "Traceback" not in listed.output
    logged_out = await northstar(config_home, "logout")  # nothing left to end on the server: just forgotten
    assert logged_out.exit_code == 0 and "default" not in stored(config_home), logged_out.output


async def test_login_with_mfa_asks_for_the_code(
    client: httpx.AsyncClient, served: str, founder: Account, config_home: Path
) -> None:
    enrolled = (await client.post("/api/v1/auth/mfa/enroll", headers=founder.headers)).json()["data"]
    totp = pyotp.TOTP(enrolled["secret"])
    confirmed = await client.post(
        "/api/v1/auth/mfa/confirm", headers=founder.headers, json={"code": totp.at(time.time() - 30)}
    )
    assert confirmed.status_code == 200, confirmed.text
    wrong = await northstar(
        config_home,
        "login",
        "--url",
        served,
        "--email",
        founder.email,
        "--password",
        founder.password,
        "--code",
        "000000" if totp.now() != "000000" else "111111",
    )
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    logged_in = await northstar(
        config_home,
        "login",
        "--url",
        served,
        "--email",
        founder.email,
        "--password",
        founder.password,
        "--code",
        totp.now(),
    )
    assert logged_in.exit_code == 0, logged_in.output
    assert stored(config_home)["default"]["org_id"] == str(founder.org_id)


async def test_a_wrong_password_or_an_unreachable_api_is_one_line(
    served: str, founder: Account, config_home: Path
) -> None:
    wrong = await northstar(
        config_home, "login", "--url", served, "--email", founder.email, "--password", "not the password at all"
    )
    assert wrong.exit_code == 1 and len(wrong.output.strip().splitlines()) == 1, wrong.output
    nowhere = await northstar(
        config_home,
        "login",
        "--url",
        f"http://127.0.0.1:{free_port()}",
        "--email",
        founder.email,
        "--password",
        founder.password,
    )
    assert nowhere.exit_code == 1 and "Cannot reach" in nowhere.output
    assert len(nowhere.output.strip().splitlines()) == 1, nowhere.output
    assert not (config_home / "northstar" / "profiles.json").exists()
