"""Typed wrappers for the Arrow compute calls used here.

Arrow broadcasts Python scalars against arrays and takes null-typed scalars in ``if_else``; the type stubs'
overloads do not cover those mixes, so the calls go through one untyped handle and come back typed.
"""

from __future__ import annotations

from typing import Any, TypeAlias, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = "pa.Array[Any]"
BoolMask: TypeAlias = "npt.NDArray[np.bool_]"
Operand: TypeAlias = "Column | pa.Scalar[Any] | str | bool | None"
_compute: Any = pc


def decoded(values: Column) -> Column:
    """Dictionary-encoded values as plain values; anything else unchanged."""
    if pa.types.is_dictionary(values.type):
        return cast("Column", cast(Any, values).dictionary_decode())
    return values


def nulls(count: int, data_type: pa.DataType) -> Column:
    return cast("Column", _compute.cast(pa.nulls(count), data_type))


def null_of(data_type: pa.DataType) -> pa.Scalar[Any]:
    return pa.scalar(None, data_type)


def matches(values: Column, pattern: str) -> Column:
    """Boolean per value: the RE2 pattern matches (null values: False)."""
    return cast("Column", _compute.fill_null(_compute.match_substring_regex(values, pattern), False))


def contains(values: Column, text: str) -> Column:
    return cast("Column", _compute.fill_null(_compute.match_substring(values, text), False))


def join(*parts: Operand, separator: str | pa.Scalar[Any] = "") -> Column:
    """Element-wise concatenation; strings are repeated on every row."""
    return cast("Column", _compute.binary_join_element_wise(*parts, separator))


def filled(values: Column, replacement: Operand) -> Column:
    return cast("Column", _compute.fill_null(values, replacement))


def if_else(condition: Column, when_true: Operand, when_false: Operand) -> Column:
    return cast("Column", _compute.if_else(condition, when_true, when_false))


def both(left: Column, right: Column) -> Column:
    return cast("Column", _compute.and_(left, right))


def either(left: Column, right: Column) -> Column:
    return cast("Column", _compute.or_(left, right))


def negate(values: Column) -> Column:
    return cast("Column", _compute.invert(values))


def any_true(values: Column) -> bool:
    return bool(_compute.any(values).as_py())


def all_true(values: Column) -> bool:
    return bool(_compute.all(values).as_py())


def to_mask(condition: Column) -> BoolMask:
    """A boolean Arrow array as a numpy mask, nulls counting as False."""
    filled = _compute.fill_null(condition, False)
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.bool_)


def from_mask(mask: BoolMask) -> Column:
    return cast("Column", pa.array(mask, pa.bool_()))


def characters(values: Column) -> npt.NDArray[np.uint8]:
    """The character bytes of a string array's values, back to back, without copying them."""
    _, offsets_buffer, data_buffer = values.buffers()[:3]
    if offsets_buffer is None or data_buffer is None or not len(values):
        return np.empty(0, dtype=np.uint8)
    width = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(cast(Any, offsets_buffer), dtype=width)[values.offset : values.offset + len(values) + 1]
    data: npt.NDArray[np.uint8] = np.frombuffer(cast(Any, data_buffer), dtype=np.uint8)
    return data[int(offsets[0]) : int(offsets[-1])]


def utc_text(values: Column, *, separator: str = " ") -> Column:
    """ISO 8601 text of time-zone-aware timestamps, in UTC with a ``Z``.

    Arrow stores such timestamps as UTC instants; printing them through their zone costs a zone lookup per
    value (about forty times slower), while dropping the zone and printing the naive value is the same text.
    """
    unit = cast(pa.TimestampType, values.type).unit
    text = cast("Column", _compute.cast(_compute.cast(values, pa.timestamp(unit)), pa.string()))
    if separator != " ":
        text = cast("Column", _compute.replace_substring(text, " ", separator, max_replacements=1))
    return join(text, "Z")


def is_zoned_timestamp(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(data_type) and cast(pa.TimestampType, data_type).tz is not None)
