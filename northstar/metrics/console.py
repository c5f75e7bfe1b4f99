"""The KPIx pages of the console: the dashboard (home), a metric's chart with its anomalies and the explain drawer,
MRR movements (waterfall and cohort heat map), goals, and KPI exports.

Every page reads through the same query and service functions as the dashboard API, behind the same gates, so a
number on a page is the number the API answers for the same period."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request
from fastapi.responses import Response
from pydantic.alias_generators import to_camel

from northstar.core.console.pages import attempt, console_router, read_form, redirect, render
from northstar.core.context import DbSession, audit_target
from northstar.core.http import Day, Unprocessable
from northstar.core.permissions import Principal, Role
from northstar.datasets import service as datasets_service
from northstar.metrics import engine, queries, service
from northstar.metrics.auth import (
    DashboardReadPage,
    GoalsCreatePage,
    GoalsDeletePage,
    GoalsUpdatePage,
    KpiExportCreatePage,
    MetricDetailsReadPage,
    SettingsReadPage,
    SettingsUpdatePage,
)
from northstar.metrics.inputs import minor_units
from northstar.metrics.schemas import GoalCreate, GoalUpdate, MetricExport, PolicyUpdate

TEMPLATES = FilePath(__file__).parent / "templates"
STATIC = FilePath(__file__).parent / "static"

MetricPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
Grain = Literal["day", "week", "month"]
MovementKind = Literal["new", "expansion", "reactivation", "contraction", "churn", "fx"]
LABELS = {
    "mrr": "MRR",
    "arr": "ARR",
    "arpa": "ARPA",
    "net_new": "Net new MRR",
    "nrr": "NRR",
    "grr": "GRR",
    "ltv": "LTV",
    "cac": "CAC",
    "aov": "Average order value",
    "customer_churn_rate": "Customer churn rate",
    "net_mrr_churn_rate": "Net MRR churn rate",
    "gross_mrr_churn_rate": "Gross MRR churn rate",
}
# the metrics made of MRR movements: their numbers can be explained by the movements and invoice lines behind them
EXPLAINED = frozenset({"mrr", "arr", "net_new", "new", "expansion", "reactivation", "contraction", "churn"})
JOB_FINISHED = frozenset({"completed", "failed", "cancelled"})
EXPORT_FORMATS = (("csv", "CSV"), ("parquet", "Parquet"))
GOAL_METRICS = (*queries.CARD_METRICS, *queries.SOURCE_CARD_METRICS)  # the metrics a goal or an investor card names

router = console_router()


def label(metric: str) -> str:
    return LABELS.get(metric, metric.replace("_", " ").capitalize())


def _percent(metric: str) -> bool:
    """Rates are stored in percent (22.64 is 22.64 %)."""
    return metric.endswith("_rate") or metric in ("nrr", "grr")


def money_text(value: dict[str, Any]) -> str:
    """Integer minor units shown in their currency: 123456 USD (exponent 2) is "1,234.56 USD"."""
    exponent = value["exponent"]
    return f"{Decimal(value['amount']).scaleb(-exponent):,.{exponent}f} {value['currency']}"


def show(metric: str, value: Any) -> str:
    """A metric's value as text: money in its currency, rates in percent, counts and ratios as numbers."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        return money_text(value)
    if _percent(metric):
        return f"{value:,.2f} %"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"


def _chart_value(metric: str, value: Any) -> Any:
    """What a chart plots: money as minor units, rates as fractions, anything else as it is."""
    if isinstance(value, dict):
        return value["amount"]
    if value is not None and _percent(metric):
        return value / 100
    return value


def chart_format(metric: str, currency: str) -> dict[str, Any]:
    if metric in queries.MONEY:
        return {"currency": currency, "exponent": minor_units(currency)}
    return {"unit": "percent"} if _percent(metric) else {}


def _period_end(day: dt.date, grain: str) -> dt.date:
    if grain == "week":
        return day + dt.timedelta(days=6)
    if grain == "month":
        return engine.add_months(day, 1) - dt.timedelta(days=1)
    return day


def _period_start(day: dt.date, grain: str) -> dt.date:
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    return engine.month_start(day) if grain == "month" else day


def _anomaly_label(item: dict[str, Any]) -> str:
    if item["score"] is None:
        return f"Unusual ({item['direction']}): away from a flat history"
    return f"Unusual ({item['direction']}): robust z-score {item['score']}"


def _is_investor(principal: Principal) -> bool:
    return principal.role == Role.INVESTOR


async def _policy(session: DbSession, principal: Principal) -> tuple[dt.date, str]:
    """Today in the organization's time zone and its reporting currency, as the API's ``_reporting``."""
    policy = await service.policy_of(session, org_id=principal.org_id)
    return service.today_in(policy), policy.reporting_currency


def _common(principal: Principal) -> dict[str, Any]:
    return {
        "show": show,
        "label": label,
        "may_explain": principal.may_try("read", "data"),
        "may_export": principal.may_try("create", "exports"),
        "export_formats": EXPORT_FORMATS,
    }


@router.get("/", name="console.metrics_home")
async def home(request: Request, principal: DashboardReadPage, session: DbSession) -> Response:
    """The KPI cards of ``GET /dashboard`` (investors: the shared ones) and the goals of ``GET /dashboard/goals``."""
    investor = _is_investor(principal)
    found = await queries.headline(session, org_id=principal.org_id, investor=investor)
    visible = await queries.visible_metrics(session, org_id=principal.org_id, investor=investor)
    goals = [
        goal
        for goal in await queries.goal_statuses(
            session, org_id=principal.org_id, today=found.today, currency=found.currency
        )
        if visible is None or goal["metric"] in visible
    ]
    has_data = any(card.value is not None or any(point is not None for point in card.sparkline) for card in found.cards)
    months = [engine.add_months(engine.month_start(found.today), back - queries.SPARK_MONTHS + 1) for back in range(12)]
    sparklines = {
        card.metric: {
            "title": f"{label(card.metric)}, last 12 months",
            "x": [month.isoformat() for month in months],
            "xLabel": "Month",
            "series": [{"label": label(card.metric), "values": [_chart_value(card.metric, v) for v in card.sparkline]}],
            "format": chart_format(card.metric, found.currency),
        }
        for card in found.cards
    }
    return render(
        request,
        "metrics/home.html",
        {
            **_common(principal),
            "dashboard": found,
            "goals": goals,
            "has_data": has_data,
            "sparklines": sparklines,
            "this_month": engine.month_start(found.today),
            "may_connect": principal.may_try("read", "integrations"),
        },
    )


@router.get("/kpis/mrr/explain", name="console.metrics_explain")
async def explain(
    request: Request,
    principal: MetricDetailsReadPage,
    session: DbSession,
    start: Day | None = None,
    end: Day | None = None,
    kind: MovementKind | None = None,
) -> Response:
    """The movements and invoice lines behind MRR between two days: ``GET /metrics/explain``, as a drawer."""
    today, currency = await _policy(session, principal)
    first, last = queries.parse_range(start, end or start, today=today, default_days=0)
    movements = await queries.explain(
        session, org_id=principal.org_id, start=first, end=last, kind=kind, currency=currency
    )
    template = "metrics/explain.html" if request.headers.get("hx-request") == "true" else "metrics/explain_page.html"
    return render(
        request,
        template,
        {**_common(principal), "movements": movements, "start": first, "end": last},
    )


@router.get("/kpis/mrr/movements", name="console.metrics_movements")
async def movements(
    request: Request, principal: MetricDetailsReadPage, session: DbSession, month: Day | None = None
) -> Response:
    """MRR month by month (``GET /dashboard/waterfall``) and customers by start month (``GET /dashboard/cohorts``)."""
    today, currency = await _policy(session, principal)
    first, last = queries.parse_range(None, None, today=today, default_days=365)
    months = await queries.waterfall(
        session, org_id=principal.org_id, start=first, end=last, today=today, currency=currency
    )
    chosen = next(
        (item for item in months if month is not None and item["month"] == engine.month_start(month)), months[-1]
    )
    steps = ("start", "new", "expansion", "reactivation", "contraction", "churn", "fx")
    waterfall = {
        "title": f"MRR movements in {chosen['month']:%B %Y}",
        "x": ["MRR at start", "New", "Expansion", "Reactivation", "Contraction", "Churn", "FX"],
        "xLabel": "Movement",
        "series": [{"label": "Change", "values": [chosen[step]["amount"] for step in steps]}],
        "format": chart_format("mrr", currency),
    }
    cohorts: dict[dt.date, list[Any]] = {}
    for row in await queries.cohort_rows(session, org_id=principal.org_id):
        cohorts.setdefault(row.cohort, []).append(row)
    return render(
        request,
        "metrics/movements.html",
        {
            **_common(principal),
            "months": months,
            "chosen": chosen,
            "waterfall": waterfall,
            "cohorts": cohorts,
            "cohort_width": max((len(rows) for rows in cohorts.values()), default=0),
            "heat": heat,
        },
    )


def heat(retention: float | None) -> str:
    """The shade bucket of a cohort cell by its net revenue retention (a CSS class, never an inline style)."""
    if retention is None:
        return "heat-none"
    return f"heat-{min(5, max(0, int(retention // 20)))}"


@router.get("/kpis/{metric}", name="console.metrics_kpi")
async def kpi(
    request: Request,
    metric: MetricPath,
    principal: DashboardReadPage,
    session: DbSession,
    grain: Grain | None = None,
) -> Response:
    """A metric's series (``GET /dashboard/series``) by day, week or month, with its anomalies marked."""
    today, currency = await _policy(session, principal)
    first, last = queries.parse_range(None, None, today=today, default_days=365)
    visible = await queries.visible_metrics(session, org_id=principal.org_id, investor=_is_investor(principal))
    found, points = await queries.series(
        session, org_id=principal.org_id, metric=metric, grain=grain, start=first, end=last, visible=visible
    )
    try:
        flagged = await queries.anomalies(
            session, org_id=principal.org_id, metric=metric, start=first, end=min(last, today), visible=visible
        )
    except Unprocessable:  # a monthly-only metric has no daily values to find anomalies in
        flagged = []
    days = {day for day, _ in points}
    anomalies = [
        {**item, "period": _period_start(item["day"], found), "label": _anomaly_label(item)}
        for item in flagged
        if _period_start(item["day"], found) in days
    ]
    chart = {
        "title": f"{label(metric)} by {found}",
        "x": [day.isoformat() for day, _ in points],
        "xLabel": found.capitalize(),
        "series": [{"label": label(metric), "values": [_chart_value(metric, value) for _, value in points]}],
        "format": chart_format(metric, currency),
        "anomalies": [{"x": item["period"].isoformat(), "label": item["label"]} for item in anomalies],
    }
    rows = [
        {
            "day": day,
            "end": _period_end(day, found),
            "value": show(metric, queries.metric_value(metric, value, currency)),
        }
        for day, value in reversed(points)
    ]
    context = {
        **_common(principal),
        "metric": metric,
        "grain": found,
        "grains": await queries.grains(session, org_id=principal.org_id, metric=metric),
        "chart": chart,
        "rows": rows,
        "anomalies": anomalies,
        "explained": metric in EXPLAINED,
        "start": first,
        "end": last,
    }
    template = "metrics/kpi_body.html" if request.headers.get("hx-request") == "true" else "metrics/kpi.html"
    return render(request, template, context)


@router.post("/kpis/{metric}/export", name="console.metrics_export")
async def export(request: Request, metric: MetricPath, principal: KpiExportCreatePage, session: DbSession) -> Response:
    """``POST /dashboard/export``: the data service's export job of the metric's series, then its status page."""
    form = await read_form(request, MetricExport, metric=metric)
    if form.errors:
        raise Unprocessable("; ".join(f"{name}: {message}" for name, message in form.errors.items()))
    body: MetricExport = form.model
    job = await datasets_service.export_source_rows(
        session,
        principal=principal,
        source="kpis",
        file_format=body.format,
        name=body.metric,
        where_equal={"metric": body.metric},
    )
    audit_target(request, "job", job.id, metric=body.metric)
    return redirect(request, f"/app/exports/{job.id}")


@router.get("/exports/{job_id}", name="console.metrics_export_status")
async def export_status(
    request: Request, job_id: uuid.UUID, principal: MetricDetailsReadPage, session: DbSession
) -> Response:
    """An export job as ``GET /status/{jobId}`` shows it, polled until it ends, with its download link."""
    job = await datasets_service.get_job(session, org_id=principal.org_id, job_id=job_id)
    link = None
    file_id = job.result.get("fileId")
    if job.status == "completed" and file_id:
        stored = await datasets_service.get_file(session, org_id=principal.org_id, file_id=uuid.UUID(file_id))
        if stored.status == "completed":
            link = await datasets_service.download_link(request.app.state.storage, request.app.state.settings, stored)
    context = {**_common(principal), "job": job, "link": link, "finished": job.status in JOB_FINISHED}
    template = "metrics/job.html" if request.headers.get("hx-request") == "true" else "metrics/job_page.html"
    return render(request, template, context)


# Goals


async def _goals_page(
    request: Request, session: DbSession, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    today, currency = await _policy(session, principal)
    visible = await queries.visible_metrics(session, org_id=principal.org_id, investor=_is_investor(principal))
    goals = [
        goal
        for goal in await queries.goal_statuses(session, org_id=principal.org_id, today=today, currency=currency)
        if visible is None or goal["metric"] in visible
    ]
    context = {
        **_common(principal),
        "goals": goals,
        "currency": currency,
        "metric_options": [(metric, label(metric)) for metric in GOAL_METRICS],
        "may_create": principal.may_try("create", "dashboards"),
        "values": {},
        "errors": {},
        **extra,
    }
    return render(request, "metrics/goals.html", context, status=status)


@router.get("/goals", name="console.metrics_goals")
async def goals_page(request: Request, principal: DashboardReadPage, session: DbSession) -> Response:
    """Every goal with its progress (``GET /dashboard/goals``), and the form setting one."""
    return await _goals_page(request, session, principal)


@router.post("/goals", name="console.metrics_goal_create")
async def create_goal(request: Request, principal: GoalsCreatePage, session: DbSession) -> Response:
    """``POST /dashboard/goals``, with the target typed in the metric's own unit."""
    _, currency = await _policy(session, principal)
    raw = await request.form()
    metric = str(raw.get("metric", ""))
    form = await read_form(
        request,
        GoalCreate,
        target=service.typed_value(metric, str(raw.get("target", "")), currency),
        start_date=raw.get("start_date") or None,
    )
    if form.model is None:
        return await _goals_page(request, session, principal, values=form.values, errors=form.errors, status=422)
    body: GoalCreate = form.model
    goal, refusal, status = await attempt(
        request,
        session,
        lambda: service.create_goal(session, org_id=principal.org_id, user_id=principal.user_id, **body.model_dump()),
    )
    if goal is None:
        errors = {"target_date": refusal or ""}
        return await _goals_page(request, session, principal, values=form.values, errors=errors, status=status)
    audit_target(request, "goal", goal.id, metric=goal.metric)
    return redirect(request, f"/app/goals/{goal.id}")


async def _goal_page(
    request: Request, session: DbSession, principal: Principal, goal_id: uuid.UUID, *, status: int = 200, **extra: Any
) -> Response:
    found = await service.get_goal(session, org_id=principal.org_id, goal_id=goal_id)
    investor = _is_investor(principal)
    queries.check_visible(
        found.metric, await queries.visible_metrics(session, org_id=principal.org_id, investor=investor)
    )
    today, currency = await _policy(session, principal)
    progress = await queries.goal_status(session, goal=found, today=today, currency=currency)
    context = {
        **_common(principal),
        "goal": progress,
        "currency": currency,
        "may_update": principal.can("update", "dashboards", owner_id=found.created_by),
        "may_delete": principal.can("delete", "dashboards", owner_id=found.created_by),
        "values": {
            "target": service.value_as_typed(found.metric, found.target, currency),
            "target_date": found.target_date,
        },
        "errors": {},
        **extra,
    }
    return render(request, "metrics/goal.html", context, status=status)


@router.get("/goals/{goal_id}", name="console.metrics_goal")
async def goal(request: Request, goal_id: uuid.UUID, principal: DashboardReadPage, session: DbSession) -> Response:
    """One goal's progress, as ``GET /dashboard/goals/{id}`` answers it, and for who may the forms changing it."""
    return await _goal_page(request, session, principal, goal_id)


@router.post("/goals/{goal_id}", name="console.metrics_goal_update")
async def update_goal(request: Request, goal_id: uuid.UUID, principal: GoalsUpdatePage, session: DbSession) -> Response:
    """``PATCH /dashboard/goals/{id}``: a new target or target date (members: only on goals they set)."""
    found = await service.get_goal(session, org_id=principal.org_id, goal_id=goal_id)
    _, currency = await _policy(session, principal)
    raw = await request.form()
    form = await read_form(
        request, GoalUpdate, target=service.typed_value(found.metric, str(raw.get("target", "")), currency)
    )
    if form.model is None:
        return await _goal_page(
            request, session, principal, goal_id, values=form.values, errors=form.errors, status=422
        )
    body: GoalUpdate = form.model
    changed, refusal, status = await attempt(
        request,
        session,
        lambda: service.update_goal(
            session, principal=principal, goal_id=goal_id, target=body.target, target_date=body.target_date
        ),
    )
    if changed is None:
        errors = {"form": refusal or ""}
        return await _goal_page(request, session, principal, goal_id, values=form.values, errors=errors, status=status)
    audit_target(request, "goal", goal_id)
    return redirect(request, f"/app/goals/{goal_id}?saved=1")


@router.post("/goals/{goal_id}/delete", name="console.metrics_goal_delete")
async def delete_goal(request: Request, goal_id: uuid.UUID, principal: GoalsDeletePage, session: DbSession) -> Response:
    """``DELETE /dashboard/goals/{id}`` (members: only goals they set)."""
    _, refusal, status = await attempt(
        request, session, lambda: service.delete_goal(session, principal=principal, goal_id=goal_id)
    )
    if refusal is not None:
        return await _goal_page(request, session, principal, goal_id, errors={"form": refusal}, status=status)
    audit_target(request, "goal", goal_id)
    return redirect(request, "/app/goals")


# Reporting settings


async def _reporting_page(
    request: Request, session: DbSession, principal: Principal, *, status: int = 200, **extra: Any
) -> Response:
    stored = await service.stored_policy(session, org_id=principal.org_id)
    context = {
        "policy": stored,
        "label": label,
        "zones": [(zone, zone) for zone in sorted(zoneinfo.available_timezones() | {stored.timezone})],
        "shareable": [(metric, label(metric)) for metric in GOAL_METRICS],
        "may_update": principal.may_try("update", "settings"),
        "values": {},
        "errors": {},
        "saved": False,
        **extra,
    }
    return render(request, "metrics/reporting.html", context, status=status)


@router.get("/settings/reporting", name="console.metrics_settings")
async def reporting_page(
    request: Request,
    principal: SettingsReadPage,
    session: DbSession,
    saved: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """``GET /metrics/settings``: the currency and time zone the numbers are in, and what investors see."""
    return await _reporting_page(request, session, principal, saved=saved is not None)


@router.post("/settings/reporting", name="console.metrics_settings_update")
async def update_reporting(request: Request, principal: SettingsUpdatePage, session: DbSession) -> Response:
    """``PATCH /metrics/settings``: a change of currency, time zone or discounts recomputes every metric (queued)."""
    raw = await request.form()
    shared = [value for value in raw.getlist("investor_metrics") if isinstance(value, str)]
    form = await read_form(
        request,
        PolicyUpdate,
        reporting_currency=str(raw.get("reporting_currency", "")).strip().upper(),
        deduct_discounts=raw.get("deduct_discounts") == "on",
        investor_metrics=shared,
    )
    if form.model is None:
        values = {**form.values, "investor_metrics": shared, "deduct_discounts": raw.get("deduct_discounts") == "on"}
        return await _reporting_page(request, session, principal, values=values, errors=form.errors, status=422)
    stored = await service.stored_policy(session, org_id=principal.org_id)
    changes = {name: value for name, value in form.model.model_dump().items() if getattr(stored, name) != value}
    await service.update_policy(session, org_id=principal.org_id, changes=changes)  # unchanged counts: no recompute
    audit_target(
        request, "metrics_settings", principal.org_id, **{to_camel(name): value for name, value in changes.items()}
    )
    return redirect(request, "/app/settings/reporting?saved=1")
