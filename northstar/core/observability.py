"""JSON logs with a trace id on every line, Prometheus metrics, and the HTTP edge middleware.

The middleware is plain ASGI (no BaseHTTPMiddleware) so it costs microseconds per request: trace id,
access log, metrics, security headers, body size limit and request timeout in one wrapper.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from northstar.core.dbguard import database_problem
from northstar.settings import Settings

log = structlog.get_logger("northstar.request")

_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api[_-]?key|cookie", re.IGNORECASE)


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Never let a secret reach the logs, whatever a caller passes."""
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stdout, level=level.upper())
    for noisy in ("uvicorn.access", "procrastinate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            _redact,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(serializer=lambda obj, **_: orjson.dumps(obj).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,  # lets structlog.testing.capture_logs see every logger
    )


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "northstar_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "northstar_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.db_pool = Gauge(
            "northstar_db_pool_connections", "Database pool connections", ["state"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "northstar_queue_jobs", "Queue jobs waiting or running", ["status"], registry=self.registry
        )


def parse_traceparent(header: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` header, when well formed."""
    if not header:
        return None
    parts = header.strip().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1].lower()
    return None


def _error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": None}})


def route_template(scope: Scope) -> str:
    """``/api/v1/projects/{project_id}`` rather than the raw path, so metrics keep a bounded label set."""
    if scope.get("route") is None:
        return "unmatched"
    values = {str(value).lower(): name for name, value in scope.get("path_params", {}).items()}
    return "/".join(
        f"{{{values[part.lower()]}}}" if part.lower() in values else part for part in scope["path"].split("/")
    )


def client_ip(scope: Scope, *, trust_forwarded: bool) -> str:
    """The caller's address: the socket peer, or the first ``X-Forwarded-For`` hop behind a trusted proxy."""
    if trust_forwarded:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                return str(value.decode("latin-1").split(",")[0].strip())
    client = scope.get("client")
    return str(client[0]) if client else ""


def new_trace_id(scope: Scope) -> str:
    """The W3C trace id the caller sent in ``traceparent``, or a new one."""
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return parse_traceparent(value.decode("latin-1")) or secrets.token_hex(16)
    return secrets.token_hex(16)


def _first_line(exc: BaseException) -> str:
    """What a driver error says, without the SQL and parameters SQLAlchemy appends (logged, never answered)."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]


class BodyTooLarge(Exception):
    pass


class EdgeMiddleware:
    """Trace id, access log, metrics, security headers; 413 for large bodies, 422 for NUL in URLs, 504 on timeout.

    The timeout is on the time to the response's first byte: a stream (server-sent events, a large download) that
    has started answering runs as long as its client listens."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, metrics: Metrics, body_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = settings.http.max_body_bytes
        self.body_limits = body_limits or {}  # routes that take files: path -> their own limit
        self.timeout = settings.http.request_timeout_seconds
        self.trust_forwarded = settings.http.trust_forwarded_for
        self.https = settings.public_url.startswith("https://")

    def _headers(self, trace_id: str, path: str) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"x-trace-id", trace_id.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
        ]
        if path.startswith(("/docs", "/redoc")):
            headers.append(
                (
                    b"content-security-policy",
                    b"default-src 'self' 'unsafe-inline' cdn.jsdelivr.net fastapi.tiangolo.com data:;"
                    b" frame-ancestors 'none'",
                )
            )
        else:
            headers.append((b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"))
        if self.https:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        trace_id = new_trace_id(scope)
        state = scope.setdefault("state", {})
        state["trace_id"] = trace_id
        state["client_ip"] = client_ip(scope, trust_forwarded=self.trust_forwarded)
        status = {"code": 500, "started": False}
        extra_headers = self._headers(trace_id, scope["path"])

        deadline: list[asyncio.Timeout] = []  # the request's timeout while the app runs

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                for running in deadline:  # answering: a stream goes on as long as its client listens
                    running.reschedule(None)
                own = message.get("headers", [])
                named = {name.lower() for name, _ in own}  # a response's own policy header wins
                message["headers"] = [*own, *(header for header in extra_headers if header[0] not in named)]
            await send(message)

        received = 0
        max_body = self.body_limits.get(scope["path"], self.max_body)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLarge
            return message

        declared = headers.get(b"content-length")
        try:
            if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
                await self._reply(
                    send_with_headers, status, 422, "validation_error", "The URL must not contain NUL (%00) characters"
                )
                return
            if declared is not None and declared.isdigit() and int(declared) > max_body:
                raise BodyTooLarge
            async with asyncio.timeout(None if scope["path"] in self.body_limits else self.timeout) as running:
                deadline.append(running)
                try:
                    await self.app(scope, limited_receive, send_with_headers)
                finally:
                    deadline.clear()
        except BodyTooLarge:
            await self._reply(
                send_with_headers, status, 413, "payload_too_large", f"The request body exceeds {max_body} bytes"
            )
        except TimeoutError:
            await self._reply(send_with_headers, status, 504, "timeout", "The request took too long")
        except Exception as exc:  # the last line of defence: a database outage is a 503, anything else a logged 500
            problem = database_problem(exc)
            if problem is not None:
                log.warning(problem.code, traceId=trace_id, path=scope["path"], error=_first_line(exc))
                await self._reply(
                    send_with_headers, status, problem.status, problem.code, problem.message, problem.headers
                )
                return
            log.error("unhandled_error", exc_info=exc, traceId=trace_id, path=scope["path"])
            await self._reply(
                send_with_headers, status, 500, "internal_error", "Something went wrong; the error was logged."
            )
        finally:
            self._observe(scope, status["code"], time.perf_counter() - started, trace_id)

    @staticmethod
    async def _reply(
        send: Send, status: dict[str, Any], code: int, error: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        if status["started"]:
            return
        body = _error_body(error, message)
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope: Scope, status: int, duration: float, trace_id: str) -> None:
        template = route_template(scope)
        method = scope["method"]
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.latency.labels(method, template).observe(duration)
        principal = scope.get("state", {}).get("principal")
        log.info(
            "request",
            traceId=trace_id,
            method=method,
            route=template,
            path=scope["path"],
            status=status,
            durationMs=round(duration * 1000, 2),
            org=str(principal.org_id) if principal else None,
            user=str(principal.actor_id) if principal else None,
        )
