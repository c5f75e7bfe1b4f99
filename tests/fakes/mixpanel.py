"""Mixpanel's raw event export, faked: ``GET /api/2.0/export`` over the events a test sets, as JSON lines.

A service account's basic auth and the ``project_id`` it may read are checked; ``from_date`` and ``to_date`` (UTC
days, both included) are required, ``limit`` caps the events and ``event`` (a JSON array of names) filters them. The
answer is ``text/plain``, one ``{"event", "properties"}`` object a line in time order, and empty for a range without
events; ``time`` is returned as the event was sent (unix seconds, or milliseconds). Errors are Mixpanel's JSON
(``{"request": …, "error": …}``): 401 for bad credentials, 403 for a project the account cannot read, 400 for bad
parameters. ``break_after`` makes the export fail after some more answers: 503, or an answer that is not JSON lines.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from northstar.demo.vendor_api import FakeVendor

EXPORT_PATH = "/api/2.0/export"
MAX_LIMIT = 100_000


def event(
    name: str,
    distinct_id: str | None,
    at: dt.datetime,
    insert_id: str | None,
    *,
    milliseconds: bool = False,
    **properties: Any,
) -> dict[str, Any]:
    """An event as Mixpanel exports it (``distinct_id`` and ``$insert_id`` left out when None)."""
    seconds = at.timestamp()
    found: dict[str, Any] = {"time": int(seconds * 1000) if milliseconds else int(seconds), **properties}
    if distinct_id is not None:
        found["distinct_id"] = distinct_id
    if insert_id is not None:
        found["$insert_id"] = insert_id
    found["mp_processing_time_ms"] = int(seconds * 1000) + 1500
    return {"event": name, "properties": found}


def _seconds(time: int) -> float:
    return time / 1000 if time >= 10**11 else float(time)


@dataclass
class FakeMixpanel:
    project_id: str
    username: str
    secret: str
    events: list[dict[str, Any]] = field(default_factory=list)
    _served: int = 0
    _outage_after: int | None = None
    _outage_kind: Literal["server_error", "malformed"] = "server_error"
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = FakeVendor(
            routes=[Route(EXPORT_PATH, self.export, methods=["GET"])], authorised=lambda request: True
        )  # Mixpanel answers its own 401 body, below

    def break_after(self, answers: int, kind: Literal["server_error", "malformed"] = "server_error") -> None:
        """Answer ``answers`` more exports, then fail every one (503, or a line that is not JSON) until ``repair``."""
        self._outage_after, self._outage_kind = self._served + answers, kind

    def repair(self) -> None:
        self._outage_after = None

    def exports(self) -> list[tuple[str, str]]:
        """The (from_date, to_date) of every export asked for, in order (credential checks with ``limit`` apart)."""
        return [
            (seen.query["from_date"], seen.query["to_date"])
            for seen in self.vendor.requests_to(EXPORT_PATH)
            if "limit" not in seen.query and "from_date" in seen.query and "to_date" in seen.query
        ]

    async def export(self, request: Request) -> Response:
        def error(status: int, message: str) -> JSONResponse:
            return JSONResponse(
                {"request": f"{request.url.path}?{request.url.query}", "error": message}, status_code=status
            )

        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        try:
            username, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            username = secret = ""
        if scheme != "Basic" or (username, secret) != (self.username, self.secret):
            return error(401, "Invalid credentials")
        query = request.query_params
        if "project_id" not in query:
            return error(400, "project_id is required when authenticating with a service account")
        if query["project_id"] != self.project_id:
            return error(403, "Permission denied: the service account cannot read this project")
        try:
            first, last = (dt.date.fromisoformat(query[name]) for name in ("from_date", "to_date"))
            limit = int(query.get("limit", MAX_LIMIT))
            names = set(json.loads(query["event"])) if "event" in query else None
        except (KeyError, ValueError, TypeError):
            return error(
                400,
                "from_date and to_date are required (yyyy-mm-dd); limit is a number; event is a JSON array of names",
            )
        if first > last or not 0 < limit <= MAX_LIMIT:
            return error(400, "to_date must not be before from_date, and 0 < limit <= 100000")
        if self._outage_after is not None and self._served >= self._outage_after:
            if self._outage_kind == "malformed":
                return PlainTextResponse('{"event": "Signed up", "properties": {"time": 1}}\n{"event": "Sig\n')
            return error(503, "Service unavailable")
        start = dt.datetime.combine(first, dt.time(), dt.UTC).timestamp()
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
        chosen = sorted(
            (
                item
                for item in self.events
                if start <= _seconds(item["properties"]["time"]) < end and (names is None or item["event"] in names)
            ),
            key=lambda item: _seconds(item["properties"]["time"]),
        )[:limit]
        self._served += 1
        return PlainTextResponse("".join(json.dumps(item, separators=(",", ":")) + "\n" for item in chosen))
