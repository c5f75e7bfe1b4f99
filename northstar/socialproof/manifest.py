"""Social proof (seed 001): sites, templates, notifications, the public widget, events, analytics and visitors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import MappingProxyType

from fastapi import FastAPI

from northstar.core.manifest import Manifest, NavLink, SettingsSection
from northstar.core.permissions import Resource, allow, own
from northstar.settings import SocialProofSettings
from northstar.socialproof import console, console_abtests, console_archives, console_profiles, models, search
from northstar.socialproof.api import abtests, archives, billing, hooks, merchant, profiles, public
from northstar.socialproof.runtime import SocialProofRuntime


@asynccontextmanager
async def _runtime(app: FastAPI) -> AsyncIterator[None]:
    """The widget's caches, event writer and collector, for as long as the app serves."""
    state = app.state
    state.socialproof = SocialProofRuntime(
        database=state.database, settings=state.settings, hub=state.events, redis=state.redis
    )
    try:
        yield
    finally:
        await state.socialproof.close()


MANIFEST = Manifest(
    name="socialproof",
    api_routers=(merchant.router, abtests.router, archives.router, hooks.router, billing.router, profiles.router),
    console_pages=(console.router, console_abtests.router, console_archives.router, console_profiles.router),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(
        NavLink("Sites", "/app/sites", "sites", "read"),
        NavLink("Archives", "/app/archives", "archives", "read"),
        NavLink("Custom fields", "/app/custom-fields", "custom_fields", "read"),
    ),
    task_modules=("northstar.socialproof.tasks",),
    model_modules=(models,),
    tables=(
        "socialproof.ab_test_counts",
        "socialproof.ab_test_variants",
        "socialproof.ab_test_visitors",
        "socialproof.ab_tests",
        "socialproof.archive_orgs",
        "socialproof.archive_restores",
        "socialproof.archives",
        "socialproof.conversions",
        "socialproof.custom_field_definitions",
        "socialproof.event_counts",
        "socialproof.event_months",
        "socialproof.inbound_hooks",
        "socialproof.notifications",
        "socialproof.restored_events",
        "socialproof.sites",
        "socialproof.subscriptions",
        "socialproof.templates",
        "socialproof.visitor_hashes",
        "socialproof.visitor_profiles",
        "socialproof.visitor_salts",
        "socialproof.visitor_sketches",
    ),
    schemas=("socialproof",),
    # the partitioned event tables, created by ``ensure_event_partitions`` and written with SQL
    sql_managed_tables=("notification_events",),
    resources=(
        Resource("sites", member=(allow("read", "create"), own("update", "delete")), analyst=(allow("read"),)),
        Resource("events", member=(allow("create"),), analyst=(allow("read"),)),
        # archives of raw events: anyone who reads analytics sees them; restoring (create) is for admins
        Resource("archives", member=(allow("read"),), analyst=(allow("read"),)),
        # the plan covers every site of the org: founders and admins change it, members and analysts see usage
        Resource("billing", admin=(allow("read", "update"),), member=(allow("read"),), analyst=(allow("read"),)),
        # profiles are about people: members and analysts read them, admins (and founders) also erase them
        Resource("visitors", member=(allow("read"),), analyst=(allow("read"),)),
        Resource("custom_fields", member=(allow("read"),), analyst=(allow("read"),)),
    ),
    event_topics=MappingProxyType({"socialproof.": "sites"}),
    audit_targets=(
        "ab_test",
        "archive",
        "custom_field",
        "inbound_hook",
        "notification",
        "site",
        "subscription",
        "template",
        "visitor_profile",
    ),
    search_sources=search.SOURCES,
    settings=SettingsSection("socialproof", SocialProofSettings),
    fast_routes=tuple(public.fast_routes()),
    document=public.document,
    lifespan=_runtime,
)
