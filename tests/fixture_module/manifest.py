"""The fixture module's manifest: a router, a task module and a permission resource, and nothing else."""

from __future__ import annotations

from northstar.core.manifest import Manifest
from northstar.core.permissions import Resource, allow
from tests.fixture_module import api

MANIFEST = Manifest(
    name="fixture_notes",
    api_routers=(api.router,),
    task_modules=("tests.fixture_module.tasks",),
    resources=(Resource("fixture_notes", member=(allow("read"),), analyst=(allow("read"),)),),
)
