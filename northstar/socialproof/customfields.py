"""Custom field values checked against their organization's definitions, at ingestion and wherever they are set.

A value is stored in its canonical form: text as plain text (``sanitize.plain_text``: the feed shows it to any
renderer), numbers as JSON numbers, booleans as ``true``/``false``, dates as ``YYYY-MM-DD``, enum values as one of
the options. When an event carries custom values, a key nobody defined, a value of the wrong type, or a required
field that is missing with no default is an error that names the key; a missing field with a default gets the
default on the event. A visitor's profile keeps only the values events gave (a default never overwrites what a
visitor said earlier); targeting reads the defaults for the fields a profile has no value of. An event without
custom values is not checked (a page view cannot know a visitor's plan).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from northstar.socialproof.sanitize import plain_text

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MAX_TEXT = 500
MAX_NUMBER = 1e15
MAX_VALUES = 50
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class FieldDefinition:
    """What ingestion needs of a ``custom_field_definitions`` row (cached per organization)."""

    key: str
    field_type: str
    options: tuple[str, ...] = ()
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class ValueProblem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"custom.{self.key}: {self.reason}"


def canonical(definition: FieldDefinition, value: Any) -> Any:
    """``value`` in its stored form; ``ValueError`` says why it is not a value of the field."""
    kind = definition.field_type
    if kind == "text":
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > MAX_TEXT:
            raise ValueError(f"must be at most {MAX_TEXT} characters")
        text = plain_text(value)
        if not text and value.strip():
            raise ValueError("must be plain text, not markup")
        return text
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError("must be a number")
        if abs(value) > MAX_NUMBER:
            raise ValueError(f"must be between -{MAX_NUMBER:.0e} and {MAX_NUMBER:.0e}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind == "date":
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            raise ValueError("must be a date written YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError("must be a real date written YYYY-MM-DD") from None
    if not isinstance(value, str) or value not in definition.options:
        raise ValueError(f"must be one of {', '.join(definition.options)}")
    return value


@dataclass(frozen=True)
class CheckedValues:
    """``given``: the event's own values, canonical (what its visitor's profile takes); ``stored``: those with the
    defaults of the fields it left out (what the event keeps); ``problems``: why it is rejected, if it is."""

    given: dict[str, Any]
    stored: dict[str, Any]
    problems: list[ValueProblem]


def check_values(definitions: Mapping[str, FieldDefinition], values: Mapping[str, Any]) -> CheckedValues:
    """Every value checked, by key; a ``None`` value is treated as absent."""
    stored: dict[str, Any] = {}
    problems: list[ValueProblem] = []
    if len(values) > MAX_VALUES:
        return CheckedValues({}, {}, [ValueProblem("*", f"at most {MAX_VALUES} custom values per event")])
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            problems.append(ValueProblem(key, "no custom field has this key"))
        elif value is not None:
            try:
                stored[key] = canonical(definition, value)
            except ValueError as exc:
                problems.append(ValueProblem(key, str(exc)))
    given = dict(stored)
    for key, definition in definitions.items():
        if key in stored or any(problem.key == key for problem in problems):
            continue
        if definition.default is not None:
            stored[key] = definition.default
        elif definition.required:
            problems.append(ValueProblem(key, "is required"))
    return CheckedValues(given, stored, problems)


def with_defaults(definitions: Mapping[str, FieldDefinition], values: Mapping[str, Any]) -> dict[str, Any]:
    """A profile's values with the defaults of the fields it has no value for (what targeting rules read)."""
    defaults = {key: field.default for key, field in definitions.items() if field.default is not None}
    return {**defaults, **values}
