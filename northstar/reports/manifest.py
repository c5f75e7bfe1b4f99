"""Reports (KPIx coach): the month's fact sheet, the playbook's next steps, narratives and answers to questions."""

from __future__ import annotations

from types import MappingProxyType

from northstar.core.manifest import Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow, own
from northstar.devbizops.service import agents as agents_service
from northstar.reports import api, console, models, search, shared
from northstar.settings import ReportsSettings

MANIFEST = Manifest(
    name="reports",
    api_routers=(api.router,),
    routers=(shared.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(
        NavLink("Coach", "/app/coach", "data", "read"),
        NavLink("Reports", "/app/reports", "reports", "read"),
        NavLink("Investor dashboard", "/app/investor-dashboard", "investor_dashboards", "read"),
    ),
    task_modules=("northstar.reports.tasks",),
    model_modules=(models,),
    tables=("reports.coach_settings", "reports.reports", "reports.schedules", "reports.share_links"),
    schemas=("reports",),
    resources=(
        Resource(
            "reports",
            member=(allow("create", "read"), own("update", "delete")),
            analyst=(allow("read"),),
            investor=(allow("read"),),
        ),
        Resource("shares"),  # founders and admins hand reports and the investor dashboard out
        # DevBizOps' agent writes it (members may ask for one); investors read it, and nothing else of DevBizOps
        Resource(
            "investor_dashboards",
            member=(allow("create", "read"),),
            analyst=(allow("read"),),
            investor=(allow("read"),),
        ),
    ),
    reactions=MappingProxyType({agents_service.DASHBOARD_WRITTEN: ("reports.publish_dashboards",)}),
    settings=SettingsSection("reports", ReportsSettings),
    audit_targets=("coach_settings", "report", "report_schedule", "share_link"),
    search_sources=search.SOURCES,
)
