"""The schema: the ``Query`` and ``Mutation`` of every part, merged, with the operation limits.

A part is one module of ``parts/`` that declares ``Query`` (and, if it changes anything, ``Mutation``): strawberry
types whose fields call that domain's service. Adding a domain to the graph is writing its part and naming it in
``PARTS``; nothing else changes.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules, ParserCache, ValidationCache
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from northstar.graphapi.limits import NoNul, OperationLimits
from northstar.graphapi.parts import accounts, experiments, kpix, socialproof, webhooks

PARTS: tuple[ModuleType, ...] = (accounts, socialproof, experiments, webhooks, kpix)
DOCUMENTS = 512  # parsed and validated documents kept per process


class Schema(strawberry.Schema):
    """Errors are logged where they are rendered for the client (``errors.error_body``), once, with the trace id."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        return None


class Limits(AddValidationRules):
    """The operation limits and the NUL check, run with graphql-core's own validation."""

    def __init__(self) -> None:
        super().__init__([OperationLimits, NoNul])


def build_schema(parts: tuple[ModuleType, ...] = PARTS) -> Schema:
    queries: tuple[Any, ...] = tuple(part.Query for part in parts)
    mutations: tuple[Any, ...] = tuple(part.Mutation for part in parts if hasattr(part, "Mutation"))
    return Schema(
        query=merge_types("Query", queries),
        mutation=merge_types("Mutation", mutations) if mutations else None,
        # clients send the same few documents again and again: each is parsed and validated (limits included) once;
        # instances, as Strawberry documents these two (its annotation names only classes and factories)
        extensions=[Limits, ParserCache(maxsize=DOCUMENTS), ValidationCache(maxsize=DOCUMENTS)],  # type: ignore[list-item]
    )


SCHEMA = build_schema()


if __name__ == "__main__":  # python -m northstar.graphapi.schema > docs/graphql.schema.graphql
    print(SCHEMA.as_str())
