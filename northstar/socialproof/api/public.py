"""The public widget paths: loader, widget, feed, event collection and the live feed (no login; site key).

They run in ``FastPaths`` (see ``core/fastpath.py``: every visitor of every merchant's site calls them), and
are described in the OpenAPI document by ``document``. A browser may use them only from the site's own
domain or its subdomains: CORS answers name that origin and nothing else, and a collection batch or live feed
from another origin is refused (403).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic.json_schema import models_json_schema
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from northstar.core.fastpath import FastRoute
from northstar.core.http import (
    AppError,
    BadRequest,
    Envelope,
    Forbidden,
    NotFound,
    Unprocessable,
    json_has_nul,
    read_body,
)
from northstar.core.ratelimit import RateLimiter
from northstar.settings import Settings
from northstar.socialproof.runtime import CHANGED_TOPIC, LIVE_EVENTS_TOPIC, SocialProofRuntime, VisitorOf
from northstar.socialproof.sanitize import on_domain
from northstar.socialproof.schemas.events import CollectAccepted, CollectBatch
from northstar.socialproof.schemas.feed import AudienceEnvelope, AudienceRequest, FeedEnvelope
from northstar.socialproof.service import events as event_service
from northstar.socialproof.service.sites import PublicSite

_SITE_KEY = re.compile(r"pk_[A-Za-z0-9_-]{4,60}")
MAX_URL = 2048
STREAM_RETRY_MS = 5000
AUDIENCE_MAX_BYTES = 4096
_collect_batch = TypeAdapter(CollectBatch)
_audience_request = TypeAdapter(AudienceRequest)
Body = TypeVar("Body")


@dataclass(frozen=True)
class Asset:
    """A script kept in memory as it is sent: plain and gzipped, with its ETag."""

    body: bytes
    gzipped: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Asset:
        return cls(
            body,
            gzip.compress(body, compresslevel=9, mtime=0),
            f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"',
        )

    def response(self, request: Request, *, cache_control: str) -> Response:
        headers = {
            "cache-control": cache_control,
            "etag": self.etag,
            "vary": "Accept-Encoding",
            "access-control-allow-origin": "*",
            "cross-origin-resource-policy": "cross-origin",
        }
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(
                self.gzipped,
                media_type="text/javascript; charset=utf-8",
                headers={**headers, "content-encoding": "gzip"},
            )
        return Response(self.body, media_type="text/javascript; charset=utf-8", headers=headers)


@cache
def widget_asset() -> Asset:
    return Asset.of(files("northstar.socialproof").joinpath("static/widget.js").read_bytes())


@cache
def _loader_template() -> str:
    return files("northstar.socialproof").joinpath("static/loader.js").read_text()


def widget_path() -> str:
    """The widget's URL path names its content hash, so it can be cached for a year and still change."""
    return f"/w/widget-{widget_asset().etag.strip(chr(34))}.js"


def embed_codes(site_key: str, *, public_url: str) -> dict[str, str]:
    """What a merchant pastes: an inline snippet that queues ``northstar(...)`` calls and fetches the loader after
    the page's ``load`` event (a slow API can never hold the page), or, for pages whose CSP forbids inline scripts,
    the plain script tag."""
    loader = orjson.dumps(f"{public_url}/w/{site_key}.js").decode()
    snippet = (
        "<script>(function(w,d,s){w.northstar=w.northstar||function(){(w.northstar.q=w.northstar.q||[])"
        ".push(arguments)};function l(){var e=d.createElement('script');e.async=true;e.src=s;"
        "(d.head||d.documentElement).appendChild(e)}d.readyState==='complete'?l():"
        f"w.addEventListener('load',l)}})(window,document,{loader});</script>"
    )
    return {"snippet": snippet, "script_tag": f'<script async src="{public_url}/w/{site_key}.js"></script>'}


def loader_asset(site: PublicSite, *, public_url: str) -> Asset:
    values = {
        "__SITE_KEY__": site.site_key,
        "__DOMAIN__": site.domain,
        "__API__": public_url,
        "__WIDGET__": public_url + widget_path(),
        "__PERSISTENT__": site.persistent_visitor_id,
    }
    script = _loader_template()
    for placeholder, value in values.items():
        script = script.replace(f'"{placeholder}"', orjson.dumps(value).decode())
    return Asset.of(script.encode())


def _runtime(request: Request) -> SocialProofRuntime:
    runtime: SocialProofRuntime = request.app.state.socialproof
    return runtime


async def _site(request: Request, site_key: str) -> PublicSite:
    """The site of this key, if it serves: a site whose domain's verification is pending gets nothing served."""
    site = await _runtime(request).site(site_key) if _SITE_KEY.fullmatch(site_key) else None
    if site is None:
        raise NotFound("No site has this key", code="unknown_site")
    if not site.serving:
        raise Forbidden(
            "This site has not proved control of its domain yet (see its verification in the API)",
            code="site_unverified",
        )
    return site


def _origin(request: Request) -> str | None:
    return request.headers.get("origin")


def _cors(origin: str | None) -> dict[str, str]:
    return {"access-control-allow-origin": origin, "vary": "Origin"} if origin else {"vary": "Origin"}


def _allowed_origin(request: Request, site: PublicSite, *, required: bool) -> str | None:
    """The request's Origin if it is the site's domain (or a subdomain); 403 for any other."""
    origin = _origin(request)
    if origin is None or origin == "null":
        if required:
            raise Forbidden("Events are accepted only from pages of the site", code="origin_not_allowed")
        return None
    if not on_domain(urlsplit(origin).hostname, site.domain):
        raise Forbidden("This origin is not the site's domain", code="origin_not_allowed")
    return origin


async def loader(request: Request) -> Response:
    """``<script async src=".../w/{siteKey}.js">``: defines ``northstar(...)`` and loads the widget."""
    settings: Settings = request.app.state.settings
    site = await _site(request, request.path_params["site_key"])
    return loader_asset(site, public_url=settings.public_url).response(request, cache_control="public, max-age=300")


async def widget(request: Request) -> Response:
    if request.url.path != widget_path():
        raise NotFound("This widget version is not served any more; reload the loader", code="unknown_version")
    return widget_asset().response(request, cache_control="public, max-age=31536000, immutable")


def _preflight(request: Request, methods: str) -> Response:
    return Response(
        status_code=204,
        headers={
            **_cors(_origin(request)),
            "access-control-allow-methods": methods,
            "access-control-allow-headers": "Content-Type",
            "access-control-max-age": "86400",
        },
    )


async def feed(request: Request) -> Response:
    """What this page should show now (``?url=`` the page's address); cached, with ETag and 304."""
    site = await _site(request, request.path_params["site_key"])
    origin = _allowed_origin(request, site, required=False)
    if request.method == "OPTIONS":
        return _preflight(request, "GET")
    url = request.query_params.get("url", "")
    if not url or len(url) > MAX_URL or "\x00" in url:
        raise Unprocessable(
            "Give the page's address as ?url=",
            details=[
                {"field": "query.url", "message": f"required, at most {MAX_URL} characters", "type": "value_error"}
            ],
        )
    if not on_domain(urlsplit(url).hostname, site.domain):
        raise Forbidden("This page is not on the site's domain", code="origin_not_allowed")
    runtime = _runtime(request)
    place = runtime.collector.geo.locate(request.state.client_ip)
    rendered = await runtime.feed(
        site, url=url, country=place.country if place else None, visitor=_visitor_of(request, site)
    )
    headers = {**_cors(origin), "etag": rendered.etag, "cache-control": "private, max-age=5"}
    if request.headers.get("if-none-match") == rendered.etag:
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


def _visitor_of(request: Request, site: PublicSite) -> VisitorOf:
    """The browser's visitor id, for A/B assignment: from ``?vid=`` (the widget's first-party id, where the site
    keeps one) or the cookieless daily id, the same the browser's events get."""

    async def visitor() -> str:
        return await event_service.browser_visitor(
            _runtime(request).collector,
            site,
            local_id=request.query_params.get("vid"),
            ip=request.state.client_ip,
            user_agent=request.headers.get("user-agent", ""),
        )

    return visitor


async def _read(request: Request, adapter: TypeAdapter[Body], *, max_bytes: int, what: str) -> Body:
    """A widget request's JSON body (sent as text/plain, so without a preflight), checked for NUL as a whole."""
    body = await read_body(request, max_bytes)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if json_has_nul(body, document):
        raise Unprocessable(
            f"The {what} is not valid",
            details=[
                {"field": "body", "message": "Text must not contain NUL (\\u0000) characters", "type": "value_error"}
            ],
        )
    try:
        return adapter.validate_python(document)
    except ValidationError as exc:
        raise Unprocessable(
            f"The {what} is not valid",
            details=[
                {
                    "field": ".".join(str(part) for part in ("body", *error["loc"])),
                    "message": error["msg"],
                    "type": error["type"],
                }
                for error in exc.errors(include_url=False, include_context=False)
            ],
        ) from None


async def collect(request: Request) -> Response:
    """Events from the widget (``sendBeacon`` or ``fetch``), answered 202 once durably stored.

    A preflight cannot name the site (its key is in the body), so it allows any origin; the request itself is
    refused unless it comes from the site's domain.
    """
    if request.method == "OPTIONS":
        return _preflight(request, "POST")
    settings: Settings = request.app.state.settings
    batch = await _read(request, _collect_batch, max_bytes=settings.socialproof.collect_max_bytes, what="batch")
    site = await _site(request, batch.site_key)
    origin = _allowed_origin(request, site, required=True)
    ip: str = request.state.client_ip
    limiter: RateLimiter = request.app.state.rate_limiter
    try:
        if settings.rate_limit.enabled:
            await limiter.enforce(f"collect:{site.id}:{ip}", limit=settings.socialproof.collect_per_ip_per_minute)
        collected = await event_service.collect(
            _runtime(request).collector, site, batch, ip=ip, user_agent=request.headers.get("user-agent", "")
        )
    except AppError as exc:  # 429 and 503: the page's script may read Retry-After
        exc.headers = {**(exc.headers or {}), **_cors(origin)}
        raise
    result = collected.result
    data: dict[str, Any] = {"accepted": result.accepted, "duplicates": result.duplicates, "dropped": collected.dropped}
    if collected.rejected:
        data["rejected"] = collected.rejected
    return Response(orjson.dumps({"data": data}), status_code=202, media_type="application/json", headers=_cors(origin))


async def audience(request: Request) -> Response:
    """Which of the site's audience notifications (``audience: true`` in the feed) this visitor's profile matches.

    Only from the site's own pages, like collection; the answer names notification ids, never profile values."""
    if request.method == "OPTIONS":
        return _preflight(request, "POST")
    asked = await _read(request, _audience_request, max_bytes=AUDIENCE_MAX_BYTES, what="request")
    site = await _site(request, asked.site_key)
    origin = _allowed_origin(request, site, required=True)
    settings: Settings = request.app.state.settings
    ip: str = request.state.client_ip
    runtime = _runtime(request)
    try:
        if settings.rate_limit.enabled:
            limiter: RateLimiter = request.app.state.rate_limiter
            await limiter.enforce(f"audience:{site.id}:{ip}", limit=settings.socialproof.collect_per_ip_per_minute)
        visitor_id = await event_service.visitor_of(
            runtime.collector, site, asked.visitor, ip=ip, user_agent=request.headers.get("user-agent", "")
        )
        matched = await runtime.audience(site, visitor_id)
    except AppError as exc:
        exc.headers = {**(exc.headers or {}), **_cors(origin)}
        raise
    body = orjson.dumps({"data": {"notifications": [str(notification) for notification in matched]}})
    return Response(body, media_type="application/json", headers={**_cors(origin), "cache-control": "no-store"})


def _wants_widget_stream(scope: Scope) -> bool:
    return b"siteKey=" in scope.get("query_string", b"")


async def live_feed(request: Request) -> Response:
    """The widget's live mode: the page's feed again whenever it changes (counts, new events), over SSE."""
    site = await _site(request, request.query_params.get("siteKey", ""))
    origin = _allowed_origin(request, site, required=False)
    url = request.query_params.get("url", "")
    if not url or len(url) > MAX_URL or not on_domain(urlsplit(url).hostname, site.domain):
        raise Unprocessable(
            "Give a page of the site as ?url=",
            details=[{"field": "query.url", "message": "a page of the site", "type": "value_error"}],
        )
    runtime = _runtime(request)
    place = runtime.collector.geo.locate(request.state.client_ip)
    country = place.country if place else None
    interval = runtime.config.feed_cache_seconds
    visitor = _visitor_of(request, site)

    async def frames() -> AsyncIterator[dict[str, Any]]:
        sent = None
        async with runtime.hub.subscribe(site.org_id) as subscription:
            while True:
                rendered = await runtime.feed(site, url=url, country=country, visitor=visitor)
                if rendered.etag != sent:
                    sent = rendered.etag
                    yield {"event": "feed", "data": rendered.body.decode(), "retry": STREAM_RETRY_MS}
                await _next_change(subscription.queue, site, within=interval)

    return EventSourceResponse(frames(), ping=15, headers=_cors(origin))


async def _next_change(queue: asyncio.Queue[Any], site: PublicSite, *, within: float) -> None:
    """Wait until this site has new events or a changed notification, or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        try:
            event = await asyncio.wait_for(queue.get(), remaining)
        except TimeoutError:
            return
        if event.topic in (LIVE_EVENTS_TOPIC, CHANGED_TOPIC) and event.data.get("siteId") == str(site.id):
            await asyncio.sleep(min(remaining, 0.5))  # let the burst land, and the feed cache refill once
            return


def fast_routes() -> list[FastRoute]:
    return [
        FastRoute("/w/widget-{version}.js", r"/w/widget-(?P<version>[^/]+)\.js", frozenset({"GET", "HEAD"}), widget),
        FastRoute("/w/{site_key}.js", r"/w/(?P<site_key>[^/]+)\.js", frozenset({"GET", "HEAD"}), loader),
        FastRoute(
            "/api/v1/widget/{site_key}/feed",
            r"/api/v1/widget/(?P<site_key>[^/]{1,64})/feed",
            frozenset({"GET", "HEAD", "OPTIONS"}),
            feed,
        ),
        FastRoute("/api/v1/collect", r"/api/v1/collect", frozenset({"POST", "OPTIONS"}), collect),
        FastRoute("/api/v1/widget/audience", r"/api/v1/widget/audience", frozenset({"POST", "OPTIONS"}), audience),
        FastRoute(
            "/events/stream?siteKey", r"/events/stream", frozenset({"GET"}), live_feed, when=_wants_widget_stream
        ),
    ]


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): {"$ref": f"#/components/responses/Error{status}"} for status in statuses}


def document(openapi: dict[str, Any]) -> None:
    """Describe these paths in the OpenAPI document (FastAPI does not see them: they are answered earlier)."""
    _, definitions = models_json_schema(
        [
            (CollectBatch, "validation"),
            (Envelope[CollectAccepted], "serialization"),
            (FeedEnvelope, "serialization"),
            (AudienceRequest, "validation"),
            (AudienceEnvelope, "serialization"),
        ],
        ref_template="#/components/schemas/{model}",
    )
    components = openapi.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        schemas.setdefault(name, definition)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    components.setdefault("responses", {}).update(
        {
            f"Error{status}": {**error, "description": description}
            for status, description in (
                (400, "The body is not JSON"),
                (403, "Not the site's domain, or its domain's verification is pending"),
                (404, "Unknown site key or version"),
                (413, "The body is too large"),
                (422, "Not valid; `details` lists each field path"),
                (429, "Rate limited; see Retry-After"),
                (503, "Events cannot be stored right now; retry"),
            )
        }
    )
    site_key = {
        "name": "site_key",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": "pk_3xAmpl3K3yF0rD0cs",
    }
    script = {"description": "The script", "content": {"text/javascript": {"schema": {"type": "string"}}}}
    not_modified = {"description": "Not modified (If-None-Match)"}
    allowed: dict[str, Any] = {"204": {"description": "Allowed methods and headers"}}
    preflight: dict[str, Any] = {
        "summary": "CORS preflight",
        "tags": ["widget"],
        "parameters": [],
        "responses": allowed,
    }
    feed_preflight = {
        **preflight,
        "operationId": "widget_feed_preflight",
        "parameters": [site_key],
        "responses": {**allowed, **_errors(403, 404)},
    }
    paths = openapi.setdefault("paths", {})
    paths["/w/{site_key}.js"] = {
        "get": {
            "operationId": "widget_loader",
            "summary": "The embed snippet's loader",
            "tags": ["widget"],
            "parameters": [site_key],
            "description": "Defines `northstar(...)` and loads the widget asynchronously, only on the site's domain.",
            "responses": {"200": script, "304": not_modified, **_errors(403, 404)},
        }
    }
    paths["/w/widget-{version}.js"] = {
        "get": {
            "operationId": "widget_script",
            "summary": "The widget (immutable; the loader names the current version)",
            "tags": ["widget"],
            "parameters": [{"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": script, "304": not_modified, **_errors(404)},
        }
    }
    paths["/api/v1/widget/{site_key}/feed"] = {
        "get": {
            "operationId": "widget_feed",
            "summary": "What this page should show now",
            "tags": ["widget"],
            "description": "Targeting applied, anonymised, cached; ETag and 304. Public: identified by the site key.",
            "parameters": [
                site_key,
                {"name": "url", "in": "query", "required": True, "schema": {"type": "string", "maxLength": MAX_URL}},
                {
                    "name": "vid",
                    "in": "query",
                    "required": False,
                    "description": "the widget's first-party visitor id (sites with persistentVisitorId): A/B "
                    "test variants are assigned by it",
                    "schema": {"type": "string", "minLength": 8, "maxLength": 64},
                },
            ],
            "responses": {
                "200": {
                    "description": "The feed",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedEnvelope"}}},
                },
                "304": not_modified,
                **_errors(403, 404, 422),
            },
        },
        "options": feed_preflight,
    }
    batch = {"schema": {"$ref": "#/components/schemas/CollectBatch"}}
    paths["/api/v1/collect"] = {
        "post": {
            "operationId": "widget_collect",
            "summary": "Events from the widget",
            "tags": ["widget"],
            "description": "Single or batched (up to 50), `sendBeacon`-compatible (text/plain). Answered once stored; "
            "event ids make retries harmless. Only from pages of the site's domain.",
            "requestBody": {"required": True, "content": {"application/json": batch, "text/plain": batch}},
            "responses": {
                "202": {
                    "description": "Stored",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Envelope_CollectAccepted_"}}
                    },
                },
                **_errors(400, 403, 404, 413, 422, 429, 503),
            },
        },
        "options": {**preflight, "operationId": "widget_collect_preflight"},
    }
    asked = {"schema": {"$ref": "#/components/schemas/AudienceRequest"}}
    paths["/api/v1/widget/audience"] = {
        "post": {
            "operationId": "widget_audience",
            "summary": "Which audience notifications this visitor sees",
            "tags": ["widget"],
            "description": "For the feed's notifications marked `audience`: the ids whose rules (behaviour score, new "
            "or returning, custom values) this visitor's profile meets. Only from pages of the site's domain.",
            "requestBody": {"required": True, "content": {"application/json": asked, "text/plain": asked}},
            "responses": {
                "200": {
                    "description": "The matching notifications",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AudienceEnvelope"}}},
                },
                **_errors(400, 403, 404, 413, 422, 429),
            },
        },
        "options": {**preflight, "operationId": "widget_audience_preflight"},
    }
