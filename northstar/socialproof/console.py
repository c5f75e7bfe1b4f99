"""The console's social proof pages: sites and their embed code, the notification editor with a preview drawn by
the real widget, template CSS, analytics charts and the live event feed.

Every page calls the same service functions and validates with the same request models as the merchant API, behind
the same gates (``auth.py``), so the console and the API cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel, to_snake
from sse_starlette import EventSourceResponse, ServerSentEvent

from northstar.core.console.pages import CSRF_FIELD, console_router, redirect, render
from northstar.core.console.vendor import sri
from northstar.core.context import DbSession, audit_target
from northstar.core.http import AppError
from northstar.core.permissions import Principal
from northstar.core.pubsub import EventHub, may_receive
from northstar.settings import Settings
from northstar.socialproof.api.billing import return_url, subscription_out
from northstar.socialproof.api.merchant import one_site_out
from northstar.socialproof.api.public import widget_asset, widget_path
from northstar.socialproof.auth import (
    BillingReadPage,
    BillingUpdatePage,
    SitesCreatePage,
    SitesReadPage,
    SitesUpdatePage,
)
from northstar.socialproof.models import Notification, Site, Template
from northstar.socialproof.runtime import LIVE_EVENTS_TOPIC
from northstar.socialproof.schemas.analytics import Analytics, Granularity
from northstar.socialproof.schemas.sites import (
    NotificationCreate,
    NotificationOut,
    NotificationUpdate,
    SiteCreate,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)
from northstar.socialproof.service import analytics as analytics_service
from northstar.socialproof.service import billing
from northstar.socialproof.service import sites as service
from northstar.socialproof.service.feed import preview_feed

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static" / "console"
LIST_LIMIT = 100
NOTIFICATION_LISTS = ("source.event_types", "targeting.devices")  # checkbox groups: absent when none is checked
GRANULARITIES = (("minute", "Minute"), ("hour", "Hour"), ("day", "Day"), ("week", "Week"), ("month", "Month"))
# how far back each granularity looks: every range stays under the API's 5,000 points
RANGE_DAYS: dict[str, int] = {"minute": 1, "hour": 7, "day": 30, "week": 182, "month": 730}
TIME_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")
M = TypeVar("M", bound=BaseModel)

router = console_router()


class Form:
    """A submitted form as the API's JSON: dotted names nest (``source.period``), checkbox groups are lists, empty
    inputs of the documents and an empty template choice are null. Validated by the API's request model, with the
    errors keyed by the input's name."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.errors: dict[str, str] = {}

    @classmethod
    async def read(cls, request: Request, lists: tuple[str, ...] = ()) -> Form:
        form = await request.form()
        values: dict[str, Any] = {key: [] for key in lists}
        for key in form:
            if key == CSRF_FIELD:
                continue
            given = [value for value in form.getlist(key) if isinstance(value, str)]
            values[key] = given if key in lists else (given[-1] if given else "")
        return cls(values)

    def document(self) -> dict[str, Any]:
        """The nested camelCase body the API would receive."""
        body: dict[str, Any] = {}
        for key, value in self.values.items():
            *parents, leaf = key.split(".")
            node = body
            for parent in parents:
                node = node.setdefault(to_camel(parent), {})
            node[to_camel(leaf)] = None if value == "" and (parents or key == "template_id") else value
        return body

    def validate(self, model: type[M], body: dict[str, Any] | None = None) -> M | None:
        try:
            return model.model_validate(self.document() if body is None else body)
        except ValidationError as exc:
            for error in exc.errors():
                name = ".".join(to_snake(str(part)) for part in error["loc"] if isinstance(part, str)) or "form"
                self.errors.setdefault(name, str(error["msg"]).removeprefix("Value error, "))
            return None


def _merged(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The stored documents with what the form gives over them (fields the form does not show are kept)."""
    merged = dict(stored)
    for key, value in given.items():
        nested = isinstance(value, dict) and isinstance(stored.get(key), dict)
        merged[key] = _merged(stored[key], value) if nested else value
    return merged


# ---- sites ----


def _site_values(site: Site | None = None) -> dict[str, Any]:
    settings = dict(site.settings) if site else {}
    return {
        "name": site.name if site else "",
        "domain": site.domain if site else "",
        "settings.timezone": settings.get("timezone", "UTC"),
        "settings.position": settings.get("position", "bottom-left"),
        "settings.theme": settings.get("theme", "auto"),
        "settings.locale": settings.get("locale", "en"),
        "data_region": site.data_region if site else "us",
    }


async def _sites_page(
    request: Request, session: DbSession, principal: Principal, form: Form, *, status: int = 200
) -> Response:
    sites, total = await service.list_sites(session, org_id=principal.org_id, search=None, offset=0, limit=LIST_LIMIT)
    states = await service.verification_states(session, sites)
    context = {"sites": sites, "states": states, "total": total, "values": form.values, "errors": form.errors}
    return render(request, "socialproof/sites.html", context, status=status)


@router.get("/sites", name="console.socialproof_sites")
async def sites_page(request: Request, principal: SitesReadPage, session: DbSession) -> Response:
    return await _sites_page(request, session, principal, Form(_site_values()))


@router.post("/sites", name="console.socialproof_site_create")
async def create_site(request: Request, principal: SitesCreatePage, session: DbSession) -> Response:
    form = await Form.read(request)
    body = form.validate(SiteCreate)
    if body is None:
        return await _sites_page(request, session, principal, form, status=422)
    try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
        async with session.begin_nested():
            site = await service.create_site(
                session,
                principal=principal,
                name=body.name,
                domain=body.domain,
                settings=body.settings.model_dump(by_alias=True),
                data_region=body.data_region,
            )
    except AppError as exc:
        if exc.status >= 500:
            raise
        form.errors["domain"] = exc.message
        return await _sites_page(request, session, principal, form, status=exc.status)
    audit_target(request, "site", site.id, domain=site.domain)
    return redirect(request, f"/app/sites/{site.id}")


async def _site_page(
    request: Request, session: DbSession, principal: Principal, site_id: uuid.UUID, *, error: str | None = None
) -> Response:
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    notifications, _ = await service.list_notifications(
        session, org_id=principal.org_id, site_id=site.id, status=None, offset=0, limit=LIST_LIMIT
    )
    templates, _ = await service.list_templates(
        session, org_id=principal.org_id, site_id=site.id, offset=0, limit=LIST_LIMIT
    )
    context = {
        "site": await one_site_out(request, session, site),
        "notifications": notifications,
        "templates": templates,
        "may_change": principal.can("update", "sites", owner_id=site.created_by),  # a member: their own sites
        "verify_error": error,
    }
    return render(request, "socialproof/site.html", context, status=422 if error else 200)


@router.get("/sites/{site_id}", name="console.socialproof_site")
async def site_page(site_id: uuid.UUID, request: Request, principal: SitesReadPage, session: DbSession) -> Response:
    return await _site_page(request, session, principal, site_id)


@router.post("/sites/{site_id}/verify", name="console.socialproof_site_verify")
async def verify_site(site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession) -> Response:
    settings: Settings = request.app.state.settings
    config = settings.socialproof
    try:  # a failed check is refused before any write
        await service.verify_site(
            session,
            principal=principal,
            site_id=site_id,
            url_template=config.verification_url,
            policy=service.verification_policy(settings.outbound, timeout_seconds=config.verification_timeout_seconds),
        )
    except service.VerificationFailed as exc:
        return await _site_page(request, session, principal, site_id, error=exc.message)
    audit_target(request, "site", site_id, verified=True)
    return redirect(request, f"/app/sites/{site_id}")


# ---- plan and usage ----


async def _billing_page(
    request: Request,
    session: DbSession,
    principal: Principal,
    site_id: uuid.UUID,
    *,
    state: billing.BillingState | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    state = state or await billing.billing_state(session, org_id=principal.org_id, site_id=site_id)
    context = {
        "site": site,
        "subscription": subscription_out(request.app.state.settings.socialproof.billing, state),
        "may_change": principal.can("update", "billing"),
        "checkout": request.query_params.get("checkout"),
        "error": error,
    }
    return render(request, "socialproof/billing.html", context, status=status)


@router.get("/sites/{site_id}/billing", name="console.socialproof_billing")
async def billing_page(
    site_id: uuid.UUID, request: Request, principal: BillingReadPage, session: DbSession
) -> Response:
    return await _billing_page(request, session, principal, site_id)


@router.post("/sites/{site_id}/billing", name="console.socialproof_billing_change")
async def change_plan(
    site_id: uuid.UUID, request: Request, principal: BillingUpdatePage, session: DbSession
) -> Response:
    """Choose a plan: applied at once, or on to the provider's checkout page."""
    plan = str((await request.form()).get("plan") or "")
    try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
        async with session.begin_nested():
            state = await billing.change_plan(
                session, principal=principal, site_id=site_id, plan_key=plan, return_url=return_url(request, site_id)
            )
    except AppError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        return await _billing_page(request, session, principal, site_id, error=exc.message, status=exc.status)
    audit_target(request, "subscription", principal.org_id, plan=plan, site=str(site_id))
    if state.checkout_url:
        return redirect(request, state.checkout_url)
    return redirect(request, f"/app/sites/{site_id}/billing")


@router.post("/sites/{site_id}/billing/portal", name="console.socialproof_billing_portal")
async def open_portal(
    site_id: uuid.UUID, request: Request, principal: BillingUpdatePage, session: DbSession
) -> Response:
    try:
        url = await billing.portal_url(
            session, principal=principal, site_id=site_id, return_url=return_url(request, site_id)
        )
    except AppError as exc:
        if exc.status >= 500 or exc.status == 404:
            raise
        return await _billing_page(request, session, principal, site_id, error=exc.message, status=exc.status)
    return redirect(request, url)


# ---- notifications ----

NOTIFICATION_TYPES = (
    ("recent_activity", "Recent activity"),
    ("live_visitors", "Live visitors"),
    ("period_counter", "Period counter"),
    ("review_highlight", "Review highlight"),
    ("announcement", "Announcement"),
)


def _notification_values(notification: Notification | None) -> dict[str, Any]:
    """The editor's inputs, from the stored notification (or a new one's defaults)."""
    fields = (
        NotificationOut.model_validate(notification).model_dump(mode="json")
        if notification
        else NotificationCreate.model_validate(
            {"name": "Recent purchases", "type": "recent_activity", "source": {"eventTypes": ["purchase"]}}
        ).model_dump(mode="json")
    )
    values: dict[str, Any] = {
        "name": fields["name"],
        "type": fields["type"],
        "status": fields["status"],
        "template_id": str(fields["template_id"] or ""),
    }
    for document, keys in (
        ("source", ("event_types", "custom_event", "period", "scope", "min_count")),
        ("display", ("first_delay_seconds", "duration_seconds", "gap_seconds", "max_per_page", "max_per_session")),
        ("anonymization", ("name", "location")),
        ("targeting", ("devices",)),
    ):
        stored = {to_snake(key): value for key, value in fields[document].items()}
        for key in keys:
            value = stored.get(key)
            values[f"{document}.{key}"] = value if isinstance(value, list) else ("" if value is None else str(value))
    return values


async def _draft_feed(
    session: DbSession, principal: Principal, site: Site, draft: NotificationCreate
) -> dict[str, Any]:
    """The feed the real widget draws in the editor's preview, from the draft and its template."""
    template: Template | None = None
    if draft.template_id is not None:
        template = await service.get_template(
            session, org_id=principal.org_id, site_id=site.id, template_id=draft.template_id
        )
    feed = preview_feed(
        site_settings=site.settings,
        domain=site.domain,
        fields=draft.model_dump(mode="json", by_alias=True),
        message=template.message if template else None,
        css=template.css_content if template else "",
        now=dt.datetime.now(dt.UTC),
    )
    return feed.model_dump(mode="json", by_alias=True)


async def _editor(
    request: Request,
    session: DbSession,
    principal: Principal,
    site: Site,
    form: Form,
    *,
    notification: Notification | None,
    status: int = 200,
) -> Response:
    templates, _ = await service.list_templates(
        session, org_id=principal.org_id, site_id=site.id, offset=0, limit=LIST_LIMIT
    )
    draft = Form(form.values).validate(NotificationCreate)  # the preview's own check: the form shows its errors
    context = {
        "site": site,
        "notification": notification,
        "templates": templates,
        "types": NOTIFICATION_TYPES,
        "values": form.values,
        "errors": form.errors,
        "feed": await _draft_feed(session, principal, site, draft) if draft else None,
        "widget_src": widget_path(),
        "widget_integrity": sri(widget_asset().body),
    }
    return render(request, "socialproof/notification.html", context, status=status)


@router.get("/sites/{site_id}/notifications/new", name="console.socialproof_notification_new")
async def new_notification(
    site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    return await _editor(request, session, principal, site, Form(_notification_values(None)), notification=None)


@router.post("/sites/{site_id}/notifications/new", name="console.socialproof_notification_create")
async def create_notification(
    site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    form = await Form.read(request, NOTIFICATION_LISTS)
    body = form.validate(NotificationCreate)
    if body is not None:
        try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
            async with session.begin_nested():
                created = await service.create_notification(session, principal=principal, site_id=site.id, fields=body)
        except AppError as exc:
            if exc.status >= 500:
                raise
            form.errors["form"] = exc.message
        else:
            audit_target(request, "notification", created.id, site=str(site.id), status=created.status)
            return redirect(request, f"/app/sites/{site.id}/notifications/{created.id}")
    return await _editor(request, session, principal, site, form, notification=None, status=422)


@router.post("/sites/{site_id}/notifications/preview", name="console.socialproof_notification_preview")
async def preview_notification(
    site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    """The preview's data as the form stands (htmx, on every change): the page's script hands it to the widget."""
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    form = await Form.read(request, NOTIFICATION_LISTS)
    draft = form.validate(NotificationCreate)
    feed = await _draft_feed(session, principal, site, draft) if draft else None
    return render(request, "socialproof/preview.html", {"feed": feed, "errors": form.errors})


NOTIFICATION_PATH = "/sites/{site_id}/notifications/{notification_id}"


@router.get(NOTIFICATION_PATH, name="console.socialproof_notification")
async def notification_page(
    site_id: uuid.UUID, notification_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    notification = await service.get_notification(
        session, org_id=principal.org_id, site_id=site.id, notification_id=notification_id
    )
    form = Form(_notification_values(notification))
    return await _editor(request, session, principal, site, form, notification=notification)


@router.post(NOTIFICATION_PATH, name="console.socialproof_notification_update")
async def update_notification(
    site_id: uuid.UUID, notification_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    notification = await service.get_notification(
        session, org_id=principal.org_id, site_id=site.id, notification_id=notification_id
    )
    form = await Form.read(request, NOTIFICATION_LISTS)
    form.values["type"] = notification.type  # fixed once created
    stored = NotificationOut.model_validate(notification).model_dump(mode="json", by_alias=True)
    given = form.document()
    given.pop("type", None)
    body = form.validate(NotificationUpdate, {key: _merged(stored, given)[key] for key in given})
    if body is not None:
        try:  # a refusal rolls back to its savepoint; the page is then drawn in the same transaction
            async with session.begin_nested():
                await service.update_notification(
                    session,
                    principal=principal,
                    site_id=site.id,
                    notification_id=notification.id,
                    changes=body.model_dump(mode="json", by_alias=True, exclude_unset=True),
                )
        except AppError as exc:
            if exc.status >= 500:
                raise
            form.errors["form"] = exc.message
        else:
            audit_target(request, "notification", notification.id, site=str(site.id), status=notification.status)
            return redirect(request, f"/app/sites/{site.id}/notifications/{notification.id}?saved=1")
    return await _editor(request, session, principal, site, form, notification=notification, status=422)


# ---- templates ----


async def _template_page(
    request: Request,
    site: Site,
    form: Form,
    *,
    template: Template | None,
    status: int = 200,
) -> Response:
    preview = TemplateOut.model_validate(template).preview if template else None
    context = {"site": site, "template": template, "preview": preview, "values": form.values, "errors": form.errors}
    return render(request, "socialproof/template.html", context, status=status)


def _template_values(template: Template | None) -> dict[str, Any]:
    return {
        "name": template.name if template else "",
        "message": template.message if template else '{{firstName|default:"Someone"}} from {{city}} bought {{product}}',
        "css_content": template.css_content if template else "",
    }


@router.get("/sites/{site_id}/templates/new", name="console.socialproof_template_new")
async def new_template(
    site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    return await _template_page(request, site, Form(_template_values(None)), template=None)


@router.post("/sites/{site_id}/templates/new", name="console.socialproof_template_create")
async def create_template(
    site_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    form = await Form.read(request)
    body = form.validate(TemplateCreate)
    if body is None:
        return await _template_page(request, site, form, template=None, status=422)
    template = await service.create_template(
        session,
        principal=principal,
        site_id=site.id,
        name=body.name,
        message=body.message,
        css_content=body.css_content,
    )
    audit_target(request, "template", template.id, site=str(site.id))
    return redirect(request, f"/app/sites/{site.id}/templates/{template.id}")


TEMPLATE_PATH = "/sites/{site_id}/templates/{template_id}"


@router.get(TEMPLATE_PATH, name="console.socialproof_template")
async def template_page(
    site_id: uuid.UUID, template_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    template = await service.get_template(session, org_id=principal.org_id, site_id=site.id, template_id=template_id)
    return await _template_page(request, site, Form(_template_values(template)), template=template)


@router.post(TEMPLATE_PATH, name="console.socialproof_template_update")
async def update_template(
    site_id: uuid.UUID, template_id: uuid.UUID, request: Request, principal: SitesUpdatePage, session: DbSession
) -> Response:
    site = await service.site_for_change(session, principal=principal, site_id=site_id)
    template = await service.get_template(session, org_id=principal.org_id, site_id=site.id, template_id=template_id)
    form = await Form.read(request)
    body = form.validate(TemplateUpdate)
    if body is None:
        return await _template_page(request, site, form, template=template, status=422)
    await service.update_template(
        session,
        principal=principal,
        site_id=site.id,
        template_id=template.id,
        changes=body.model_dump(exclude_none=True),
    )
    audit_target(request, "template", template.id, site=str(site.id))
    return redirect(request, f"/app/sites/{site.id}/templates/{template.id}?saved=1")


# ---- analytics ----


def _charts(analytics: Analytics) -> dict[str, Any]:
    """The charts' data blocks (charts.js): counts over time, and the click-through rate as a fraction."""
    x = [int(point.bucket.timestamp()) for point in analytics.series]
    counts = {
        "title": "Impressions, clicks and conversions",
        "x": x,
        "series": [
            {"label": label, "values": [getattr(point, key) for point in analytics.series]}
            for key, label in (("impressions", "Impressions"), ("clicks", "Clicks"), ("conversions", "Conversions"))
        ],
        "format": {},
    }
    ctr = {
        "title": "Click-through rate",
        "x": x,
        "series": [{"label": "CTR", "values": [point.ctr for point in analytics.series]}],
        "format": {"unit": "percent"},
    }
    return {"counts": counts, "ctr": ctr}


@router.get("/sites/{site_id}/analytics", name="console.socialproof_analytics")
async def analytics_page(
    site_id: uuid.UUID,
    request: Request,
    principal: SitesReadPage,
    session: DbSession,
    granularity: Granularity = "day",
    timezone: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    zone = timezone or str(site.settings.get("timezone", "UTC"))
    today = dt.datetime.now(dt.UTC).date()
    analytics = await analytics_service.site_analytics(
        session,
        org_id=principal.org_id,
        site_id=site.id,
        start=(today - dt.timedelta(days=RANGE_DAYS[granularity] - 1)).isoformat(),
        end=None,
        granularity=granularity,
        timezone=zone,
        notification_id=None,
    )
    zones = sorted({zone, str(site.settings.get("timezone", "UTC")), *TIME_ZONES})
    context = {
        "site": site,
        "analytics": analytics,
        "charts": _charts(analytics),
        "granularities": GRANULARITIES,
        "granularity": granularity,
        "zones": [(name, name) for name in zones],
        "zone": zone,
    }
    template = "socialproof/analytics_body.html" if request.headers.get("hx-request") == "true" else None
    return render(request, template or "socialproof/analytics.html", context)


# ---- live events ----


@router.get("/sites/{site_id}/live", name="console.socialproof_live")
async def live_page(site_id: uuid.UUID, request: Request, principal: SitesReadPage, session: DbSession) -> Response:
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    return render(request, "socialproof/live.html", {"site": site})


@router.get("/sites/{site_id}/live/stream", name="console.socialproof_live_stream", response_class=Response)
async def live_stream(
    site_id: uuid.UUID,
    request: Request,
    principal: SitesReadPage,
    session: DbSession,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> Response:
    """The site's ``socialproof.events`` of ``/events/stream``, for the console's EventSource (which can send the
    session cookie but no Authorization header). A browser that reconnects sends ``Last-Event-ID`` and is replayed
    what it missed."""
    site = await service.get_site(session, org_id=principal.org_id, site_id=site_id)
    await session.commit()  # the stream holds no transaction open
    hub: EventHub = request.app.state.events
    wanted = str(site.id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with hub.subscribe(principal.org_id, last_event_id=last_event_id) as subscription:
            yield ServerSentEvent(data="{}", event="reset" if subscription.lost else "ready", retry=1000)
            pending = list(subscription.replay)
            while True:
                for event in pending:
                    if (
                        event.topic == LIVE_EVENTS_TOPIC
                        and may_receive(principal, event)
                        and event.data.get("siteId") == wanted
                    ):
                        yield ServerSentEvent(data=orjson.dumps(event.data).decode(), event=event.topic, id=event.id)
                pending = [await subscription.queue.get()]

    return EventSourceResponse(events(), ping=15)
