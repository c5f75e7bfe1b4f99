"""The console's vendored third-party files and their Subresource Integrity hashes.

Templates write ``<script src="{{ static }}/{{ asset.path }}" integrity="{{ asset.integrity }}">`` with
``asset = ASSETS["htmx.js"]``: the hash is computed once at import from the very file that is served, so an edited
or swapped file is refused by the browser instead of running, and upgrading a library is only a matter of replacing
the file and its name below.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
FILES = {
    "htmx.js": "htmx-2.0.11.min.js",
    "uplot.js": "uPlot-1.6.32.iife.min.js",
    "uplot.css": "uPlot-1.6.32.min.css",
    "react.js": "react-18.3.1.production.min.js",
    "react-dom.js": "react-dom-18.3.1.production.min.js",
    "graphiql.js": "graphiql-3.9.0.min.js",
    "graphiql.css": "graphiql-3.9.0.min.css",
}


@dataclass(frozen=True)
class Asset:
    """One vendored file: its name in ``static/vendor``, its path relative to the static root, its SRI hash."""

    file: str
    path: str
    integrity: str


def sri(data: bytes) -> str:
    """The ``integrity`` attribute's value: sha384, base64, as browsers check it."""
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


ASSETS: Mapping[str, Asset] = MappingProxyType(
    {name: Asset(file, f"vendor/{file}", sri((VENDOR_DIR / file).read_bytes())) for name, file in FILES.items()}
)
