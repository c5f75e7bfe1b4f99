"""The committed ``docs/graphql.schema.graphql`` is the graph as the code defines it now (client code generators and
reviewers read it)."""

from __future__ import annotations

from pathlib import Path

from northstar.graphapi.schema import SCHEMA

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "graphql.schema.graphql"


def test_the_committed_schema_document_is_current() -> None:
    assert COMMITTED.read_text() == SCHEMA.as_str() + "\n", (
        "docs/graphql.schema.graphql is stale: regenerate it with "
        "`python -m northstar.graphapi.schema > docs/graphql.schema.graphql` and review the diff"
    )
