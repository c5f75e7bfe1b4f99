"""Integrations: connected accounts of Stripe, Shopify, GA4, Mixpanel, HubSpot, GitHub, GitLab, Jira and Linear (with
pasted keys, or through the provider's OAuth consent), their syncs and webhooks, and approved DevBizOps proposals
filed in the trackers."""

from __future__ import annotations

from types import MappingProxyType

from northstar.core.manifest import Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow
from northstar.devbizops.service import agents as agents_service
from northstar.integrations import api, console, models, search
from northstar.settings import IntegrationsSettings

MANIFEST = Manifest(
    name="integrations",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(NavLink("Integrations", "/app/integrations", "integrations", "read"),),
    task_modules=("northstar.integrations.tasks",),
    reactions=MappingProxyType({agents_service.APPROVED: ("integrations.apply_proposals",)}),
    model_modules=(models,),
    tables=(
        "integrations.integrations",
        "integrations.records",
        "integrations.sync_runs",
        "integrations.webhook_deliveries",
        "integrations.oauth_states",
        "integrations.oauth_consents",
    ),
    schemas=("integrations",),
    resources=(Resource("integrations", member=(allow("read"),), analyst=(allow("read"),)),),
    audit_targets=("integration",),
    search_sources=search.SOURCES,
    settings=SettingsSection("integrations", IntegrationsSettings),
)
