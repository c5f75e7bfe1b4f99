"""Turn source columns (text from CSV, typed values from JSON or Parquet) into a column's type, vectorised.

Every converter first tries one Arrow cast of the whole column: clean data pays nothing more. Only when that
fails do we clean (trim, null tokens), gate with a regular expression (vectorised), and bisect the remaining
casts to find the exact rows that fail, so a bad value costs a few small casts, never a Python loop per row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from northstar.datasets.formats.arrowops import (
    BoolMask,
    Column,
    both,
    decoded,
    from_mask,
    if_else,
    join,
    matches,
    negate,
    null_of,
    nulls,
    to_mask,
)
from northstar.datasets.formats.schema import ColumnDef, ColumnKind

# Written by spreadsheets and databases for "no value"; only honoured for non-text columns.
NULL_TOKENS = pa.array(["null", "none", "na", "n/a", "nil", "\\n"])
TRUE_WORDS = pa.array(["true", "t", "yes", "y", "1"])
FALSE_WORDS = pa.array(["false", "f", "no", "n", "0"])
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)
_BISECT_LEAF = 8
_UTC = pa.timestamp("us", tz="UTC")
_NAIVE = pa.timestamp("us")
# Dates and times PostgreSQL and every client can print: years 1 to 9999.
_LIMITS: dict[str, tuple[pa.Scalar[Any], pa.Scalar[Any]]] = {
    "date": (pa.scalar(date(1, 1, 1), pa.date32()), pa.scalar(date(9999, 12, 31), pa.date32())),
    "datetime": (
        pa.scalar(datetime(1, 1, 1), _NAIVE).cast(_UTC),
        pa.scalar(datetime(9999, 12, 31, 23, 59, 59, 999999), _NAIVE).cast(_UTC),
    ),
}

INT_GATE = r"^[+-]?(\d+|0[xX][0-9a-fA-F]+)$"
FLOAT_GATE = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|(?i:nan|inf|infinity))$"
DECIMAL_GATE = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
DATE_GATE = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_GATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
ZONE_SUFFIX = r"(Z|[+-]\d{2}(:?\d{2})?)$"
UUID_CANONICAL = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UUID_GATE = r"^\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$"


@dataclass(frozen=True, slots=True)
class Conversion:
    values: Column  # the column's Arrow type; null where the source was null or failed
    failed: BoolMask | None  # per row: a value was present but could not be converted (None: no failures)
    reason: str  # what a failed value is not, e.g. "not an integer"


def reason_for(column: ColumnDef) -> str:
    reasons: dict[ColumnKind, str] = {
        "int": "not an integer",
        "float": "not a number",
        "decimal": f"not a number with at most {(column.precision or 0) - (column.scale or 0)} digits before "
        f"and {column.scale} after the decimal point",
        "bool": "not a boolean (true/false, yes/no, 1/0)",
        "string": "not text",
        "date": "not a date (YYYY-MM-DD, years 1 to 9999)",
        "datetime": "not a date and time (ISO 8601 such as 2024-01-31T12:00:00Z, years 1 to 9999)",
        "uuid": "not a UUID",
        "json": "not valid JSON",
    }
    return reasons[column.type]


def convert(source: Column, column: ColumnDef) -> Conversion:
    """The source column as ``column.arrow_type``, with the rows that could not be converted."""
    reason = reason_for(column)
    target = column.arrow_type
    source = decoded(source)
    if pa.types.is_null(source.type) or source.null_count == len(source):
        return Conversion(nulls(len(source), target), None, reason)
    if column.type == "string":
        return Conversion(as_text(source), None, reason)
    if column.type == "json":
        return _json_text(source, reason)
    if not is_text(source.type):
        try:
            return _in_range(column.type, Conversion(pc.cast(source, target, safe=True), None, reason))
        except _CAST_ERRORS:
            source = as_text(source)
    elif source.type != pa.string():
        source = source.cast(pa.string())
    values, failed = _TEXT_CONVERTERS[column.type](source, target)
    return _in_range(column.type, Conversion(values, failed, reason))


def is_text(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def as_text(source: Column) -> Column:
    """Text for any column: strings as they are, nested values as JSON, the rest as Arrow prints them."""
    if source.type == pa.string():
        return source
    source = decoded(source)
    if pa.types.is_nested(source.type):
        return pa.array([None if value is None else _dumps(value) for value in source.to_pylist()], pa.string())
    try:
        return pc.cast(source, pa.string())
    except _CAST_ERRORS:
        return pa.array([None if value is None else str(value) for value in source.to_pylist()], pa.string())


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _or(*masks: BoolMask | None) -> BoolMask | None:
    present = [mask for mask in masks if mask is not None]
    if not present:
        return None
    result = present[0]
    for mask in present[1:]:
        result = result | mask
    return result if result.any() else None


def clean_text(source: Column) -> Column:
    """Trimmed text with the usual null tokens ("NULL", "N/A", ``\\N``…) turned into nulls."""
    trimmed = pc.utf8_trim_whitespace(source)
    tokens = pc.is_in(pc.utf8_lower(trimmed), value_set=NULL_TOKENS)
    return if_else(tokens, null_of(pa.string()), trimmed)


def cast_each(source: Column, target: pa.DataType) -> tuple[Column, BoolMask | None]:
    """Cast, and when the whole column will not, bisect to the rows that fail (they become null)."""
    try:
        return pc.cast(source, target, safe=True), None
    except _CAST_ERRORS:
        pass
    if len(source) <= _BISECT_LEAF:
        pieces, failed = [], np.zeros(len(source), dtype=np.bool_)
        for index in range(len(source)):
            try:
                pieces.append(pc.cast(source.slice(index, 1), target, safe=True))
            except _CAST_ERRORS:
                pieces.append(nulls(1, target))
                failed[index] = True
        return pa.concat_arrays(pieces), failed
    middle = len(source) // 2
    left, left_failed = cast_each(source.slice(0, middle), target)
    right, right_failed = cast_each(source.slice(middle), target)
    failed_parts = [
        np.zeros(len(part), dtype=np.bool_) if mask is None else mask
        for part, mask in ((left, left_failed), (right, right_failed))
    ]
    return pa.concat_arrays([left, right]), np.concatenate(failed_parts)


def _gated(
    source: Column, target: pa.DataType, gate: str, prepare: Callable[[Column], Column] | None = None
) -> tuple[Column, BoolMask | None]:
    """The slow path shared by most types: clean, reject what the gate refuses, bisect-cast the rest."""
    cleaned = clean_text(source)
    if prepare is not None:
        cleaned = prepare(cleaned)
    passes = matches(cleaned, gate)
    values, cast_failed = cast_each(if_else(passes, cleaned, null_of(pa.string())), target)
    refused = to_mask(both(cleaned.is_valid(), negate(passes)))
    return values, _or(refused, cast_failed)


def _parsed(
    gate: str, prepare: Callable[[Column], Column] | None = None
) -> Callable[[Column, pa.DataType], tuple[Column, BoolMask | None]]:
    def converter(source: Column, target: pa.DataType) -> tuple[Column, BoolMask | None]:
        try:
            return pc.cast(source, target, safe=True), None
        except _CAST_ERRORS:
            return _gated(source, target, gate, prepare)

    return converter


def _drop_plus(text: Column) -> Column:
    return pc.replace_substring_regex(text, r"^\+", "")


def _to_bool(source: Column, _: pa.DataType) -> tuple[Column, BoolMask | None]:
    words = pc.utf8_lower(clean_text(source))
    is_true = pc.is_in(words, value_set=TRUE_WORDS)
    is_false = pc.is_in(words, value_set=FALSE_WORDS)
    values = if_else(is_true, True, if_else(is_false, False, null_of(pa.bool_())))
    failed = to_mask(both(words.is_valid(), negate(pc.or_(is_true, is_false))))
    return values, failed if failed.any() else None


def _to_datetime(source: Column, target: pa.DataType) -> tuple[Column, BoolMask | None]:
    """ISO 8601 with an offset is converted to UTC; without one it is taken as UTC already; a date alone is
    its midnight (UTC)."""
    for attempt in (target, _NAIVE):
        try:
            return pc.cast(pc.cast(source, attempt, safe=True), target), None
        except _CAST_ERRORS:
            pass
    cleaned = pc.utf8_upper(clean_text(source))
    cleaned = pc.replace_substring_regex(cleaned, r"^(\d{4}-\d{2}-\d{2})$", r"\1T00:00:00")
    cleaned = pc.replace_substring_regex(cleaned, r"(\.\d{6})\d+", r"\1")  # PostgreSQL keeps microseconds
    passes = matches(cleaned, DATETIME_GATE)
    zoned = matches(cleaned, ZONE_SUFFIX)
    empty = null_of(pa.string())
    with_zone, zone_failed = cast_each(if_else(both(passes, zoned), cleaned, empty), target)
    naive, naive_failed = cast_each(if_else(both(passes, negate(zoned)), cleaned, empty), _NAIVE)
    values = if_else(zoned, with_zone, pc.cast(naive, target))
    refused = to_mask(both(cleaned.is_valid(), negate(passes)))
    return values, _or(refused, zone_failed, naive_failed)


def _to_uuid(source: Column, _: pa.DataType) -> tuple[Column, BoolMask | None]:
    """Canonical lower-case hyphenated form, so equal UUIDs compare equal as text too."""
    lowered = pc.utf8_lower(clean_text(source))
    if int(to_mask(matches(lowered, UUID_CANONICAL)).sum()) == len(lowered) - lowered.null_count:
        return lowered, None
    passes = matches(lowered, UUID_GATE)
    digits = pc.replace_substring_regex(lowered, r"[{}-]", "")
    spans = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
    joined = join(*(pc.utf8_slice_codeunits(digits, start, stop) for start, stop in spans), separator="-")
    values = if_else(passes, joined, null_of(pa.string()))
    failed = to_mask(both(lowered.is_valid(), negate(passes)))
    return values, failed if failed.any() else None


def _json_text(source: Column, reason: str) -> Conversion:
    """JSON columns hold the text as given (PostgreSQL normalises jsonb); text must parse as JSON."""
    if not is_text(source.type):
        return Conversion(as_text(source), None, reason)
    texts = source.cast(pa.string())
    failed = np.zeros(len(texts), dtype=np.bool_)
    for index, text in enumerate(texts.to_pylist()):
        if text is not None and not _parses_as_json(text):
            failed[index] = True
    if not failed.any():
        return Conversion(texts, None, reason)
    return Conversion(if_else(from_mask(failed), null_of(pa.string()), texts), failed, reason)


def _parses_as_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # numbers beyond 64 bits are valid JSON (and jsonb) but not for orjson
            json.loads(text, parse_constant=_refuse_constant)
        except ValueError:
            return False
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _in_range(kind: ColumnKind, conversion: Conversion) -> Conversion:
    """Dates outside years 1 to 9999 fail: PostgreSQL and most clients cannot print them as ISO text."""
    if kind not in ("date", "datetime"):
        return conversion
    values = conversion.values
    low, high = _LIMITS[kind]
    if values.null_count == len(values):
        return conversion
    extremes = pc.min_max(values)  # one pass; the per-row comparison only when something is out of range
    if pc.greater_equal(extremes["min"], low).as_py() and pc.less_equal(extremes["max"], high).as_py():
        return conversion
    outside = to_mask(pc.or_(pc.less(values, low), pc.greater(values, high)))
    failed = _or(conversion.failed, outside)
    return Conversion(if_else(from_mask(outside), null_of(values.type), values), failed, conversion.reason)


_TEXT_CONVERTERS: dict[str, Callable[[Column, pa.DataType], tuple[Column, BoolMask | None]]] = {
    "int": _parsed(INT_GATE, _drop_plus),
    "float": _parsed(FLOAT_GATE),
    "decimal": _parsed(DECIMAL_GATE),
    "bool": _to_bool,
    "date": _parsed(DATE_GATE),
    "datetime": _to_datetime,
    "uuid": _to_uuid,
}
