"""The platform's own routes: health for operators, the live event stream for clients and console pages."""

from __future__ import annotations

from collections.abc import Mapping

from northstar.core.console.pages import CONSOLE_PREFIX
from northstar.core.manifest import Manifest
from northstar.platform import console, events, health
from northstar.settings import Settings


def _console_stream(settings: Settings) -> Mapping[str, int]:
    """The edge exempts only ``/events/stream`` from the request timeout, and paths with a body limit; the console's
    stream is long-lived too, so it is listed here (with the default limit, it takes no body) to live past it."""
    return {f"{CONSOLE_PREFIX}/events": settings.http.max_body_bytes}


MANIFEST = Manifest(
    name="platform",
    routers=(health.router, events.router),
    console_pages=(console.router,),
    body_limits=_console_stream,
)
