"""What every fake vendor API shares: a bearer of the right credential, a request ceiling, faults on demand.

A fake speaks one vendor's documented JSON and paging (``stripe_api.py`` here; Shopify, GA4, Mixpanel and HubSpot in
``tests/fakes/``) as a Starlette app served on loopback (``loopback.serving``): by the tests, and by the demo seed for
Stripe. ``FakeVendor`` wraps its routes with what the vendor does to every request: a ceiling of requests per second
answered with 429 and ``Retry-After`` beyond it, injected faults (5xx answers, malformed pages, sudden 429s) for
exactly the next matching requests (before the ceiling, so a fault never depends on the pace of the client), and a
log of what was asked.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute

FaultKind = Literal["server_error", "malformed", "rate_limited"]


@dataclass
class Fault:
    kind: FaultKind
    path_prefix: str = ""
    remaining: int = 1


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    at: float


@dataclass
class FakeVendor:
    """Routes of a vendor behind its rate ceiling and fault injection."""

    routes: Sequence[BaseRoute]
    authorised: Callable[[Request], bool]
    requests_per_second: float | None = None
    retry_after_seconds: float = 1.0
    faults: deque[Fault] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    throttled: int = 0
    _window: deque[float] = field(default_factory=deque)

    def fail_next(self, kind: FaultKind, *, path_prefix: str = "", count: int = 1) -> None:
        """The next ``count`` requests under ``path_prefix`` get ``kind`` instead of their answer."""
        self.faults.append(Fault(kind, path_prefix, count))

    def requests_to(self, path_prefix: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path.startswith(path_prefix)]

    @property
    def app(self) -> Starlette:
        async def vendor_rules(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            now = time.monotonic()
            self.seen.append(Seen(request.method, request.url.path, dict(request.query_params), now))
            if not self.authorised(request):
                return JSONResponse({"error": {"message": "Invalid credentials"}}, status_code=401)
            # an injected fault answers exactly the next requests it names, whatever their pace: were the ceiling
            # checked first, a request it refused would not use the fault up, and which answer a client saw last
            # would depend on timing (a run meant to fail on 503s ending on a 429)
            fault = self._take_fault(request.url.path)
            over = self._over_ceiling(now)  # every request counts toward the ceiling, faulted ones too
            if fault is None and over:
                self.throttled += 1
                return JSONResponse(
                    {"error": {"message": "Too many requests"}},
                    status_code=429,
                    headers={"Retry-After": str(self.retry_after_seconds)},
                )
            if fault == "server_error":
                return JSONResponse({"error": {"message": "Internal error"}}, status_code=503)
            if fault == "rate_limited":
                return JSONResponse(
                    {"error": {"message": "Too many requests"}}, status_code=429, headers={"Retry-After": "0"}
                )
            if fault == "malformed":
                return PlainTextResponse('{"data": [{"id": ', media_type="application/json")
            return await call_next(request)

        return Starlette(routes=list(self.routes), middleware=[Middleware(BaseHTTPMiddleware, dispatch=vendor_rules)])

    def _over_ceiling(self, now: float) -> bool:
        if self.requests_per_second is None:
            return False
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.requests_per_second:
            return True
        self._window.append(now)
        return False

    def _take_fault(self, path: str) -> FaultKind | None:
        for fault in self.faults:
            if path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault.kind
        return None
