"""The console's engineering pages: the DORA dashboard (each scope's four keys with their band, trends over twelve
months, and the flow metrics), and work items with the customers and deals waiting on them.

Every page calls the same service functions behind the same gates as the API routes (``api.py``).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from northstar.core.console.pages import console_router, render
from northstar.core.context import DbSession
from northstar.core.http import Page
from northstar.devbizops import dora, service
from northstar.devbizops.auth import EngineeringReadPage
from northstar.devbizops.service import links as links_service
from northstar.metrics import service as metrics_service

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
MONTHS = 12
KEYS: tuple[tuple[str, str, str, dict[str, str]], ...] = (
    ("deployments", "deployment_frequency_band", "Deployments", {}),
    ("lead_time_hours", "lead_time_band", "Lead time for changes", {"unit": "hour"}),
    ("change_failure_rate", "change_failure_band", "Change failure rate", {"unit": "percent"}),
    ("time_to_restore_hours", "time_to_restore_band", "Time to restore service", {"unit": "hour"}),
)
FLOW = (
    ("throughput", "Merged"),
    ("work_in_progress", "Open at month end"),
    ("reviews", "Reviews"),
    ("review_load", "Reviews per reviewer"),
    ("coding_time_hours", "Coding (h)"),
    ("pickup_time_hours", "Pickup (h)"),
    ("review_time_hours", "Review (h)"),
    ("deploy_time_hours", "Deploy (h)"),
)
BAND_CLASSES = {"elite": "good", "high": "good", "medium": "warn", "low": "bad"}

router = console_router()


def _latest(report: service.ScopeReport, metric: str, band_metric: str) -> dict[str, Any]:
    """The latest month with a value, its band and the value as shown."""
    values = report.values[metric]
    for position in range(len(values) - 1, -1, -1):
        if values[position] is not None:
            code = report.values[band_metric][position]
            name = dora.BAND_NAMES.get(int(code)) if code is not None else None
            return {"value": values[position], "month": report.months[position], "band": name}
    return {"value": None, "month": None, "band": None}


def _shown(metric: str, value: Any) -> str:
    if value is None:
        return "none"
    if metric == "change_failure_rate":
        return f"{value:.1f} %"
    if metric.endswith("_hours"):
        return f"{value:,.1f} h"
    return f"{value:,}"


def _keys(report: service.ScopeReport) -> list[dict[str, Any]]:
    """The scope's four keys: their latest value as shown, and band."""
    keys = []
    for metric, band, title, _ in KEYS:
        latest = _latest(report, metric, band)
        keys.append({"title": title, **latest, "shown": _shown(metric, latest["value"])})
    return keys


def _chart(report: service.ScopeReport, metric: str, title: str, unit: dict[str, str]) -> dict[str, Any]:
    values = report.values[metric]
    shown = [value / 100 if value is not None and metric == "change_failure_rate" else value for value in values]
    return {
        "title": f"{title}, {report.scope.name}, by month",
        "x": [month.isoformat() for month in report.months],
        "xLabel": "Month",
        "series": [{"label": title, "values": shown}],
        "format": unit,
    }


@router.get("/engineering", name="console.engineering")
async def engineering_page(
    request: Request,
    principal: EngineeringReadPage,
    session: DbSession,
    scope: Annotated[str, Query(max_length=210)] = "",
) -> Response:
    reports = await service.dora_report(session, org_id=principal.org_id, months=MONTHS)
    chosen = next((report for report in reports if report.scope.dims == scope), reports[0] if reports else None)
    overview = [{"report": report, "keys": _keys(report)} for report in reports]
    context: dict[str, Any] = {"overview": overview, "chosen": chosen, "band_classes": BAND_CLASSES}
    if chosen is not None:
        context["cards"] = [
            {**key, "id": metric, "chart": _chart(chosen, metric, title, unit)}
            for key, (metric, _, title, unit) in zip(_keys(chosen), KEYS, strict=True)
        ]
        context["flow"] = [
            {"title": title, "values": [_shown(metric, value) for value in chosen.values[metric]]}
            for metric, title in FLOW
        ]
    return render(request, "devbizops/dashboard.html", context)


@router.get("/engineering/work-items", name="console.work_items")
async def work_items_page(
    request: Request,
    principal: EngineeringReadPage,
    session: DbSession,
    page: Page,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    found, total = await links_service.list_work_items(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit, query=q or None
    )
    return render(request, "devbizops/work_items.html", {"items": found, "total": total, "page": page, "q": q or ""})


@router.get("/engineering/work-items/{work_item_id}", name="console.work_item")
async def work_item_page(
    request: Request, principal: EngineeringReadPage, session: DbSession, work_item_id: uuid.UUID
) -> Response:
    detail = await links_service.work_item_detail(session, org_id=principal.org_id, work_item_id=work_item_id)
    return render(request, "devbizops/work_item.html", {"detail": detail, "money": metrics_service.money_text})
