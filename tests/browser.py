"""Which Chromium the browser tests drive: ``NORTHSTAR_TEST_CHROMIUM``, else the one on PATH."""

from __future__ import annotations

import os
import shutil

MISSING = (
    "The browser tests need Chromium: install it (sudo apt-get install chromium; `make test` does it when run "
    "as root) or set NORTHSTAR_TEST_CHROMIUM to a Chromium binary"
)


def chromium() -> str | None:
    """The browser's path, or None when there is none to drive."""
    configured = os.environ.get("NORTHSTAR_TEST_CHROMIUM")
    if configured:
        return configured if os.path.isfile(configured) and os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")
