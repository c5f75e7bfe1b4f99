"""DevBizOps (seed 002): engineering data from GitHub beside the business data, and the DORA and flow metrics."""

from __future__ import annotations

from northstar.core.manifest import Manifest
from northstar.core.permissions import Resource, allow, own
from northstar.devbizops import api, models

MANIFEST = Manifest(
    name="devbizops",
    api_routers=(api.router,),
    task_modules=("northstar.devbizops.tasks",),
    model_modules=(models,),
    tables=(
        "devbizops.change_work_items",
        "devbizops.changes",
        "devbizops.deployments",
        "devbizops.incidents",
        "devbizops.links",
        "devbizops.people",
        "devbizops.repositories",
        "devbizops.reviews",
        "devbizops.work_items",
    ),
    schemas=("devbizops",),
    resources=(Resource("engineering", member=(allow("create", "read"), own("delete")), analyst=(allow("read"),)),),
    audit_targets=("repository", "work_item_link"),
)
