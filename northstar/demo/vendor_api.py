"""What every fake vendor API shares: a bearer of the right credential, a request ceiling, faults on demand.

A fake speaks one vendor's documented JSON and paging (``stripe_api.py`` here; Shopify, GA4, Mixpanel and HubSpot in
``tests/fakes/``) as a Starlette app served on loopback (``loopback.serving``): by the tests, and by the demo seed for
Stripe. ``FakeVendor`` wraps its routes with what the vendor does to every request: a ceiling of requests per second
answered with 429 and ``Retry-After`` beyond it, injected faults (5xx answers, malformed pages, sudden 429s) for
exactly the next matching requests (before the ceiling, so a fault never depends on the pace of the client), and a
log of what was asked.

``ConsentScreen`` is what every fake OAuth authorization server shares: the page where the person at the screen
allows or denies the app (its buttons named as the vendor names them), the redirect back with a code (or
``error=access_denied``) and the state, and codes redeemed once, by the client they were issued to, for the redirect
URI they were issued for, with the PKCE verifier when a challenge was sent. Each vendor's token, refresh and
revocation endpoints (their paths, parameters and error bodies) are its own fake's; they sit beside its API, outside
its rate ceiling (``beside``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

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


def beside(api: ASGIApp, routes: Sequence[BaseRoute]) -> Starlette:
    """A vendor's authorization server routes served beside its API (on another host at the vendor): neither behind
    the API's credential check nor its rate ceiling."""
    return Starlette(routes=[*routes, Mount("/", app=api)])


@dataclass(frozen=True)
class Authorization:
    """What a person allowed on the consent screen, until its code is redeemed."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None


@dataclass
class ConsentScreen:
    """A vendor's consent page and the codes it issues. ``allow``/``deny`` are the buttons' words; ``signed`` adds
    what the vendor puts on the redirect back (Shopify: the store, a timestamp and an HMAC)."""

    vendor: str
    client_id: str
    allow: str = "Allow"
    deny: str = "Deny"
    signed: Callable[[dict[str, str]], dict[str, str]] | None = None
    codes: dict[str, Authorization] = field(default_factory=dict)
    pages: list[dict[str, str]] = field(default_factory=list)  # the authorization requests, as the browser sent them

    def route(self, path: str) -> Route:
        return Route(path, self._endpoint, methods=["GET", "POST"])

    async def _endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            return self._page(dict(request.query_params))
        form = {key: str(value) for key, value in (await request.form()).items()}
        return self._decide(form)

    def _page(self, asked: dict[str, str]) -> Response:
        self.pages.append(asked)
        if asked.get("client_id") != self.client_id:
            return _refused_page(self.vendor, "The app asking for access is not known (client_id).")
        if not asked.get("redirect_uri", "").startswith(("http://", "https://")):
            return _refused_page(self.vendor, "The app did not say where to send you back (redirect_uri).")
        scopes = asked.get("scope", "").replace(",", " ").split()
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(key)}" value="{html.escape(value)}">'
            for key, value in asked.items()
        )
        listed = "".join(f"<li>{html.escape(scope)}</li>" for scope in scopes)
        return HTMLResponse(
            f"""<!doctype html><html lang="en"><head><title>{self.vendor}: allow access</title>
<link rel="icon" href="data:,"></head><body><main>
<h1>Allow access to your {self.vendor} account?</h1><p>The app asks for:</p><ul>{listed}</ul>
<form method="post">{hidden}<button name="decision" value="allow">{self.allow}</button>
<button name="decision" value="deny">{self.deny}</button></form></main></body></html>"""
        )

    def _decide(self, form: dict[str, str]) -> Response:
        redirect_uri, state = form.get("redirect_uri", ""), form.get("state")
        if form.get("client_id") != self.client_id or not redirect_uri.startswith(("http://", "https://")):
            return _refused_page(self.vendor, "The request is not one this page showed.")
        back: dict[str, str] = {}
        if form.get("decision") == "allow":
            code = secrets.token_urlsafe(24)
            self.codes[code] = Authorization(
                self.client_id,
                redirect_uri,
                tuple(form.get("scope", "").replace(",", " ").split()),
                form.get("code_challenge") if form.get("code_challenge_method") == "S256" else None,
            )
            back["code"] = code
        else:
            back |= {"error": "access_denied", "error_description": "The user denied your request"}
        if state is not None:
            back["state"] = state
        if self.signed is not None and "code" in back:
            back = self.signed(back)
        return RedirectResponse(
            f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(back)}", status_code=302
        )

    def redeem(
        self, code: str, *, client_id: str, redirect_uri: str | None = None, verifier: str | None = None
    ) -> Authorization | None:
        """The authorization behind ``code``, once; None for an unknown or used code, another client, another
        redirect URI, or a verifier that does not answer the challenge (the code is spent either way)."""
        found = self.codes.pop(code, None)
        if found is None or found.client_id != client_id:
            return None
        if redirect_uri is not None and redirect_uri != found.redirect_uri:
            return None
        if found.challenge is not None:
            answered = base64.urlsafe_b64encode(hashlib.sha256((verifier or "").encode()).digest()).rstrip(b"=")
            if answered.decode() != found.challenge:
                return None
        return found


def _refused_page(vendor: str, why: str) -> Response:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><title>{vendor}: error</title></head><body><main><h1>Something went '
        f"wrong</h1><p>{html.escape(why)}</p></main></body></html>",
        status_code=400,
    )
