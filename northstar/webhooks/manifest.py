"""Outbound webhooks (seed 001): merchants' endpoints, Standard Webhooks signatures, retries, replay."""

from __future__ import annotations

from northstar.core.manifest import Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow
from northstar.settings import WebhooksSettings
from northstar.webhooks import api, console, models

MANIFEST = Manifest(
    name="webhooks",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(NavLink("Webhooks", "/app/webhooks", "webhooks", "read"),),
    task_modules=("northstar.webhooks.tasks",),
    model_modules=(models,),
    tables=("webhooks.delivery_attempts", "webhooks.endpoints", "webhooks.webhook_deliveries"),
    schemas=("webhooks",),
    # endpoints hold signing secrets: founders and admins manage them; members and analysts see them and the log
    resources=(Resource("webhooks", member=(allow("read"),), analyst=(allow("read"),)),),
    audit_targets=("webhook_delivery", "webhook_endpoint"),
    settings=SettingsSection("webhooks", WebhooksSettings),
)
