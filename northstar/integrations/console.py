"""The console's integration pages: the org's integrations, connecting a provider (a form made from its typed config
model, or "Connect" through the provider's consent screen when the install has an OAuth client for it), and one
integration's runs with test, sync now, pause, resume, reconnect and disconnect, its consents, and a live progress bar
while it syncs.

"Connect" posts to a page that sends the browser on to the provider's consent screen (a refresh and a link): a form
whose answer redirects to another origin is refused by the console's ``form-action 'self'`` policy. The provider
comes back to the callback, a GET, which records its audit entry itself (``request_session`` audits state-changing
methods only).

Every page calls the same service functions behind the same gates as the API routes (``api.py``); the connect form
is validated with the API's ``IntegrationCreate`` and then by the service's own checks, whose 422 details name the
field, so each problem is shown beside its input.

The service calls whose refusals are shown in the page run without ``session.begin_nested()``: a savepoint fires
the session's ``after_begin`` hook, which unbinds the tenant for the rest of the request (row-level security then
refuses the insert). The refusals caught here (the 422 checks, the 409 of a paused integration) are raised before the
service writes anything, so the request's transaction is still clean when the page is rendered.
"""

from __future__ import annotations

import datetime as dt
import types
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel, to_snake
from pydantic.fields import FieldInfo
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.audit import service as audit_service
from northstar.core.console.pages import CSRF_FIELD, console_router, leave_for, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.db import settings_of
from northstar.core.http import AppError, NotFound, Page
from northstar.core.permissions import Principal
from northstar.integrations import service
from northstar.integrations.auth import (
    IntegrationsCreatePage,
    IntegrationsDeletePage,
    IntegrationsReadPage,
    IntegrationsUpdatePage,
)
from northstar.integrations.authorization import SERVERS
from northstar.integrations.connectors import CONNECTORS
from northstar.integrations.models import Integration, SyncRun
from northstar.integrations.schemas import IntegrationCreate, OAuthStart
from northstar.integrations.service import oauth
from northstar.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
PROVIDER_NAMES = {name: connector.title for name, connector in CONNECTORS.items()}
RUNS_SHOWN = 20
CONSENTS_SHOWN = 20
CALLBACK_PARAMS = 30  # a provider's redirect carries a handful; more is not a provider's
ACTIVE_RUN = ("queued", "running")
WORDS = {"url": "URL", "id": "ID", "uri": "URI", "api": "API"}

router = console_router()


@dataclass(frozen=True)
class FormField:
    """One input of a provider's connect form, from a credential name or a field of its config model."""

    name: str  # the form's name for it, e.g. ``credential_api_key``, ``config_base_url``
    label: str
    type: str
    required: bool
    hint: str | None = None
    step: str | None = None


def _label(name: str) -> str:
    """``base_url`` -> "Base URL": a field's name as a label."""
    text = " ".join(WORDS.get(word, word) for word in name.split("_"))
    return text[:1].upper() + text[1:]


def _bare(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    if get_origin(annotation) in (Union, types.UnionType):
        return next((arg for arg in get_args(annotation) if arg is not type(None)), str)
    return annotation


def _is_list(info: FieldInfo) -> bool:
    return get_origin(_bare(info.annotation)) is list


def _input_type(annotation: Any) -> tuple[str, str | None]:
    """A number input for int and float fields (``X | None`` included), text for the rest."""
    annotation = _bare(annotation)
    if annotation is int:
        return "number", "1"
    if annotation is float:
        return "number", "any"
    return "text", None


def _config_field(name: str, info: FieldInfo) -> FormField:
    kind, step = _input_type(info.annotation)
    parts = [info.description or ""]
    if _is_list(info):
        parts.append("separated by commas")
    default = info.get_default(call_default_factory=True) if not info.is_required() else None
    if default is not None:
        parts.append(f"default {', '.join(map(str, default)) if isinstance(default, list) else default}")
    hint = "; ".join(part for part in parts if part) or None
    return FormField(
        f"config_{name}", _label(name), kind, info.is_required(), hint[:1].upper() + hint[1:] if hint else None, step
    )


def provider_form(provider: str) -> tuple[list[FormField], list[FormField]]:
    """The secrets (password inputs; the first is required, as the service checks) and the config fields."""
    connector = CONNECTORS[provider]
    secrets = [
        FormField(f"credential_{name}", _label(name), "password", index == 0)
        for index, name in enumerate(connector.credential_fields)
    ]
    config = [_config_field(name, info) for name, info in connector.settings_model.model_fields.items()]
    return secrets, config


def _form_name(path: Sequence[Any]) -> str:
    """The input a problem at ``path`` (``credentials.apiKey``, ``config.baseUrl``, ``name``) belongs to."""
    if len(path) >= 2 and path[0] == "credentials":
        return f"credential_{to_snake(str(path[1]))}"
    if len(path) >= 2 and path[0] == "config":
        return f"config_{to_snake(str(path[1]))}"
    return to_snake(str(path[0])) if path else "form"


def _typed_config(model: type[BaseModel], raw: dict[str, str]) -> dict[str, Any]:
    """The config as the API would receive it: numbers as numbers when the model reads them so, lists from their
    comma-separated items; otherwise the text as typed, which the service's check then refuses naming the field."""
    given: dict[str, Any] = {
        name: [item.strip() for item in value.split(",") if item.strip()]
        if name in model.model_fields and _is_list(model.model_fields[name])
        else value
        for name, value in raw.items()
    }
    try:
        return model.model_validate(given).model_dump(include=set(given))
    except ValidationError:
        return given


def _provider(provider: str) -> str:
    if provider not in CONNECTORS:
        raise NotFound("No such provider")
    return provider


def _lag(integration: Integration) -> str:
    """Since the last successful sync, as the API's ``lagSeconds``, in words."""
    if integration.last_success_at is None:
        return "never synced"
    seconds = int((dt.datetime.now(dt.UTC) - integration.last_success_at).total_seconds())
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class Progress:
    """How far a run is, in the provider's streams: the ones before the stream it is reading are done."""

    done: int
    total: int
    active: bool


def progress_of(provider: str, run: SyncRun) -> Progress:
    streams = CONNECTORS[provider].streams
    if run.status == "succeeded":
        return Progress(len(streams), len(streams), False)
    reached = [streams.index(stream) for stream in run.fetched if stream in streams]
    return Progress(max(reached, default=0), len(streams), run.status in ACTIVE_RUN)


@router.get("/integrations", name="console.integrations_list")
async def integrations_page(
    request: Request,
    principal: IntegrationsReadPage,
    session: DbSession,
    page: Page,
) -> Response:
    found, total = await service.list_integrations(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    rows = [
        {"integration": integration, "provider": PROVIDER_NAMES[integration.provider], "lag": _lag(integration)}
        for integration in found
    ]
    context = {"rows": rows, "page": page, "total": total}
    return render(request, "integrations/list.html", context)


def oauth_fields(provider: str) -> list[FormField]:
    """What to give before the provider's consent screen (GA4's property, Shopify's store)."""
    model = CONNECTORS[provider].settings_model
    return [_config_field(name, model.model_fields[name]) for name in SERVERS[provider].needs]


def _connect_context(
    settings: Settings, provider: str, values: Mapping[str, Any], errors: Mapping[str, str]
) -> dict[str, Any]:
    secrets, config = provider_form(provider)
    return {
        "provider": provider,
        "provider_name": PROVIDER_NAMES[provider],
        "providers": PROVIDER_NAMES,
        "secrets": secrets,
        "config": config,
        "oauth_fields": oauth_fields(provider) if provider in oauth.connectable(settings) else None,
        "values": {key: value for key, value in values.items() if not key.startswith("credential_")},
        "errors": errors,
    }


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/integrations/new", name="console.integrations_new")
async def connect_page(
    request: Request, principal: IntegrationsCreatePage, provider: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    settings = _settings(request)
    if provider is None:
        connectable = oauth.connectable(settings)
        needs = {name: bool(SERVERS[name].needs) for name in connectable}
        return render(request, "integrations/providers.html", {"providers": PROVIDER_NAMES, "oauth": needs})
    return render(
        request, "integrations/connect.html", _connect_context(settings, _provider(provider), {"test": "on"}, {})
    )


def _form_errors(exc: ValidationError) -> dict[str, str]:
    """A request model's problems, each by the input it belongs to."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        errors.setdefault(_form_name(problem["loc"]), str(problem["msg"]).removeprefix("Value error, "))
    return errors


def _refusal_errors(exc: AppError) -> dict[str, str]:
    """A service's refusal: its message over the form, its details beside their inputs."""
    errors = {"form": exc.message}
    for detail in exc.details or []:
        path = str(detail.get("field", "")).removeprefix("body.").split(".")
        errors.setdefault(_form_name(path), str(detail.get("message", "")))
    return errors


def _config_of(provider: str, values: Mapping[str, str]) -> dict[str, Any]:
    """The form's ``config_*`` inputs as the API's camelCase config."""
    raw = {key.removeprefix("config_"): value for key, value in values.items() if key.startswith("config_") and value}
    return {to_camel(key): value for key, value in _typed_config(CONNECTORS[provider].settings_model, raw).items()}


@router.post("/integrations/new", name="console.integrations_connect")
async def connect(
    request: Request,
    principal: IntegrationsCreatePage,
    session: DbSession,
    provider: Annotated[str, Query(max_length=40)],
) -> Response:
    """Connect with the API's request model and service: a problem is shown beside its field (422)."""
    provider = _provider(provider)
    settings = _settings(request)
    values = await _form_values(request)
    credentials = {
        to_camel(key.removeprefix("credential_")): value
        for key, value in values.items()
        if key.startswith("credential_") and value
    }
    body = {
        "provider": provider,
        "name": values.get("name", ""),
        "credentials": credentials,
        "config": _config_of(provider, values),
        "test": values.get("test") == "on",
    }
    try:
        parsed = IntegrationCreate.model_validate(body)
    except ValidationError as exc:
        context = _connect_context(settings, provider, values, _form_errors(exc))
        return render(request, "integrations/connect.html", context, status=422)
    try:  # refused before anything is written (module docstring)
        integration = await service.connect(
            session,
            principal=principal,
            provider=parsed.provider,
            name=parsed.name,
            credentials={to_snake(key): value for key, value in parsed.credentials.items()},
            config={to_snake(key): value for key, value in parsed.config.items()},
            test=parsed.test,
        )
    except AppError as exc:
        if exc.status != 422:
            raise
        context = _connect_context(settings, provider, values, _refusal_errors(exc))
        return render(request, "integrations/connect.html", context, status=422)
    return redirect(request, f"/app/integrations/{integration.id}")


async def _form_values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if key != CSRF_FIELD and isinstance(value, str)}


@router.post("/integrations/oauth/{provider}/start", name="console.integrations_oauth_start")
async def oauth_start(
    request: Request,
    principal: IntegrationsCreatePage,
    session: DbSession,
    provider: Annotated[str, PathParam(max_length=40)],
) -> Response:
    """Off to the provider's consent screen, for a new integration (name and settings from the form) or to reconnect
    one (``integration_id``); problems are shown beside their inputs on the connect page."""
    provider = _provider(provider)
    settings = _settings(request)
    values = await _form_values(request)
    given = {key.removeprefix("oauth_"): value for key, value in values.items()}
    body = {
        "name": given.get("name") or None,
        "config": _config_of(provider, given),
        "integrationId": given.get("integration_id") or None,
    }
    try:
        parsed = OAuthStart.model_validate(body)
        started = await oauth.start(
            session,
            principal=principal,
            provider=provider,
            name=parsed.name,
            config={to_snake(key): value for key, value in parsed.config.items()},
            integration_id=parsed.integration_id,
        )
    except ValidationError as exc:
        errors = _form_errors(exc)
    except AppError as exc:  # refused before anything is written (module docstring)
        if exc.status != 422:
            raise
        errors = _refusal_errors(exc)
    else:
        asks = oauth.server_for(settings, provider).requested_scopes
        return leave_for(request, started.url, PROVIDER_NAMES[provider], asks=asks)
    oauth_errors = {f"oauth_{key}": message for key, message in errors.items()}
    return render(
        request, "integrations/connect.html", _connect_context(settings, provider, values, oauth_errors), status=422
    )


@router.get("/integrations/oauth/{provider}/callback", name="console.integrations_oauth_callback")
async def oauth_callback(
    request: Request,
    principal: IntegrationsCreatePage,
    session: DbSession,
    provider: Annotated[str, PathParam(max_length=40)],
) -> Response:
    """Back from the provider's consent screen: the integration connected (or reconnected), or why not."""
    provider = _provider(provider)
    params = dict(request.query_params)
    if len(params) > CALLBACK_PARAMS or any(len(value) > 2048 for value in params.values()):
        raise AppError("That is not a provider's answer", code="oauth_refused")
    try:
        finished = await oauth.finish(session, principal=principal, provider=provider, callback=params)
    except AppError as exc:
        if exc.status not in (400, 502):
            raise
        context = _connect_context(_settings(request), provider, {}, {"oauth_form": exc.message})
        return render(request, "integrations/connect.html", context, status=exc.status)
    audit_target(
        request, "integration", finished.integration.id, oauth="reconnect" if finished.reconnected else "connect"
    )
    await audit_service.record_request(session, request, principal)
    return redirect(request, f"/app/integrations/{finished.integration.id}")


async def _detail(
    request: Request,
    session: DbSession,
    principal: Principal,
    integration_id: uuid.UUID,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> Response:
    integration = await service.get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    runs, total = await service.list_runs(
        session, org_id=principal.org_id, integration_id=integration_id, offset=0, limit=RUNS_SHOWN
    )
    consents, _ = await oauth.list_consents(
        session,
        org_id=principal.org_id,
        integration_id=integration_id,
        provider=None,
        offset=0,
        limit=CONSENTS_SHOWN,
    )
    context = {
        "integration": integration,
        "provider": PROVIDER_NAMES[integration.provider],
        "reconnectable": integration.provider in oauth.connectable(settings_of(session)),
        "consents": consents,
        "people": await oauth.people(session, org_id=principal.org_id, consents=consents),
        "may_delete": principal.may_try("delete", "integrations"),
        "lag": _lag(integration),
        "runs": [_run_view(run) for run in runs],
        "runs_total": total,
        "latest": _latest(integration, runs),
        "may_change": principal.may_try("update", "integrations"),
        "notice": notice,
        "problem": problem,
    }
    return render(request, "integrations/detail.html", context, status=status)


def _run_view(run: SyncRun) -> dict[str, Any]:
    finished = run.finished_at or dt.datetime.now(dt.UTC)
    took = int((finished - run.started_at).total_seconds()) if run.started_at else None
    return {
        "run": run,
        "rows": sum(run.fetched.values()),
        "took": f"{took} s" if took is not None else "",
    }


def _latest(integration: Integration, runs: Sequence[SyncRun]) -> dict[str, Any] | None:
    """The newest run and how far it is, for the progress bar (polled while the run is queued or running)."""
    if not runs:
        return None
    run = runs[0]
    return {
        "run": run,
        "progress": progress_of(integration.provider, run),
        "rows": sum(run.fetched.values()),
        "url": f"/app/integrations/{integration.id}/progress",
    }


@router.get("/integrations/{integration_id}", name="console.integrations_detail")
async def detail_page(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsReadPage, session: DbSession
) -> Response:
    return await _detail(request, session, principal, integration_id)


@router.get("/integrations/{integration_id}/progress", name="console.integrations_progress")
async def progress_fragment(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsReadPage, session: DbSession
) -> Response:
    """The latest run's progress bar; once the run has finished the fragment comes without its polling trigger."""
    integration = await service.get_integration(session, org_id=principal.org_id, integration_id=integration_id)
    runs, _ = await service.list_runs(
        session, org_id=principal.org_id, integration_id=integration_id, offset=0, limit=1
    )
    return render(request, "integrations/progress.html", {"latest": _latest(integration, runs)})


@router.post("/integrations/{integration_id}/test", name="console.integrations_test")
async def test_connection(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsUpdatePage, session: DbSession
) -> Response:
    try:
        await service.test_integration(session, principal=principal, integration_id=integration_id)
    except AppError as exc:
        if exc.status != 422:
            raise
        return await _detail(request, session, principal, integration_id, problem=exc.message, status=422)
    return await _detail(request, session, principal, integration_id, notice="The connection works.")


@router.post("/integrations/{integration_id}/sync", name="console.integrations_sync")
async def sync_now(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsUpdatePage, session: DbSession
) -> Response:
    try:
        await service.sync_now(session, principal=principal, integration_id=integration_id)
    except AppError as exc:
        if exc.status != 409:
            raise
        return await _detail(request, session, principal, integration_id, problem=exc.message, status=409)
    return redirect(request, f"/app/integrations/{integration_id}")


async def _set_paused(
    request: Request, session: AsyncSession, principal: Principal, integration_id: uuid.UUID, *, paused: bool
) -> Response:
    await service.set_paused(session, principal=principal, integration_id=integration_id, paused=paused)
    return redirect(request, f"/app/integrations/{integration_id}")


@router.post("/integrations/{integration_id}/pause", name="console.integrations_pause")
async def pause(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsUpdatePage, session: DbSession
) -> Response:
    return await _set_paused(request, session, principal, integration_id, paused=True)


@router.post("/integrations/{integration_id}/resume", name="console.integrations_resume")
async def resume(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsUpdatePage, session: DbSession
) -> Response:
    return await _set_paused(request, session, principal, integration_id, paused=False)


@router.post("/integrations/{integration_id}/disconnect", name="console.integrations_disconnect")
async def disconnect(
    request: Request, integration_id: uuid.UUID, principal: IntegrationsDeletePage, session: DbSession
) -> Response:
    """The API's disconnect: a grant made through the provider's consent screen is revoked there first."""
    await service.disconnect(session, principal=principal, integration_id=integration_id)
    return redirect(request, "/app/integrations")
