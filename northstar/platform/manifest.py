"""The platform's own routes: health for operators, the live event stream for clients."""

from __future__ import annotations

from northstar.core.manifest import Manifest
from northstar.platform import events, health

MANIFEST = Manifest(name="platform", routers=(health.router, events.router))
