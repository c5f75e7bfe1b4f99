"""Arrow arrays straight from numpy buffers: no per-value Python objects on the way."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

AnyArray: TypeAlias = "pa.Array[Any]"


def buffer(values: NDArray[Any]) -> pa.Buffer:
    """A zero-copy Arrow buffer over a numpy array's memory (made contiguous first)."""
    return pa.py_buffer(np.ascontiguousarray(values).data)


def primitive(kind: pa.DataType, values: NDArray[Any]) -> AnyArray:
    """Wrap a numpy array as an Arrow array of the fixed-width ``kind`` (one value per first-axis entry)."""
    return pa.Array.from_buffers(kind, len(values), [None, buffer(values)])


def strings(matrix: NDArray[np.uint8], keep: NDArray[np.bool_] | None = None) -> pa.StringArray:
    """One UTF-8 string per row of a byte matrix, keeping only the bytes where ``keep`` is true.

    Building text as a byte matrix lets every character position be drawn for all rows at once.
    """
    rows, width = matrix.shape
    offsets = np.zeros(rows + 1, dtype=np.int32)
    if keep is None:
        data = matrix.reshape(-1)
        offsets[1:] = np.arange(1, rows + 1, dtype=np.int32) * width
    else:
        data = matrix[keep]
        np.cumsum(keep.sum(axis=1, dtype=np.int32), out=offsets[1:])
    return pa.StringArray.from_buffers(rows, buffer(offsets), buffer(data))


def with_nulls(array: AnyArray, valid: NDArray[np.bool_]) -> AnyArray:
    """``array`` with nulls where ``valid`` is false, by attaching a validity bitmap (data untouched)."""
    if isinstance(array, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(with_nulls(array.indices, valid), array.dictionary)
    if isinstance(array, pa.ExtensionArray):
        return pa.ExtensionArray.from_storage(array.type, with_nulls(array.storage, valid))
    nulls = len(valid) - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(
        array.type,
        len(array),
        [buffer(np.packbits(valid, bitorder="little")), *array.buffers()[1:]],
        null_count=nulls,
        offset=array.offset,
    )
