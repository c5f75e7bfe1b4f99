"""The alerts pages of the console: your inbox (its unread count beside the navigation link, live), your
notification preferences, the alert rules and the delivery log. Same service functions and gates as the API."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from northstar.alerts.auth import RulesCreatePage, RulesDeletePage, RulesReadPage, RulesUpdatePage
from northstar.alerts.schemas import PreferencesUpdate, RuleCreate
from northstar.alerts.service import delivery, inbox, preferences, rules, unsubscribe
from northstar.core.console.pages import ConsolePrincipal, attempt, console_router, field_errors, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import Page
from northstar.core.permissions import Principal
from northstar.metrics import service as metrics_service

TEMPLATES = Path(__file__).parent / "templates"
KINDS = (
    ("threshold", "A metric crosses a value"),
    ("change", "A metric changes by a percentage"),
    ("anomaly", "A metric has an unusual day"),
    ("goal", "A goal is at risk or missed"),
    ("integration", "An integration fails or stops syncing"),
    ("report", "A report is ready"),
)
METRICS = (
    ("mrr", "MRR"),
    ("arr", "ARR"),
    ("customers", "Customers"),
    ("net_new", "Net new MRR"),
    ("customer_churn_rate", "Customer churn rate"),
    ("nrr", "NRR"),
    ("revenue", "Revenue"),
    ("orders", "Orders"),
    ("sessions", "Sessions"),
)
CHANNELS = (("in_app", "In the console"), ("email", "E-mail"))

router = console_router()


def _user(principal: Principal) -> uuid.UUID:
    assert principal.user_id is not None  # the console is for people: the session is a member's
    return principal.user_id


# Inbox


@router.get("/inbox", name="console.alerts_inbox")
async def inbox_page(request: Request, principal: ConsolePrincipal, session: DbSession, page: Page) -> Response:
    """Your in-app notifications, newest first (``GET /notifications/inbox``)."""
    found, total = await inbox.list_inbox(
        session,
        org_id=principal.org_id,
        user_id=_user(principal),
        unread_only=False,
        offset=page.offset,
        limit=page.limit,
    )
    context = {"messages": found, "total": total, "page": page}
    return render(request, "alerts/inbox.html", context)


@router.get("/inbox/count", name="console.alerts_inbox_count")
async def inbox_count(principal: ConsolePrincipal, session: DbSession) -> Response:
    """The unread count beside the navigation link (``GET /notifications/inbox/unread``)."""
    count = await inbox.unread_count(session, org_id=principal.org_id, user_id=_user(principal))
    return JSONResponse({"count": count}, headers={"cache-control": "no-store"})


@router.post("/inbox/{message_id}/read", name="console.alerts_inbox_read")
async def mark_read(
    message_id: uuid.UUID, request: Request, principal: ConsolePrincipal, session: DbSession
) -> Response:
    await inbox.mark_read(session, org_id=principal.org_id, user_id=_user(principal), message_id=message_id)
    return redirect(request, "/app/inbox")


@router.post("/inbox/read-all", name="console.alerts_inbox_read_all")
async def mark_all_read(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    await inbox.mark_all_read(session, org_id=principal.org_id, user_id=_user(principal))
    return redirect(request, "/app/inbox")


# Preferences


async def _preferences_page(
    request: Request, session: DbSession, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    found = await preferences.preferences_of(session, org_id=principal.org_id, user_id=_user(principal))
    context = {
        "preferences": found,
        "zone": await preferences.zone_of(session, found),
        "chosen": preferences.all_channels(found),
        "kinds": KINDS,
        "channels": CHANNELS,
        "hours": [(str(hour), f"{hour:02d}:00") for hour in range(24)],
        "errors": {},
        "saved": request.query_params.get("saved") is not None,
        **extra,
    }
    return render(request, "alerts/preferences.html", context, status=status)


@router.get("/notification-preferences", name="console.alerts_preferences")
async def preferences_page(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    """``GET /notifications/preferences``: your channels per kind of alert, quiet hours and digest."""
    return await _preferences_page(request, session, principal)


@router.post("/notification-preferences", name="console.alerts_preferences_update")
async def update_preferences(request: Request, principal: ConsolePrincipal, session: DbSession) -> Response:
    """``PATCH /notifications/preferences`` with every field of the form."""
    raw = await request.form()
    quiet = {"start": raw.get("quiet_start"), "end": raw.get("quiet_end")} if raw.get("quiet_start") else None
    try:
        change = PreferencesUpdate.model_validate(
            {
                "time_zone": raw.get("time_zone") or None,
                "quiet_hours": quiet,
                "digest": raw.get("digest") == "on",
                "digest_hour": raw.get("digest_hour") or 8,
                "channels": {kind: raw.getlist(f"channels.{kind}") for kind, _ in KINDS},
                "email_enabled": True if raw.get("email_enabled") == "on" else None,
            }
        )
    except ValidationError as exc:
        return await _preferences_page(request, session, principal, errors=field_errors(exc), status=422)
    changes = {name: getattr(change, name) for name in change.model_fields_set if name != "email_enabled"}
    changes["quiet_hours"] = change.quiet_hours.model_dump() if change.quiet_hours else None
    if change.email_enabled:
        changes["email_enabled"] = True
    await preferences.update_preferences(session, org_id=principal.org_id, user_id=_user(principal), changes=changes)
    audit_target(request, "alert_preferences", _user(principal))
    return redirect(request, "/app/notification-preferences?saved=1")


# Rules


def _condition_of(raw: Any, currency: str) -> dict[str, Any]:
    """The form's fields as the condition of its kind (the API's shape; the request model checks it)."""
    kind = str(raw.get("kind", ""))
    metric = str(raw.get("metric", ""))
    fields: dict[str, dict[str, Any]] = {
        "threshold": {
            "metric": metric,
            "direction": raw.get("direction_threshold"),
            "value": metrics_service.typed_value(metric, str(raw.get("value", "")), currency),
        },
        "change": {
            "metric": metric,
            "direction": raw.get("direction"),
            "percent": raw.get("percent"),
            "window_days": raw.get("window_days") or 7,
        },
        "anomaly": {
            "metric": metric,
            "direction": raw.get("direction"),
            "lookback_days": raw.get("lookback_days") or 3,
        },
        "goal": {"statuses": raw.getlist("statuses") or ["at_risk", "missed"]},
        "integration": {"problem": raw.get("problem"), "hours": raw.get("hours") or None},
        "report": {},
    }
    return {"kind": kind, **fields.get(kind, {})}


def _minutes(hours: str) -> int | str:
    """Hours typed in the form as the API's minutes (what is not a number goes on, for the model to refuse)."""
    try:
        return round(float(hours) * 60)
    except (ValueError, OverflowError):
        return hours


async def _rules_page(
    request: Request, session: DbSession, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    found, total = await rules.list_rules(session, org_id=principal.org_id, offset=0, limit=100)
    context = {
        "rules": found,
        "total": total,
        "kinds": KINDS,
        "kind_names": dict(KINDS),
        "metrics": METRICS,
        "currency": (await metrics_service.reporting(session, org_id=principal.org_id)).currency,
        "may_create": principal.may_try("create", "alerts"),
        "may_change": {rule.id: principal.can("update", "alerts", owner_id=rule.created_by) for rule in found},
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "alerts/rules.html", context, status=status)


@router.get("/alerts", name="console.alerts_rules")
async def rules_page(request: Request, principal: RulesReadPage, session: DbSession) -> Response:
    """``GET /notifications/rules`` and the form adding one."""
    return await _rules_page(request, session, principal)


@router.post("/alerts", name="console.alerts_rule_create")
async def create_rule(request: Request, principal: RulesCreatePage, session: DbSession) -> Response:
    """``POST /notifications/rules``: a value is typed in the metric's unit (money in the reporting currency)."""
    raw = await request.form()
    values = {key: value for key, value in raw.items() if isinstance(value, str) and key != "csrf_token"}
    currency = (await metrics_service.reporting(session, org_id=principal.org_id)).currency
    try:
        body = RuleCreate.model_validate(
            {
                "name": raw.get("name", ""),
                "condition": _condition_of(raw, currency),
                "cooldown_minutes": _minutes(str(raw.get("cooldown_hours") or "24")),
            }
        )
    except ValidationError as exc:
        return await _rules_page(request, session, principal, values=values, errors=field_errors(exc), status=422)
    rule, refusal, status = await attempt(
        request,
        session,
        lambda: rules.create_rule(
            session,
            principal=principal,
            name=body.name,
            condition=body.condition.model_dump(mode="json"),
            recipients=None,
            channels=[],
            cooldown_minutes=body.cooldown_minutes,
            enabled=True,
        ),
    )
    if rule is None:
        return await _rules_page(request, session, principal, values=values, errors={"form": refusal}, status=status)
    audit_target(request, "alert_rule", rule.id, kind=rule.kind)
    return redirect(request, "/app/alerts")


@router.post("/alerts/{rule_id}/toggle", name="console.alerts_rule_toggle")
async def toggle_rule(rule_id: uuid.UUID, request: Request, principal: RulesUpdatePage, session: DbSession) -> Response:
    """Turn a rule off or back on (``PATCH /notifications/rules/{id}`` with ``enabled``)."""
    found = await rules.get_rule(session, org_id=principal.org_id, rule_id=rule_id)
    changed, refusal, status = await attempt(
        request,
        session,
        lambda: rules.update_rule(
            session, principal=principal, rule_id=rule_id, changes={"enabled": not found.enabled}
        ),
    )
    if changed is None:
        return await _rules_page(request, session, principal, errors={"form": refusal}, status=status)
    audit_target(request, "alert_rule", rule_id, enabled=changed.enabled)
    return redirect(request, "/app/alerts")


@router.post("/alerts/{rule_id}/delete", name="console.alerts_rule_delete")
async def delete_rule(rule_id: uuid.UUID, request: Request, principal: RulesDeletePage, session: DbSession) -> Response:
    _, refusal, status = await attempt(
        request, session, lambda: rules.delete_rule(session, principal=principal, rule_id=rule_id)
    )
    if refusal is not None:
        return await _rules_page(request, session, principal, errors={"form": refusal}, status=status)
    audit_target(request, "alert_rule", rule_id)
    return redirect(request, "/app/alerts")


@router.get("/alerts/history", name="console.alerts_history")
async def history_page(
    request: Request,
    principal: RulesReadPage,
    session: DbSession,
    page: Page,
    status: Annotated[
        str | None, Query(pattern="^(queued|held|sending|retrying|sent|failed|skipped|digested)$")
    ] = None,
) -> Response:
    """``GET /notifications/history``: each delivery's channel, status, attempts and last error."""
    found, total = await delivery.list_history(
        session, principal=principal, rule_id=None, channel=None, status=status, offset=page.offset, limit=page.limit
    )
    base = "/app/alerts/history" + (f"?status={status}" if status else "")
    context = {"deliveries": found, "total": total, "page": page, "status": status or "", "base_url": base}
    return render(request, "alerts/history.html", context)


# Unsubscribing from an alert e-mail's own link


@router.get("/unsubscribe", name="console.alerts_unsubscribe")
async def unsubscribe_page(
    request: Request, session: DbSession, token: Annotated[str, Query(min_length=1, max_length=500)]
) -> Response:
    """What the e-mail's link would turn off, and a button doing it: opening a link changes nothing (mail scanners
    open links). No sign-in: the signed token is the authority, as for the one-click address."""
    found = await unsubscribe.describe(session, token=token)
    return render(request, "alerts/unsubscribe.html", {"found": found, "token": token, "done": False})


@router.post("/unsubscribe", name="console.alerts_unsubscribe_confirm")
async def confirm_unsubscribe(
    request: Request, session: DbSession, token: Annotated[str, Form(min_length=1, max_length=500)]
) -> Response:
    found = await unsubscribe.unsubscribe(session, token=token)
    return render(request, "alerts/unsubscribe.html", {"found": found, "token": token, "done": True})
