"""How much one GraphQL operation may ask for: a depth and a cost, checked before anything runs.

The cost counts object fields, each multiplied by how many of it a list may hold: a nested list's ``first``, or for
a page's ``items`` the page's ``limit`` (the literal given, or when a variable gives it, the most it may be; the
default when neither is given), else ``UNSIZED_LIST``. ``sites(limit: 50) { items { notifications(first: 20)
{ id } } }`` costs 1 + 50 x (1 + 20) = 1,051. Scalar fields are free; introspection (``__schema``, ``__type``) is
not counted, so GraphiQL's introspection always runs.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationRule,
    get_named_type,
)

MAX_DEPTH = 10
MAX_COST = 25_000
SIZE_ARGUMENTS = ("limit", "first")
MAX_LIST = 100  # the most a page or a nested list holds (``limit``, ``first``)
UNSIZED_LIST = 20  # a list without a size argument (cards, organizations): its usual length


def _is_list(type_: Any) -> bool:
    while isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


class OperationLimits(ValidationRule):
    """Refuses an operation deeper than ``MAX_DEPTH`` (``query_too_deep``) or costlier than ``MAX_COST``
    (``query_too_complex``), naming the measure and the limit."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        root = self.context.schema.get_root_type(node.operation)
        if root is None:
            return
        depth, cost = self._measure(node.selection_set, root, 1, frozenset(), None)
        name = node.name.value if node.name else "the operation"
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(
                    f"{name} is {depth} levels deep; at most {MAX_DEPTH} are allowed",
                    [node],
                    extensions={"code": "query_too_deep", "depth": depth, "maxDepth": MAX_DEPTH},
                )
            )
        elif cost > MAX_COST:
            self.report_error(
                GraphQLError(
                    f"{name} would cost {cost} (objects times list sizes); at most {MAX_COST} is allowed: "
                    "ask for smaller pages (limit, first) or fewer nested lists",
                    [node],
                    extensions={"code": "query_too_complex", "cost": cost, "maxCost": MAX_COST},
                )
            )

    def _measure(
        self, selections: SelectionSetNode, parent: Any, level: int, seen: frozenset[str], page: int | None
    ) -> tuple[int, int]:
        """Depth and cost of a selection; ``page`` is the size of the page object whose fields these are."""
        depth, cost = level, 0
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                found_depth, found_cost = self._field(selection, parent, level, seen, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.context.schema.get_type(condition.name.value) if condition else parent
                found_depth, found_cost = self._measure(selection.selection_set, target, level, seen, page)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in seen:
                    continue
                target = self.context.schema.get_type(fragment.type_condition.name.value)
                found_depth, found_cost = self._measure(fragment.selection_set, target, level, seen | {name}, page)
            else:
                continue
            depth, cost = max(depth, found_depth), cost + found_cost
        return depth, cost

    def _field(
        self, node: FieldNode, parent: Any, level: int, seen: frozenset[str], page: int | None
    ) -> tuple[int, int]:
        if node.name.value.startswith("__") or not isinstance(parent, GraphQLObjectType):
            return level, 0
        definition = parent.fields.get(node.name.value)
        if definition is None or node.selection_set is None:
            return level, 0  # a scalar, or a field another rule reports as unknown
        target = get_named_type(definition.type)
        inner_page = None
        if _is_list(definition.type):
            size = self._size(node, definition) if self._sized(definition) else page or UNSIZED_LIST
        else:
            size = 1
            if self._sized(definition):  # a page object: its list holds ``limit`` items
                inner_page = self._size(node, definition)
        depth, inner = self._measure(node.selection_set, target, level + 1, seen, inner_page)
        return depth, size * (1 + inner)

    @staticmethod
    def _sized(definition: Any) -> bool:
        """The field takes ``limit`` or ``first``."""
        return any(name in definition.args for name in SIZE_ARGUMENTS)

    @staticmethod
    def _size(node: FieldNode, definition: Any) -> int:
        for argument in node.arguments or ():
            if argument.name.value in SIZE_ARGUMENTS:
                if isinstance(argument.value, IntValueNode):
                    return max(1, min(int(argument.value.value), MAX_LIST))
                return MAX_LIST  # a variable: the most it may be
        for name in SIZE_ARGUMENTS:
            if name in definition.args and isinstance(definition.args[name].default_value, int):
                return int(definition.args[name].default_value)
        return UNSIZED_LIST


class NoNul(ValidationRule):
    """Text in the document (``"\\u0000"`` in a string) must hold no NUL, which PostgreSQL text cannot store: a
    ``validation_error`` rather than a database error."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError(
                    "Text must not contain NUL (\\u0000) characters", [node], extensions={"code": "validation_error"}
                )
            )
