"""The committed ``openapi.json`` is the API as the code defines it now (generated clients are built from it)."""

from __future__ import annotations

from pathlib import Path

from northstar.app import create_app
from northstar.cli import openapi_document
from northstar.settings import Settings

COMMITTED = Path(__file__).resolve().parents[1] / "openapi.json"


def test_the_committed_openapi_document_is_current() -> None:
    current = openapi_document(create_app(Settings())) + "\n"
    assert COMMITTED.read_text() == current, (
        "openapi.json is stale: regenerate it with `northstar openapi > openapi.json` and review the diff"
    )
