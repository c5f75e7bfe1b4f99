"""Real queue workers as separate processes (``northstar worker``), which a test may kill as a crash would."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from urllib.parse import urlsplit

from northstar.demo.loopback import free_port
from northstar.integrations.authorization import SERVERS
from northstar.settings import IntegrationOAuthSettings, IntegrationsSettings, OAuthApp, Settings

# The fakes listen on loopback over plain HTTP, which the outbound guard refuses by default, and retries wait a few
# milliseconds instead of half a second, doubling (what they wait is not what is tested). Every test worker runs so:
# workers of several test files may share a database and take each other's jobs.
LOOPBACK_VENDORS = {
    "NORTHSTAR_OUTBOUND__ALLOW_PRIVATE_NETWORKS": "true",
    "NORTHSTAR_OUTBOUND__ALLOW_HTTP": "true",
    "NORTHSTAR_OUTBOUND__RETRY_BACKOFF_SECONDS": "0.01",
}


def reaching_loopback(settings: Settings) -> Settings:
    """``settings`` with the outbound guard of ``LOOPBACK_VENDORS``: an app under test that calls the fakes itself
    (testing credentials, say) is configured as the workers are."""
    outbound = settings.outbound.model_copy(
        update={"allow_private_networks": True, "allow_http": True, "retry_backoff_seconds": 0.01}
    )
    return settings.model_copy(update={"outbound": outbound})


# The fake vendors' OAuth apps (tests/integrations/test_oauth.py, the console's OAuth test): their authorization
# servers and APIs listen on one loopback port per test process, each vendor under its settings' name (/hubspot/…),
# so a worker knows them from its start and refreshes tokens as the API that connected them would.
OAUTH_URL = f"http://127.0.0.1:{free_port()}"
OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET = "northstar-tests", secrets.token_urlsafe(24)


def _oauth_app(setting: str) -> OAuthApp:
    """The OAuth app of the fake under ``/{setting}``: the vendor's own paths, on loopback."""
    server = next(server for server in SERVERS.values() if server.setting == setting)
    base = f"{OAUTH_URL}/{setting}"
    paths = {name: urlsplit(getattr(server.defaults, name)).path for name in ("authorize", "token", "revoke")}
    return OAuthApp(
        client_id=OAUTH_CLIENT_ID,
        client_secret=OAUTH_CLIENT_SECRET,
        authorize_url=base + paths["authorize"],
        token_url=base + paths["token"],
        revoke_url=base + paths["revoke"],
        api_url=base,
    )


OAUTH_APPS = {server.setting: _oauth_app(server.setting) for server in SERVERS.values()}
OAUTH_ENV = {
    f"NORTHSTAR_INTEGRATIONS__OAUTH__{setting.upper()}__{name.upper()}": str(value)
    for setting, app in OAUTH_APPS.items()
    for name, value in app.model_dump(exclude_none=True).items()
}


def with_oauth_apps(settings: Settings) -> Settings:
    """``settings`` with the fakes' OAuth apps, as every test worker has them (``OAUTH_ENV``)."""
    oauth = IntegrationOAuthSettings(**OAUTH_APPS)
    return settings.model_copy(update={"integrations": IntegrationsSettings(oauth=oauth)})


WORKER_ENV = {
    **LOOPBACK_VENDORS,
    **OAUTH_ENV,
    "NORTHSTAR_QUEUE__HEARTBEAT_SECONDS": "0.5",
    "NORTHSTAR_QUEUE__STALLED_WORKER_TIMEOUT_SECONDS": "3",
    "NORTHSTAR_DATASETS__RETRY_BASE_DELAY_SECONDS": "0.2",
    "NORTHSTAR_DATASETS__BATCH_ROWS": "20000",
    # every test org with metrics would get its weekly and monthly reports each quarter of an hour, and the workers
    # would render them instead of the jobs the tests wait for (tests/reports/test_schedules.py runs the schedule)
    "NORTHSTAR_REPORTS__SCHEDULED": "false",
}


def start_worker(database_url: str, **extra: str) -> subprocess.Popen[bytes]:
    """``northstar worker`` in its own process, sharing the test database and object store."""
    env = {**os.environ, "DATABASE_URL": database_url, **WORKER_ENV, **extra}
    return subprocess.Popen(
        [sys.executable, "-m", "northstar", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Workers:
    """The session's worker process; a test may kill it (as a crash would) and start a fresh one."""

    def __init__(self, database_url: str, **extra: str) -> None:
        self.database_url = database_url
        self.extra = extra
        self.process = start_worker(database_url, **extra)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def restart(self) -> None:
        stop_worker(self.process)
        self.process = start_worker(self.database_url, **self.extra)
