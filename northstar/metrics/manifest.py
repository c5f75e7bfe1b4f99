"""Metrics (KPIx): KPI series, the SaaS metrics engine, dashboards, goals, currency rates and spend."""

from __future__ import annotations

from types import MappingProxyType

from northstar.core.manifest import ExportTable, Manifest, NavLink
from northstar.core.permissions import Resource, allow, own
from northstar.metrics import api, console, models, search, service

_BUSINESS = (allow("create", "read"), own("update", "delete"))

MANIFEST = Manifest(
    name="metrics",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(
        NavLink("Dashboard", "/app/", "dashboards", "read"),
        NavLink("MRR", "/app/kpis/mrr", "dashboards", "read"),
        NavLink("MRR movements", "/app/kpis/mrr/movements", "data", "read"),
        NavLink("Goals", "/app/goals", "dashboards", "read"),
        NavLink("Reporting", "/app/settings/reporting", "settings", "read"),
    ),
    org_time_zone=service.time_zone_of,
    task_modules=("northstar.metrics.tasks",),
    model_modules=(models,),
    tables=(
        "metrics.cohorts",
        "metrics.customers",
        "metrics.deals",
        "metrics.fx_rates",
        "metrics.goals",
        "metrics.invoice_lines",
        "metrics.kpis",
        "metrics.movements",
        "metrics.order_refunds",
        "metrics.orders",
        "metrics.policies",
        "metrics.product_events",
        "metrics.source_problems",
        "metrics.spend",
        "metrics.subscriptions",
        "metrics.summaries",
        "metrics.traffic",
    ),
    schemas=("metrics",),
    resources=(
        Resource("dashboards", member=_BUSINESS, analyst=(allow("read"),), investor=(allow("read"),)),
        Resource("settings", member=(allow("read"),), analyst=(allow("read"),)),
    ),
    export_sources=MappingProxyType(
        {
            "kpis": ExportTable(
                table=("metrics", "kpis"),
                columns={
                    "metric": "string",
                    "grain": "string",
                    "day": "date",
                    "source": "string",
                    "dims": "string",
                    "value": "float",
                },
                order_by="day",
                resource="data",
            )
        }
    ),
    audit_targets=("fx_rates", "goal", "job", "metrics_settings", "spend"),
    search_sources=search.SOURCES,
)
