"""Alerts (KPIx): rules on metrics, goals, integrations and reports; e-mail, Slack and in-app deliveries."""

from __future__ import annotations

from types import MappingProxyType

from northstar.alerts import api, console, models, search
from northstar.core.manifest import Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow, own
from northstar.metrics import service as metrics_service
from northstar.settings import AlertsSettings

MANIFEST = Manifest(
    name="alerts",
    api_routers=(api.router,),
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_nav=(
        NavLink("Inbox", "/app/inbox", badge="/app/inbox/count", badge_topics="alerts.inbox,alerts.inbox.read"),
        NavLink("Alerts", "/app/alerts", "alerts", "read"),
        NavLink("Notification settings", "/app/notification-preferences"),
    ),
    task_modules=("northstar.alerts.tasks",),
    reactions=MappingProxyType({metrics_service.REFRESHED: ("alerts.evaluate",)}),
    model_modules=(models,),
    tables=(
        "alerts.channels",
        "alerts.deliveries",
        "alerts.firings",
        "alerts.inbox",
        "alerts.preferences",
        "alerts.rule_channels",
        "alerts.rule_recipients",
        "alerts.rules",
    ),
    schemas=("alerts",),
    resources=(
        # rules and the delivery log: members make rules for themselves and change their own; analysts read
        Resource("alerts", member=(allow("create", "read"), own("update", "delete")), analyst=(allow("read"),)),
        # shared Slack channels (their secrets): founders and admins manage them, members and analysts see them
        Resource("alert_channels", member=(allow("read"),), analyst=(allow("read"),)),
    ),
    event_topics=MappingProxyType({"alerts.": "alerts"}),  # each inbox event goes to its member alone
    audit_targets=("alert_channel", "alert_preferences", "alert_rule"),
    search_sources=search.SOURCES,
    settings=SettingsSection("alerts", AlertsSettings),
)
