"""Where the browser tests save their screenshots: ``docs/console`` when ``NORTHSTAR_SCREENSHOTS=docs`` asks for the
documentation's pictures to be refreshed, a scratch directory otherwise, so a test run leaves the checkout as it was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

DOCS = Path(__file__).parents[2] / "docs" / "console"


def shot(name: str) -> Path:
    """The file a screenshot called ``name`` is written to."""
    if os.environ.get("NORTHSTAR_SCREENSHOTS") == "docs":
        directory = DOCS
    else:
        directory = Path(tempfile.gettempdir()) / "northstar-console-screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name
