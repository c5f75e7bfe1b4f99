"""The HTTP edge: 500s in the envelope, logs, HSTS, CORS, timeouts, password rehash on login."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
import structlog
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from structlog.testing import capture_logs

from northstar.app import create_app
from northstar.core.observability import configure_logging
from northstar.core.security import hash_password, password_needs_rehash, verify_password
from northstar.settings import AuthSettings, Settings
from tests.conftest import running
from tests.factories import PASSWORD, Account


def _app_with_probe_routes(settings: Settings) -> FastAPI:
    """The real app plus routes that fail on purpose or take their time, to see what a client gets."""
    app = create_app(settings)

    @app.get("/probe/crash")
    async def crash() -> None:
        raise RuntimeError("secret internal detail")

    @app.get("/probe/slow")
    async def slow() -> None:
        await asyncio.sleep(5)

    @app.get("/probe/stream")
    async def stream() -> StreamingResponse:
        async def ticks() -> AsyncIterator[bytes]:
            for tick in range(5):
                yield f"{tick}\n".encode()
                await asyncio.sleep(0.1)

        return StreamingResponse(ticks(), media_type="text/plain")

    return app


async def test_unhandled_error_is_a_generic_500_logged_with_the_trace_id(settings: Settings) -> None:
    async with running(_app_with_probe_routes(settings)) as client:
        with capture_logs() as logged:
            response = await client.get("/probe/crash")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    errors = [entry for entry in logged if entry["event"] == "unhandled_error"]
    assert errors[0]["traceId"] == response.headers["x-trace-id"]
    assert isinstance(errors[0]["exc_info"], RuntimeError)


async def test_slow_requests_time_out_with_504(settings: Settings) -> None:
    quick = settings.model_copy(update={"http": settings.http.model_copy(update={"request_timeout_seconds": 0.2})})
    async with running(_app_with_probe_routes(quick)) as client:
        response = await client.get("/probe/slow")
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"


async def test_a_stream_that_has_started_answering_outlives_the_timeout(settings: Settings) -> None:
    quick = settings.model_copy(update={"http": settings.http.model_copy(update={"request_timeout_seconds": 0.2})})
    async with running(_app_with_probe_routes(quick)) as client:
        response = await client.get("/probe/stream")
    assert (response.status_code, response.text) == (200, "0\n1\n2\n3\n4\n")


@pytest.fixture
def info_logs(settings: Settings) -> Iterator[None]:
    """Request lines are INFO; the suite runs at WARNING to stay quiet."""
    configure_logging("INFO")
    yield
    configure_logging(settings.log_level)


@pytest.mark.usefixtures("info_logs")
async def test_one_log_line_per_request_without_secrets(client: httpx.AsyncClient, founder: Account) -> None:
    with capture_logs() as lines:
        response = await client.get("/api/v1/projects", headers=founder.headers)
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 1
    entry = requests[0]
    assert entry["traceId"] == response.headers["x-trace-id"]
    assert (entry["method"], entry["route"], entry["status"]) == ("GET", "/api/v1/projects", 200)
    assert entry["org"] == str(founder.org_id) and entry["user"] == str(founder.user_id)
    assert entry["durationMs"] >= 0
    assert founder.access_token not in json.dumps(lines, default=str)


@pytest.mark.usefixtures("info_logs")
def test_log_lines_are_json_and_secrets_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")  # again, now that capsys has replaced stdout
    structlog.get_logger("probe").info("probe", traceId="t", password="hunter2", authorization="Bearer x")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "probe" and line["traceId"] == "t" and line["level"] == "info"
    assert line["password"] == line["authorization"] == "[redacted]"


async def test_hsts_only_on_https_and_cors_when_configured(settings: Settings) -> None:
    secure = settings.model_copy(
        update={
            "public_url": "https://api.example.com",
            "http": settings.http.model_copy(update={"cors_origins": ["https://app.example.com"]}),
        }
    )
    async with running(create_app(secure)) as client:
        response = await client.get("/healthz")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        preflight = await client.options(
            "/api/v1/projects",
            headers={
                "Origin": "https://app.example.com",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Idempotency-Key",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        stranger = await client.options(
            "/api/v1/projects", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in stranger.headers
    async with running(create_app(settings)) as client:
        assert "strict-transport-security" not in (await client.get("/healthz")).headers


async def test_login_rehashes_passwords_made_with_old_parameters(
    client: httpx.AsyncClient, founder: Account, database_url: str, settings: Settings
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("UPDATE auth.users SET password_hash = %s WHERE id = %s", (weak, founder.user_id))
        await conn.commit()
    login = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": PASSWORD})
    assert login.status_code == 200
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT password_hash FROM auth.users WHERE id = %s", (founder.user_id,))
        ).fetchone()
    assert row is not None and row[0] != weak and row[0].startswith("$argon2id$")
    assert not password_needs_rehash(settings, row[0])


def test_passwords_are_hashed_with_rfc_9106_low_memory_parameters_unless_configured_otherwise() -> None:
    """The test suite hashes with the cheapest parameters; a deployment gets argon2id at 64 MiB and 3 passes."""
    deployed = Settings(auth=AuthSettings(secret_key="k"))
    assert hash_password(deployed, PASSWORD).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert verify_password(deployed, hash_password(deployed, PASSWORD), PASSWORD)
    assert password_needs_rehash(deployed, PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD))
