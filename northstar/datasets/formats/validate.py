"""Validation against a dataset schema, and schema inference from a sample, both column-at-a-time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from northstar.datasets.formats.arrowops import (
    BoolMask,
    Column,
    any_true,
    characters,
    contains,
    decoded,
    either,
    from_mask,
    if_else,
    join,
    matches,
    nulls,
    to_mask,
)
from northstar.datasets.formats.casting import DATE_GATE, FLOAT_GATE, Conversion, as_text, clean_text, convert, is_text
from northstar.datasets.formats.schema import (
    KIND_METADATA_KEY,
    MAX_DECIMAL_PRECISION,
    ColumnDef,
    ColumnKind,
    DatasetSchema,
    bind_columns,
    normalise_column_names,
)

_REJECT_FIELDS: list[pa.Field[Any]] = [
    pa.field("row_number", pa.int64(), nullable=False),  # 1-based data row in the file (header not counted)
    pa.field("column", pa.string()),  # null when the whole row is unreadable
    pa.field("reason", pa.string(), nullable=False),
]
REJECTS_SCHEMA = pa.schema(_REJECT_FIELDS)
ECHO_CHARS = 60
NUL_REASON = "contains a NUL character, which PostgreSQL cannot store"
REQUIRED_REASON = "missing value in a required column"
WORD_BOOLEANS = pa.array(["true", "false", "t", "f", "yes", "no"])
# The share of a column's non-empty sampled values that must parse as a type for the column to take it; the
# others become rejects. Frictionless infers with 0.9; we ask for more, as a wrong type costs the user rows.
TYPE_CONFIDENCE = 0.95
_INT_TEXT = r"^[+-]?\d{1,19}$"
_LEADING_ZERO = r"^[+-]?0\d"  # "00123" is an identifier (zip code, phone), not the number 123


@dataclass(frozen=True, slots=True)
class ValidatedBatch:
    rows: pa.RecordBatch  # valid rows, typed per ``schema.to_arrow()``
    row_numbers: Column  # int64: the data-row number of each valid row
    rejects: pa.Table  # REJECTS_SCHEMA, sorted by row number then column order
    schema: DatasetSchema


def empty_rejects() -> pa.Table:
    return REJECTS_SCHEMA.empty_table()


def rejects_table(row_numbers: Column, column: str | None, reasons: Column | str) -> pa.Table:
    count = len(row_numbers)
    reason_array = pa.array([reasons] * count, pa.string()) if isinstance(reasons, str) else reasons
    return pa.Table.from_arrays(
        [row_numbers.cast(pa.int64()), pa.array([column] * count, pa.string()), reason_array], schema=REJECTS_SCHEMA
    )


def echo_values(text: Column) -> Column:
    """Values quoted back to the user: at most ``ECHO_CHARS`` characters, control characters shown as '?'."""
    short = pc.utf8_slice_codeunits(text, 0, ECHO_CHARS)
    ellipsis = if_else(matches(text, f"(?s)^.{{{ECHO_CHARS + 1}}}"), "…", "")
    visible = pc.replace_substring_regex(short, r"[\x00-\x1f\x7f]", "?")
    return join("'", visible, ellipsis, "'")


def validate_batch(
    data: pa.RecordBatch, row_numbers: Column, schema: DatasetSchema, *, positional: bool = False
) -> ValidatedBatch:
    """Cast every column; a row with any failing cell is rejected, with one reject per failing cell."""
    bound = bind_columns(data.schema.names, schema, positional=positional)
    count = data.num_rows
    values: list[Column] = []
    failures: list[tuple[int, BoolMask, Column | str]] = []  # (column position, rows, reason per row)
    for position, (column, index) in enumerate(zip(schema.columns, bound, strict=True)):
        source = data.column(index) if index is not None else nulls(count, pa.string())
        conversion = convert(source, column)
        values.append(conversion.values)
        failures.extend((position, mask, reason) for mask, reason in _cell_failures(source, column, conversion))
    keep = np.ones(count, dtype=np.bool_)
    for _, mask, _ in failures:
        keep &= ~mask
    valid = pa.RecordBatch.from_arrays(values, schema=schema.to_arrow())
    numbers = row_numbers
    if not keep.all():
        keep_array = from_mask(keep)
        valid, numbers = valid.filter(keep_array), row_numbers.filter(keep_array)
    return ValidatedBatch(valid, numbers, _collect_rejects(failures, row_numbers, schema), schema)


def _cell_failures(source: Column, column: ColumnDef, conversion: Conversion) -> list[tuple[BoolMask, Column | str]]:
    found: list[tuple[BoolMask, Column | str]] = []
    if conversion.failed is not None:
        found.append((conversion.failed, conversion.reason))
    if column.type == "json" or (column.type == "string" and bool((characters(conversion.values) == 0).any())):
        nul = contains(conversion.values, "\x00")
        if column.type == "json":  # jsonb refuses the escaped form too
            nul = either(nul, contains(conversion.values, "\\u0000"))
        mask = to_mask(nul)
        if mask.any():
            found.append((mask, NUL_REASON))
    if not column.nullable and conversion.values.null_count:
        missing = to_mask(conversion.values.is_null())
        if conversion.failed is not None:
            missing &= ~conversion.failed
        if missing.any():
            found.append((missing, REQUIRED_REASON))
    return [(mask, _echoed(source, mask, reason) if reason is conversion.reason else reason) for mask, reason in found]


def _echoed(source: Column, mask: BoolMask, reason: str) -> Column:
    failing = source.filter(from_mask(mask))
    return join(reason, echo_values(as_text(failing)), separator=": ")


def _collect_rejects(
    failures: list[tuple[int, BoolMask, Column | str]], row_numbers: Column, schema: DatasetSchema
) -> pa.Table:
    if not failures:
        return empty_rejects()
    parts, positions = [], []
    for position, mask, reason in failures:
        rows = row_numbers.filter(from_mask(mask))
        parts.append(rejects_table(rows, schema.columns[position].display_name, reason))
        positions.append(np.full(len(rows), position, dtype=np.int64))
    table = pa.concat_tables(parts).append_column("position", pa.array(np.concatenate(positions)))
    return table.sort_by([("row_number", "ascending"), ("position", "ascending")]).drop_columns(["position"])


def infer_schema(
    sample: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch],
    *,
    max_rows: int = 10_000,
    labels: Sequence[str] | None = None,
) -> DatasetSchema:
    """For each column the narrowest type that ``TYPE_CONFIDENCE`` of its sampled values parse as (else text).

    A few bad values (``oops`` among numbers) do not turn a column into text: they become rejects when the
    rows are validated. Columns are matched by name across batches (JSON objects need not list the same keys in
    every row); names become safe SQL identifiers and the originals are kept as labels. Every inferred column is
    nullable: a sample cannot prove that later rows always have a value. A NUL in a header, which PostgreSQL cannot
    store, is kept in the label as U+FFFD.
    """
    batches = (
        [sample]
        if isinstance(sample, pa.RecordBatch)
        else list(sample.to_batches() if isinstance(sample, pa.Table) else sample)
    )
    values: dict[str, list[Column]] = {}
    json_tags: dict[str, list[bool]] = {}  # per batch with values: did the reader mark the column as JSON?
    remaining = max_rows
    for batch in batches:
        if remaining <= 0:
            break
        part = batch.slice(0, remaining)
        remaining -= part.num_rows
        for field, array in zip(part.schema, part.columns, strict=True):
            values.setdefault(field.name, [])
            json_tags.setdefault(field.name, [])
            if array.null_count < len(array):
                values[field.name].append(array)
                json_tags[field.name].append((field.metadata or {}).get(KIND_METADATA_KEY) == b"json")
    if not values:  # a header-only CSV still names its columns
        values = {name: [] for batch in batches for name in batch.schema.names}
    originals = list(values)
    names = normalise_column_names(list(labels) if labels is not None else originals)
    columns = []
    for name, label in zip(names, originals, strict=True):
        tags = json_tags.get(label, [])
        kind: ColumnKind
        if any(tags):  # nested values: JSON when every batch held them, else text as the file wrote it
            kind, precision, scale = ("json" if all(tags) else "string"), None, None
        else:
            kind, precision, scale = infer_kind(_combined(values[label]))
        columns.append(ColumnDef(name, kind, True, precision, scale, label.replace("\x00", "\ufffd")))
    return DatasetSchema(tuple(columns))


def _combined(arrays: list[Column]) -> Column:
    """One column's sampled values as one array: as they are when every batch agrees on the type, else as text."""
    if not arrays:
        return pa.array([], pa.string())
    arrays = [decoded(array) for array in arrays]
    if any(array.type != arrays[0].type for array in arrays):
        arrays = [as_text(array) for array in arrays]
    return pa.concat_arrays(arrays)


def infer_kind(array: Column) -> tuple[ColumnKind, int | None, int | None]:
    """(kind, precision, scale) of one column's values."""
    data_type = array.type
    if pa.types.is_dictionary(data_type):
        return infer_kind(decoded(array))
    if pa.types.is_integer(data_type):
        if data_type == pa.uint64() and (pc.max(array).as_py() or 0) > 2**63 - 1:
            return "decimal", 20, 0
        return "int", None, None
    if pa.types.is_floating(data_type):
        return "float", None, None
    if pa.types.is_decimal(data_type):
        if data_type.precision <= MAX_DECIMAL_PRECISION and data_type.scale >= 0:
            return "decimal", data_type.precision, data_type.scale
        return "string", None, None
    simple: list[tuple[bool, ColumnKind]] = [
        (pa.types.is_boolean(data_type), "bool"),
        (pa.types.is_date(data_type), "date"),
        (pa.types.is_timestamp(data_type), "datetime"),
        (pa.types.is_nested(data_type), "json"),
    ]
    for applies, kind in simple:
        if applies:
            return kind, None, None
    if is_text(data_type):
        return _infer_text(array.cast(pa.string())), None, None
    return "string", None, None


# Candidates for text, narrowest first, each with the pattern a value must match to count for it (the converter
# accepts more, such as hexadecimal integers, which should not make a column numeric).
_TEXT_CANDIDATES: tuple[tuple[ColumnKind, str | None], ...] = (
    ("int", _INT_TEXT),
    ("float", FLOAT_GATE),
    ("date", DATE_GATE),
    ("datetime", r"^\d{4}-\d{2}-\d{2}([T ]\d|$)"),
    ("uuid", None),
    ("json", r"^[\[{]"),
)


def _infer_text(array: Column) -> ColumnKind:
    """The narrowest type parsing the most values, if that is at least ``TYPE_CONFIDENCE`` of them; else text.

    Booleans are only the words (true/false, t/f, yes/no), and a column with a number written with leading zeros
    (``00123``: a zip code, a phone number) is text, because as a number it would lose its zeros.
    """
    cleaned = clean_text(array).drop_null()
    if len(cleaned) == 0:
        return "string"
    needed = math.ceil(TYPE_CONFIDENCE * len(cleaned))
    if _count(pc.is_in(pc.utf8_lower(cleaned), value_set=WORD_BOOLEANS)) >= needed:
        return "bool"
    numbers_allowed = not any_true(matches(cleaned, _LEADING_ZERO))
    best: tuple[int, ColumnKind] = (0, "string")
    for kind, gate in _TEXT_CANDIDATES:
        if kind in ("int", "float") and not numbers_allowed:
            continue
        candidates = cleaned.filter(matches(cleaned, gate)) if gate else cleaned
        if len(candidates) < max(needed, best[0] + 1):
            continue
        failed = convert(candidates, ColumnDef("probe", kind)).failed
        parsed = len(candidates) - (0 if failed is None else int(failed.sum()))
        if parsed > best[0]:
            best = (parsed, kind)
    return best[1] if best[0] >= needed else "string"


def _count(condition: Column) -> int:
    return int(to_mask(condition).sum())
