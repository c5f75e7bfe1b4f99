"""Reports (KPIx coach): the month's fact sheet, the playbook's next steps, narratives and answers to questions."""

from __future__ import annotations

from northstar.core.manifest import Manifest
from northstar.core.permissions import Resource, allow, own
from northstar.reports import api, models

MANIFEST = Manifest(
    name="reports",
    api_routers=(api.router,),
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
