"""The console's page machinery: one template environment over every module, assets served by content hash,
per-request CSP nonces, CSRF tokens, and the signed-in principal from the session cookie.

A page is a route in the module that owns it (``<module>/console.py``) on a router from ``console_router()``,
gated by ``console_require(resource, action)``: the API's own grant check (``core.context.require``), reading the
principal from the session cookie instead of the Authorization header, so the API and the console cannot drift.
It answers ``render(request, "<module>/<page>.html", {...})``, which adds the layout's context.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import mimetypes
import secrets
import uuid
import zoneinfo
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, PrefixLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_snake
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from northstar.core.console.vendor import ASSETS as VENDORED
from northstar.core.console.vendor import sri
from northstar.core.context import MUTATING_METHODS, DbSession, require
from northstar.core.crypto import derive_key
from northstar.core.http import AppError, Forbidden, NotFound, Unauthorized
from northstar.core.permissions import Principal
from northstar.settings import Settings

if TYPE_CHECKING:  # the manifest mounts core's own pages (search), which are built on this module
    from northstar.core.manifest import Manifest, NavLink

CONSOLE_PREFIX = "/app"
LOGIN_PATH = f"{CONSOLE_PREFIX}/login"
SESSION_PATH = f"{CONSOLE_PREFIX}/session"  # the refresh cookie is sent here only: renewal and logout
RENEW_PATH = f"{SESSION_PATH}/renew"
ACCESS_COOKIE = "ns_access"
REFRESH_COOKIE = "ns_refresh"
CSRF_COOKIE = "ns_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HERE = Path(__file__).parent
ASSET_TYPES = {".css", ".js", ".svg", ".png", ".ico", ".woff2", ".map", ".json"}
GZIP_AT_LEAST = 1024  # smaller bodies gain less than the header costs


@dataclass(frozen=True)
class Membership:
    org_id: uuid.UUID
    name: str
    role: str


@dataclass(frozen=True)
class Viewer:
    """Who is looking, for the layout: their name, the org they act in and the orgs they can switch to."""

    user_name: str
    email: str
    org: Membership
    orgs: tuple[Membership, ...] = ()
    mfa_enabled: bool = False
    time_zone: str = "UTC"  # the org's, for every time a page shows


ViewerLoader = Callable[[AsyncSession, Principal], Awaitable[Viewer]]


class SignInNeeded(Exception):
    """No live session: the browser goes to renew it (or to the login page) and comes back."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    compressed: bytes | None
    media_type: str
    version: str  # the content hash, in the URL: the file is cached for a year
    integrity: str  # sha384, for the ``integrity`` attribute


class StaticAssets:
    """A directory of assets, held in memory with their gzip copies and hashes (they are small and few)."""

    def __init__(self, root: Path) -> None:
        self.files: dict[str, Asset] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in ASSET_TYPES:
                body = path.read_bytes()
                packed = gzip.compress(body, 9, mtime=0) if len(body) >= GZIP_AT_LEAST else None
                self.files[path.relative_to(root).as_posix()] = Asset(
                    body=body,
                    compressed=packed if packed is not None and len(packed) < len(body) else None,
                    media_type=(mimetypes.guess_type(path.name)[0] or "application/octet-stream")
                    + ("; charset=utf-8" if path.suffix in (".css", ".js", ".svg", ".json") else ""),
                    version=hashlib.sha256(body).hexdigest()[:12],
                    integrity=sri(body),
                )


@pass_context
def local_time(context: Context, moment: datetime, style: str = "%Y-%m-%d %H:%M") -> Markup:
    """A stored instant as the org reads it: in the org's time zone, named when the style shows the time of day,
    with the exact instant in the ``<time>`` element for machines."""
    viewer: Viewer | None = context.get("viewer")
    here = moment.astimezone(zoneinfo.ZoneInfo(viewer.time_zone if viewer is not None else "UTC"))
    shown = here.strftime(f"{style} %Z" if "%H" in style else style)
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), shown)


class Console:
    """The console as ``create_app`` builds it from the manifests: one template environment (``<module>/page.html``
    names a template of that module, ``console/…`` the shared layout and components), every module's assets, the
    navigation, and the keys and cookie flags of this configuration."""

    def __init__(self, manifests: Iterable[Manifest], settings: Settings) -> None:
        manifests = tuple(manifests)
        loaders = {"console": FileSystemLoader(HERE / "templates")}
        self.assets = {"console": StaticAssets(HERE / "static")}
        for manifest in manifests:
            if manifest.console_templates is not None:
                loaders[manifest.name] = FileSystemLoader(manifest.console_templates)
            if manifest.console_static is not None:
                self.assets[manifest.name] = StaticAssets(manifest.console_static)
        self.templates = Environment(
            loader=PrefixLoader(loaders),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.templates.globals.update(
            asset_url=self.asset_url, asset_integrity=self.asset_integrity, vendored=VENDORED, local_time=local_time
        )
        zone_sources = [manifest.org_time_zone for manifest in manifests if manifest.org_time_zone is not None]
        if len(zone_sources) > 1:
            raise ValueError("More than one module declares the organization's time zone")
        self.org_time_zone = zone_sources[0] if zone_sources else None
        links = [link for manifest in manifests for link in manifest.console_nav]
        self.nav = tuple(sorted(links, key=lambda link: link.path != f"{CONSOLE_PREFIX}/"))  # home first
        self.csrf_key = derive_key(settings.resolved_secret_key(), "console-csrf")
        # Secure outside local runs: a development run on plain http://localhost must still be able to sign in.
        self.secure_cookies = settings.public_url.startswith("https://") or settings.environment != "development"
        self.refresh_ttl_seconds = settings.auth.refresh_ttl_seconds

    def asset(self, module: str, name: str) -> Asset:
        return self.assets[module].files[name]

    def asset_url(self, module: str, name: str) -> str:
        return f"{CONSOLE_PREFIX}/static/{module}/{name}?v={self.asset(module, name).version}"

    def asset_integrity(self, module: str, name: str) -> str:
        return self.asset(module, name).integrity

    def nav_for(self, principal: Principal | None) -> list[NavLink]:
        if principal is None:
            return []
        return [
            link
            for link in self.nav
            if link.resource is None
            or principal.may_try(link.action, link.resource)
            or principal.reach(link.action, link.resource, "project")
        ]

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.csrf_key, cookie.encode(), hashlib.sha256).hexdigest()


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def content_security_policy(nonce: str) -> str:
    """Scripts and styles from the console's own origin or carrying this response's nonce; no eval, no framing."""
    return (
        "default-src 'none'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; media-src 'self'; font-src 'self'; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def _csrf_cookie(request: Request) -> str:
    """The browser's CSRF secret, minted on its first page (and set by ``render``)."""
    cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    if cookie is None:
        cookie = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = cookie
    return cookie


def csrf_token(request: Request) -> str:
    """What forms and htmx requests send back: an HMAC of the browser's CSRF cookie (signed double submit)."""
    return console_of(request).csrf_token(_csrf_cookie(request))


async def verify_csrf(request: Request) -> None:
    """Every state-changing console request carries the token of its CSRF cookie, in a header or a form field."""
    if request.method not in MUTATING_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not cookie or not sent or not hmac.compare_digest(sent, console_of(request).csrf_token(cookie)):
        raise Forbidden("The form has expired or did not come from this console; reload the page", code="csrf_failed")


async def console_principal(request: Request, session: DbSession) -> Principal:
    """The signed-in user, from the access cookie, through the same authenticator as the API."""
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise SignInNeeded
    try:
        principal: Principal = await request.app.state.authenticator.authenticate(request, session, credential=token)
    except Unauthorized as exc:
        raise SignInNeeded from exc
    if principal.user_id is None:  # an API key in the cookie: the console is for people
        raise SignInNeeded
    request.state.principal = principal
    load_viewer: ViewerLoader = request.app.state.console_viewer
    viewer = await load_viewer(session, principal)
    zone_of = console_of(request).org_time_zone
    if zone_of is not None:
        viewer = replace(viewer, time_zone=await zone_of(session, principal.org_id))
    request.state.viewer = viewer
    return principal


ConsolePrincipal = Annotated[Principal, Depends(console_principal)]


async def signed_in_principal(request: Request, session: DbSession) -> Principal | None:
    """The signed-in user on a page anyone may open (an invitation), else None."""
    try:
        return await console_principal(request, session)
    except SignInNeeded:
        return None


MaybeConsolePrincipal = Annotated[Principal | None, Depends(signed_in_principal)]


class console_require(require):
    """The API's gate (``require``), for pages: the same grants and scopes, the principal from the session."""

    async def __call__(self, request: Request, principal: ConsolePrincipal) -> Principal:
        return self.check(request, principal)


def console_router() -> APIRouter:
    """A module's page router: HTML answers, out of the OpenAPI document, every state change CSRF-checked."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(verify_csrf)], default_response_class=HTMLResponse)


def _finish(request: Request, response: Response) -> Response:
    cookie = getattr(request.state, "new_csrf_cookie", None)
    if cookie is not None:
        set_cookie(request, response, CSRF_COOKIE, cookie, max_age=None)
    response.headers["cache-control"] = "no-store"
    return response


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page (or, for an htmx request, the fragment a template renders), with the layout's context, this response's
    nonce in its CSP and the CSRF token; gzipped when the browser takes it."""
    console = console_of(request)
    nonce = secrets.token_urlsafe(16)
    principal: Principal | None = getattr(request.state, "principal", None)
    token = csrf_token(request)
    page = {
        "request": request,
        "nonce": nonce,
        "csrf_token": token,
        "csrf_input": Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token),
        "principal": principal,
        "viewer": getattr(request.state, "viewer", None),
        "nav": console.nav_for(principal),
        "path": request.url.path,
        "htmx": request.headers.get("hx-request") == "true",
    }
    body = console.templates.get_template(template).render({**page, **(context or {})}).encode()
    response = Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=dict(headers or {}))
    response.headers["content-security-policy"] = content_security_policy(nonce)
    if len(body) >= GZIP_AT_LEAST and "gzip" in request.headers.get("accept-encoding", ""):
        response.body = gzip.compress(body, 5)
        response.headers["content-length"] = str(len(response.body))
        response.headers["content-encoding"] = "gzip"
        response.headers["vary"] = "Accept-Encoding"
    return _finish(request, response)


def redirect(request: Request, url: str, *, status: int = 303) -> Response:
    """Go to ``url``: a redirect, or for an htmx request an ``HX-Redirect`` that loads the whole page."""
    if request.headers.get("hx-request") == "true":
        return _finish(request, Response(status_code=204, headers={"hx-redirect": url}))
    return _finish(request, RedirectResponse(url, status_code=status))


def leave_for(request: Request, url: str, destination: str, *, asks: Sequence[str] = ()) -> Response:
    """Go from a form to another site (a sign-in provider, an identity provider, a vendor's consent screen): a page
    that navigates there at once, since the console's ``form-action 'self'`` forbids a form's redirect to leave the
    origin. ``asks``: the access the destination will ask to allow (OAuth scopes)."""
    return render(request, "console/leaving.html", {"url": url, "destination": destination, "asks": asks})


def set_cookie(request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
    """A console cookie: HttpOnly, SameSite=Lax, Secure outside local runs; the refresh token goes only to
    ``/app/session``."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=SESSION_PATH if name == REFRESH_COOKIE else CONSOLE_PREFIX,
        httponly=True,
        samesite="lax",
        secure=console_of(request).secure_cookies,
    )


def start_session(
    request: Request,
    response: Response,
    *,
    access_token: str,
    refresh_token: str,
    expires_in: int,
    renewal: bool = False,
) -> None:
    """Hand the browser a session: the access token lives as long as it is valid, the refresh token as long as it.

    A new session gets a new CSRF secret (a token seen before sign-in is worth nothing after it); a renewal keeps it,
    so the form being carried through the renewal still passes."""
    set_cookie(request, response, ACCESS_COOKIE, access_token, max_age=expires_in)
    set_cookie(request, response, REFRESH_COOKIE, refresh_token, max_age=console_of(request).refresh_ttl_seconds)
    if not renewal:
        set_cookie(request, response, CSRF_COOKIE, secrets.token_urlsafe(32), max_age=None)


def end_session(request: Request, response: Response) -> None:
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        response.delete_cookie(
            name,
            path=SESSION_PATH if name == REFRESH_COOKIE else CONSOLE_PREFIX,
            httponly=True,
            samesite="lax",
            secure=console_of(request).secure_cookies,
        )


def safe_next(target: str | None, default: str = f"{CONSOLE_PREFIX}/") -> str:
    """Where to go after signing in: a path of this console only, never another site (``//evil``, ``https:``)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(CONSOLE_PREFIX) or target.startswith("//"):
        return default
    if "\\" in target or any(ord(char) < 32 for char in target):
        return default
    return target


def _requested_page(request: Request) -> str:
    """The page to come back to: for an htmx request the page it came from, not the fragment."""
    current = request.headers.get("hx-current-url")
    if current:
        parts = urlsplit(current)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


@dataclass
class FormResult:
    """A form read into the API's request model: the model, or the field errors to show beside the inputs."""

    values: dict[str, Any]
    model: Any = None
    errors: dict[str, str] = field(default_factory=dict)


async def attempt(
    request: Request, session: AsyncSession, action: Callable[[], Awaitable[Any]]
) -> tuple[Any, str | None, int]:
    """Run a service call in a savepoint: its result, or a refusal the user can act on as its message and status
    (a 404 stays a 404 page). The request's audit entry says it was refused."""
    try:
        async with session.begin_nested():
            return await action(), None, 200
    except AppError as exc:
        if isinstance(exc, NotFound):
            raise
        request.state.audit_details = {"refused": exc.code, "status": exc.status}
        return None, exc.message, exc.status


async def read_form(request: Request, model: type[BaseModel], **extra: Any) -> FormResult:
    """The submitted form, validated by the same Pydantic model the API validates its JSON with."""
    form = await request.form()
    values: dict[str, Any] = {key: value for key, value in form.items() if key != CSRF_FIELD and isinstance(value, str)}
    try:
        parsed = model.model_validate({**values, **extra})
    except ValidationError as exc:
        return FormResult(values=values, errors=field_errors(exc))
    return FormResult(values=values, model=parsed)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """One message per field (the first), keyed by the field's name as the form spells it."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = to_snake(str(error["loc"][0])) if error["loc"] else "form"
        errors.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
    return errors


def install(app: FastAPI, manifests: Iterable[Manifest], settings: Settings) -> None:
    """Build the console, mount its assets, and answer errors under /app with pages instead of JSON."""
    app.state.console = Console(manifests, settings)
    api_error = app.exception_handlers[AppError]
    validation_error = app.exception_handlers[RequestValidationError]
    http_error = app.exception_handlers[StarletteHTTPException]

    async def sign_in(request: Request, _: Exception) -> Response:
        return redirect(request, f"{RENEW_PATH}?next={quote(_requested_page(request), safe='/')}", status=307)

    def on_console(fallback: Callable[..., Any], status_of: Callable[[Exception], tuple[int, str]]) -> Any:
        async def handler(request: Request, exc: Exception) -> Response:
            if not request.url.path.startswith(CONSOLE_PREFIX + "/") or request.url.path.startswith(
                f"{CONSOLE_PREFIX}/static/"
            ):
                response: Response = await fallback(request, exc)
                return response
            status, message = status_of(exc)
            if request.headers.get("hx-request") == "true":
                return render(
                    request,
                    "console/alert.html",
                    {"message": message, "status": status},
                    status=status,
                    headers={"hx-retarget": "#page-alert", "hx-reswap": "innerHTML"},
                )
            return render(request, "console/error.html", {"message": message, "status": status}, status=status)

        return handler

    def app_status(exc: Exception) -> tuple[int, str]:
        assert isinstance(exc, AppError)
        return exc.status, exc.message

    def http_status(exc: Exception) -> tuple[int, str]:
        assert isinstance(exc, StarletteHTTPException)
        return exc.status_code, "There is no such page." if exc.status_code == 404 else str(exc.detail)

    app.add_exception_handler(SignInNeeded, sign_in)
    app.add_exception_handler(AppError, on_console(api_error, app_status))
    app.add_exception_handler(
        RequestValidationError, on_console(validation_error, lambda _: (404, "There is no such page."))
    )
    app.add_exception_handler(StarletteHTTPException, on_console(http_error, http_status))

    @app.get(f"{CONSOLE_PREFIX}/static/{{module}}/{{name:path}}", include_in_schema=False, name="console.asset")
    async def asset(module: str, name: str, request: Request) -> Response:
        """An asset by content hash: cached for a year, gzipped when the browser takes it."""
        found = app.state.console.assets.get(module)
        file = found.files.get(name) if found is not None else None
        if file is None:
            raise StarletteHTTPException(404)
        headers = {"cache-control": "public, max-age=31536000, immutable", "vary": "Accept-Encoding"}
        if file.compressed is not None and "gzip" in request.headers.get("accept-encoding", ""):
            headers["content-encoding"] = "gzip"
            return Response(file.compressed, media_type=file.media_type, headers=headers)
        return Response(file.body, media_type=file.media_type, headers=headers)
