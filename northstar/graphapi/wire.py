"""From GraphQL arguments to what the services take: input objects validated by the REST request models (one set
of rules for both faces), and page arguments bounded as REST bounds them."""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import strawberry
from pydantic import BaseModel, ValidationError
from pydantic.alias_generators import to_camel

from northstar.core.http import Unprocessable, invalid

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
MAX_LIMIT = 100
MAX_PAGE = 1_000_000


def given(source: object) -> dict[str, Any]:
    """The fields of a GraphQL input object the client gave (an explicit null included), camelCase as on REST."""
    values = {field.name: getattr(source, field.name) for field in dataclasses.fields(source)}  # type: ignore[arg-type]
    return {
        to_camel(name): value.value if isinstance(value, enum.Enum) else value
        for name, value in values.items()
        if value is not strawberry.UNSET
    }


def validated(model: type[M], source: object) -> M:
    """The input validated by ``model`` (the REST route's body model): a 422-like ``validation_error`` naming each
    field as ``input.<field>`` otherwise."""
    try:
        return model.model_validate(given(source))
    except ValidationError as exc:
        raise invalid("The input is not valid", exc, prefix=("input",)) from None


@dataclass(frozen=True)
class Window:
    """``page`` (from 1) and ``limit`` (1 to 100), as REST's ``page`` and ``limit`` query parameters."""

    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def window(page: int, limit: int) -> Window:
    problems = []
    if not 1 <= page <= MAX_PAGE:
        problems.append({"field": "page", "message": f"must be from 1 to {MAX_PAGE}", "type": "range"})
    if not 1 <= limit <= MAX_LIMIT:
        problems.append({"field": "limit", "message": f"must be from 1 to {MAX_LIMIT}", "type": "range"})
    if problems:
        raise Unprocessable("The page arguments are not valid", details=problems)
    return Window(page, limit)


def first_of(first: int) -> int:
    """A nested list's size (``first``: 1 to 100)."""
    if not 1 <= first <= MAX_LIMIT:
        raise Unprocessable(
            "first is not valid",
            details=[{"field": "first", "message": f"must be from 1 to {MAX_LIMIT}", "type": "range"}],
        )
    return first


def too_long(name: str, most: int) -> None:
    """Refuse a text argument longer than REST's query parameter of the same name may be."""
    raise Unprocessable(
        f"{name} is not valid",
        details=[{"field": name, "message": f"at most {most} characters", "type": "string_too_long"}],
    )


def from_row(kind: type[T], row: Any, **extra: Any) -> T:
    """A strawberry type from a service's row: each plain field (not a resolver) read from the row's attribute of
    the same name, unless given in ``extra``."""
    names = _plain_fields(cast(Hashable, kind))
    values = {name: extra[name] if name in extra else getattr(row, name) for name in names}
    return kind(**values)


@functools.cache
def _plain_fields(kind: Any) -> tuple[str, ...]:
    """The type's fields that hold a value (read once per type: building a page of rows reads them per row)."""
    definition = kind.__strawberry_definition__
    return tuple(field.python_name for field in definition.fields if field.base_resolver is None)
