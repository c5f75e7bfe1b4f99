"""DevBizOps (seed 002): engineering data beside the business data, the DORA and flow metrics, and the agents."""

from __future__ import annotations

from types import MappingProxyType

from northstar.core.manifest import Manifest, NavLink
from northstar.core.permissions import Resource, allow, own
from northstar.devbizops import api, console, models, search

MANIFEST = Manifest(
    name="devbizops",
    api_routers=api.ROUTERS,
    console_pages=(console.router,),
    console_templates=console.TEMPLATES,
    console_static=console.STATIC,
    console_nav=(
        NavLink("Engineering", "/app/engineering", "engineering", "read"),
        NavLink("Work items", "/app/engineering/work-items", "engineering", "read"),
        NavLink("Roadmap", "/app/engineering/roadmap", "engineering", "read"),
        NavLink("Calls", "/app/engineering/calls", "proposals", "read"),
    ),
    task_modules=("northstar.devbizops.tasks",),
    model_modules=(models,),
    tables=(
        "devbizops.change_work_items",
        "devbizops.agent_runs",
        "devbizops.agent_steps",
        "devbizops.changes",
        "devbizops.deployments",
        "devbizops.incidents",
        "devbizops.links",
        "devbizops.people",
        "devbizops.proposals",
        "devbizops.repositories",
        "devbizops.reviews",
        "devbizops.roadmap_items",
        "devbizops.roadmap_work_items",
        "devbizops.sources",
        "devbizops.work_items",
    ),
    schemas=("devbizops",),
    resources=(
        Resource("engineering", member=(allow("create", "read"), own("delete")), analyst=(allow("read"),)),
        # members run agents and see what they propose; founders and admins approve (update)
        Resource("proposals", member=(allow("create", "read"),), analyst=(allow("read"),)),
    ),
    event_topics=MappingProxyType({"devbizops.": "engineering"}),  # roadmap changes, to whoever reads engineering
    audit_targets=("repository", "work_item_link", "agent_run", "proposal", "roadmap_item"),
    search_sources=search.SOURCES,
)
