"""Reports (KPIx coach): the month's fact sheet, the playbook's next steps, narratives and answers to questions."""

from __future__ import annotations

from northstar.core.manifest import Manifest, NavLink
from northstar.core.permissions import Resource, allow, own
from northstar.reports import api, console, models

MANIFEST = Manifest(
    name="reports",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(NavLink("Coach", "/app/coach", "data", "read"),),
    model_modules=(models,),
    tables=("reports.coach_settings",),
    schemas=("reports",),
    resources=(
        Resource(
            "reports",
            member=(allow("create", "read"), own("update", "delete")),
            analyst=(allow("read"),),
            investor=(allow("read"),),
        ),
    ),
    audit_targets=("coach_settings",),
)
