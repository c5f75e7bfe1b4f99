"""Export writers: Arrow batches in, CSV / JSON / NDJSON / Parquet bytes out, one batch at a time.

Nothing here holds more than the batch it is given. JSON is encoded column-wise with Arrow compute (each
column becomes its JSON text, then the columns are joined into objects), so no Python code runs per row.
"""

from __future__ import annotations

import gzip as gzip_module
import re
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, BinaryIO, Literal, Self, cast

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from northstar.datasets.formats.arrowops import (
    Column,
    any_true,
    both,
    characters,
    decoded,
    filled,
    if_else,
    is_zoned_timestamp,
    join,
    matches,
    negate,
    null_of,
    utc_text,
)
from northstar.datasets.formats.schema import KIND_METADATA_KEY

ExportFormat = Literal["csv", "json", "ndjson", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "json", "ndjson", "parquet")
_MIME_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}
# OWASP CSV injection: a cell that starts with = + - @ is a formula to spreadsheet software, also behind leading
# whitespace (which spreadsheets skip); one that starts with tab, CR, LF or NUL is guarded as well.
FORMULA_START = r"^(?:[\t\r\n\x00]|[\s\p{Z}]*[=+\-@])"
PLAIN_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NEEDS_ESCAPE = r'["\\\x00-\x1f]'
_RARE_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"  # control characters other than \t \n \r
_GZIP_LEVEL = 6
_ROWS_PER_WRITE = 65_536
ROW_GROUP_ROWS = 131_072  # Parquet row groups: large enough to compress and skip well, small enough to buffer
ROW_GROUP_BYTES = 64 << 20  # bounds one encoded JSON chunk, whatever batch size the caller uses


# A file name is one segment of an object key and of a download's name: never a path, never control characters.
UNSAFE_IN_FILE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_FILE_NAME = 200


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file (it is a path, holds control characters, or is only dots), else None."""
    if UNSAFE_IN_FILE_NAME.search(name):
        return "must be a file name, not a path: no '/', '\\' or control characters"
    if not name.strip(". "):
        return "must contain something besides dots and spaces"
    return None


def safe_file_name(name: str, *, fallback: str) -> str:
    """``name`` as one harmless file name: path separators and control characters become ``_``."""
    cleaned = UNSAFE_IN_FILE_NAME.sub("_", name).strip(". ")[:MAX_FILE_NAME]
    return cleaned or fallback


def mime_type(fmt: ExportFormat, *, gzip: bool = False) -> str:
    return "application/gzip" if gzip else _MIME_TYPES[fmt]


def file_extension(fmt: ExportFormat, *, gzip: bool = False) -> str:
    return f".{fmt}.gz" if gzip else f".{fmt}"


class BatchWriter(ABC):
    """Write batches of one schema, then ``close``; the sink stays open for its owner."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, *, gzip: bool) -> None:
        self.schema = schema
        self._sink = sink
        self._gzip = gzip_module.GzipFile(fileobj=sink, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) if gzip else None
        self._out: BinaryIO = sink if self._gzip is None else cast(BinaryIO, self._gzip)
        self.rows_written = 0

    @abstractmethod
    def write(self, batch: pa.RecordBatch | pa.Table) -> None: ...

    @abstractmethod
    def _finish(self) -> None: ...

    def close(self) -> None:
        self._finish()
        if self._gzip is not None:
            self._gzip.close()
        self._sink.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()


def open_writer(fmt: ExportFormat, sink: BinaryIO, schema: pa.Schema, *, gzip: bool = False) -> BatchWriter:
    writers: dict[str, type[BatchWriter]] = {
        "csv": CsvBatchWriter,
        "json": JsonArrayBatchWriter,
        "ndjson": NdjsonBatchWriter,
        "parquet": ParquetBatchWriter,
    }
    if fmt not in writers:
        raise ValueError(f"Unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    return writers[fmt](sink, schema, gzip=gzip)


def _batches(data: pa.RecordBatch | pa.Table) -> list[pa.RecordBatch]:
    return (
        data.to_batches(max_chunksize=_ROWS_PER_WRITE)
        if isinstance(data, pa.Table)
        else [data.slice(start, _ROWS_PER_WRITE) for start in range(0, data.num_rows, _ROWS_PER_WRITE)]
    )


def guard_formulas(values: Column) -> Column:
    """Prefix ``'`` to text a spreadsheet would run as a formula; text that is a plain number stays as is."""
    risky = matches(values, FORMULA_START)
    if not any_true(risky):
        return values
    risky = both(risky, negate(matches(values, PLAIN_NUMBER)))
    quote, nothing = pa.scalar("'", values.type), pa.scalar("", values.type)  # large_string needs its own type
    return if_else(risky, join(quote, values, separator=nothing), values)


def _guard_name(name: str) -> str:
    return str(guard_formulas(pa.array([name])).to_pylist()[0])


class CsvBatchWriter(BatchWriter):
    """RFC 4180 CSV with a header; every text cell goes through the formula guard."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, *, gzip: bool) -> None:
        super().__init__(sink, schema, gzip=gzip)
        unsupported = [
            field.name
            for field in schema
            if pa.types.is_nested(field.type) or pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
        ]
        if unsupported:
            raise ValueError(f"CSV cannot hold nested or binary columns: {', '.join(unsupported)}")
        self._text = [_is_text(field.type) for field in schema]
        self._zoned = [is_zoned_timestamp(field.type) for field in schema]
        self._file_schema = pa.schema(
            [
                field.with_name(_guard_name(field.name)).with_type(_file_type(field.type, zoned))
                for field, zoned in zip(schema, self._zoned, strict=True)
            ]
        )
        self._writer = pa_csv.CSVWriter(
            self._out, self._file_schema, write_options=pa_csv.WriteOptions(include_header=True, quoting_style="needed")
        )

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        for part in _batches(batch):
            columns = [
                guard_formulas(decoded(column)) if text else utc_text(column) if zoned else column
                for column, text, zoned in zip(part.columns, self._text, self._zoned, strict=True)
            ]
            self._writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=self._file_schema))
            self.rows_written += part.num_rows

    def write_rendered(self, lines: bytes, rows: int) -> None:
        """Append CSV lines already rendered as ``write`` would, formula guard included (``exports.csv_cell``)."""
        self._out.write(lines)
        self.rows_written += rows

    def _finish(self) -> None:
        self._writer.close()


def _value_type(data_type: pa.DataType) -> pa.DataType:
    """A dictionary's value type (generated categories arrive dictionary-encoded); any other type as it is."""
    if pa.types.is_dictionary(data_type):
        value_type: pa.DataType = cast("pa.DictionaryType[Any, Any]", data_type).value_type
        return value_type
    return data_type


def _is_text(data_type: pa.DataType) -> bool:
    data_type = _value_type(data_type)
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def _file_type(data_type: pa.DataType, zoned: bool) -> pa.DataType:
    return pa.string() if zoned else _value_type(data_type)


class ParquetBatchWriter(BatchWriter):
    """zstd-compressed Parquet; small batches are gathered into row groups of a useful size."""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, *, gzip: bool) -> None:
        if gzip:
            raise ValueError("Parquet compresses its own pages (zstd); it is not gzipped again")
        super().__init__(sink, schema, gzip=False)
        self._writer = pq.ParquetWriter(sink, schema, compression="zstd")
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._pending_bytes = 0

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        for part in _batches(batch):
            self._pending.append(part)
            self._pending_rows += part.num_rows
            self._pending_bytes += part.nbytes
            if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
                self._flush()
        self.rows_written += batch.num_rows

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(
                pa.Table.from_batches(self._pending, schema=self.schema), row_group_size=self._pending_rows
            )
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def _finish(self) -> None:
        self._flush()
        self._writer.close()


class NdjsonBatchWriter(BatchWriter):
    """One JSON object per line."""

    _row_prefix, _row_suffix = "", "\n"

    def __init__(self, sink: BinaryIO, schema: pa.Schema, *, gzip: bool) -> None:
        super().__init__(sink, schema, gzip=gzip)
        self._keys = [orjson.dumps(field.name).decode() for field in schema]

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        for part in _batches(batch):
            if part.num_rows:
                self._emit(characters(self._encode(part)).data)
                self.rows_written += part.num_rows

    def _emit(self, data: memoryview) -> None:
        self._out.write(data)

    def _encode(self, batch: pa.RecordBatch) -> Column:
        if not self._keys:
            return pa.array([self._row_prefix + "{}" + self._row_suffix] * batch.num_rows, pa.string())
        pieces: list[Column | str] = []
        for index, (key, column, field) in enumerate(zip(self._keys, batch.columns, self.schema, strict=True)):
            pieces += [("{" if index == 0 else ",") + key + ":", json_values(column, field)]
        pieces[0] = f"{self._row_prefix}{pieces[0]}"
        pieces.append("}" + self._row_suffix)
        return join(*pieces)

    def _finish(self) -> None:
        return None


class JsonArrayBatchWriter(NdjsonBatchWriter):
    """One JSON array of objects, streamed: ``[`` first, objects separated by commas, ``]`` at close."""

    _row_prefix, _row_suffix = ",\n", ""

    def __init__(self, sink: BinaryIO, schema: pa.Schema, *, gzip: bool) -> None:
        super().__init__(sink, schema, gzip=gzip)
        self._out.write(b"[")

    def _emit(self, data: memoryview) -> None:
        self._out.write(data[1:] if self.rows_written == 0 else data)  # no comma before the first object

    def _finish(self) -> None:
        self._out.write(b"\n]\n")


def json_values(column: Column, field: pa.Field[Any]) -> Column:
    """Each value's JSON text; NaN and infinities, which JSON cannot express, become null."""
    column = decoded(column)
    data_type = column.type
    kind = (field.metadata or {}).get(KIND_METADATA_KEY)
    encoded: Column
    if pa.types.is_null(data_type):
        encoded = pa.array(["null"] * len(column), pa.string())
    elif pa.types.is_boolean(data_type):
        encoded = if_else(column, "true", "false")
    elif pa.types.is_integer(data_type) or pa.types.is_decimal(data_type):
        encoded = pc.cast(column, pa.string())
    elif pa.types.is_floating(data_type):
        encoded = if_else(pc.is_finite(column), pc.cast(column, pa.string()), null_of(pa.string()))
    elif pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        text = column.cast(pa.string())
        encoded = _single_line(text) if kind == b"json" else _json_strings(text)
    elif is_zoned_timestamp(data_type):
        encoded = join('"', utc_text(column, separator="T"), '"')
    elif pa.types.is_timestamp(data_type):
        encoded = join('"', pc.replace_substring(pc.cast(column, pa.string()), " ", "T", max_replacements=1), '"')
    elif pa.types.is_date(data_type) or pa.types.is_time(data_type):
        encoded = join('"', pc.cast(column, pa.string()), '"')
    else:  # nested and anything exotic: rare, so per value
        encoded = pa.array(
            [None if value is None else orjson.dumps(value, default=str).decode() for value in column.to_pylist()],
            pa.string(),
        )
    return filled(encoded, "null")


def _single_line(json_text: Column) -> Column:
    """JSON text as is, but on one line: outside strings a newline is only whitespace (and inside one it
    cannot appear raw), so it may become a space."""
    if not any_true(matches(json_text, r"[\r\n]")):
        return json_text
    return pc.replace_substring_regex(json_text, r"[\r\n]", " ")


def _json_strings(text: Column) -> Column:
    """Quoted, escaped JSON strings; the rare other control characters fall back to orjson per value."""
    if not any_true(matches(text, _NEEDS_ESCAPE)):
        return join('"', text, '"')
    if any_true(matches(text, _RARE_CONTROL)):
        return pa.array(
            [None if value is None else orjson.dumps(value).decode() for value in text.to_pylist()], pa.string()
        )
    for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = pc.replace_substring(text, raw, escaped)
    return join('"', text, '"')
