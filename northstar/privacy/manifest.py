"""Privacy (seed 001's GDPR/CCPA workflows): data-subject export and erasure, consent logs, audit retention."""

from __future__ import annotations

from northstar.core.manifest import Manifest, NavLink
from northstar.core.permissions import Resource, allow
from northstar.privacy import api, console, models

MANIFEST = Manifest(
    name="privacy",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(NavLink("Privacy centre", "/app/privacy", "privacy", "read"),),
    task_modules=("northstar.privacy.tasks",),
    model_modules=(models,),
    tables=("privacy.consent_logs", "privacy.requests", "privacy.settings"),
    schemas=("privacy",),
    resources=(
        Resource("privacy"),
        Resource(
            "privacy_self",
            member=(allow("read", "create"),),
            analyst=(allow("read", "create"),),
            investor=(allow("read", "create"),),
        ),
    ),
    audit_targets=("privacy_request", "privacy_settings"),
)
