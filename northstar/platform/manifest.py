"""The platform's own routes: health for operators, the live event stream for clients and console pages."""

from __future__ import annotations

from northstar.core.manifest import Manifest
from northstar.platform import console, events, health

MANIFEST = Manifest(
    name="platform",
    routers=(health.router, events.router),
    console_pages=(console.router,),
)
