"""Raw rows out of a file, in bounded batches: decompress, transcode, parse; no typing yet.

Rows that cannot even be parsed (wrong number of fields, invalid UTF-8, a line that is not JSON) are dropped
here and reported as rejects; everything else goes on, as text (CSV) or as the file's own types (JSON,
Parquet), to validation.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import IO, Any, BinaryIO, Literal, cast

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from northstar.datasets.formats.arrowops import Column, nulls
from northstar.datasets.formats.detect import CsvDialect, DetectedFormat
from northstar.datasets.formats.errors import (
    CompressionRatioError,
    CorruptFileError,
    DecompressedTooLargeError,
    EmptyFileError,
    FormatError,
    LineTooLongError,
    MalformedFileError,
    TextEncodingError,
    TooManyColumnsError,
    TooManyRowsError,
)
from northstar.datasets.formats.jsonsplit import split_json_array
from northstar.datasets.formats.schema import KIND_METADATA_KEY
from northstar.datasets.formats.validate import empty_rejects, rejects_table

Source = str | os.PathLike[str] | BinaryIO
READ_CHUNK = 1 << 20
JSON_BLOCK = 4 << 20  # bytes of complete lines handed to the JSON parser at once
_PARSE_ERROR_CHARS = 200
JSON_MAX_DEPTH = 1024  # orjson's limit on nested arrays and objects
INVALID_UTF8_REASON = "contains bytes that are not valid UTF-8 (is part of the file in another encoding?)"


RATIO_FREE_BYTES = 1 << 20  # data up to this size is never refused for its compression ratio


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What a hostile file can make us hold or do: every buffer is bounded by these, never by the file.

    The last three (None: no limit) stop decompression bombs. They are counted as the data streams: gzip as it is
    decompressed, Parquet (whose pages are compressed, and whose dictionaries and run lengths repeat values)
    as each batch is decoded, before the batch is expanded.
    """

    max_columns: int = 1000
    max_line_bytes: int = 1 << 20  # also the CSV parser's block size: a row must fit in one block
    sample_rows: int = 10_000  # rows used to infer a schema when none is given
    max_rows: int | None = None  # data rows in the file, rejected ones included
    max_decompressed_bytes: int | None = None  # the data once decompressed (Parquet: decoded)
    max_compression_ratio: float | None = None  # decompressed bytes per byte of the file as uploaded


@dataclass(slots=True)
class _Budget:
    """Decompressed bytes so far against the limits, checked on every chunk or batch as it is produced."""

    limits: ReadLimits
    compressed_bytes: int | None  # the file's size when it is compressed (the ratio's denominator)
    used: int = 0

    def add(self, count: int) -> None:
        self.used += count
        limit, ratio = self.limits.max_decompressed_bytes, self.limits.max_compression_ratio
        if limit is not None and self.used > limit:
            raise DecompressedTooLargeError(limit)
        if (
            ratio is not None
            and self.compressed_bytes
            and self.used > max(RATIO_FREE_BYTES, ratio * self.compressed_bytes)
        ):
            raise CompressionRatioError(ratio, self.compressed_bytes)


@dataclass(frozen=True, slots=True)
class RawBatch:
    data: pa.RecordBatch  # source columns named by the file's labels: text (CSV) or the file's types
    row_numbers: Column  # int64, the data-row number of each row of ``data``
    rejects: pa.Table  # rows dropped while parsing (REJECTS_SCHEMA)
    dropped: int  # how many distinct rows ``rejects`` covers


def raw_batches(source: Source, fmt: DetectedFormat, *, batch_rows: int, limits: ReadLimits) -> Iterator[RawBatch]:
    """Parsed rows of any supported format, at most ``batch_rows`` per batch."""
    with _translated_errors(fmt, limits), ExitStack() as stack:
        path, fmt, upload_bytes = _native_input(source, fmt, stack, limits)
        batches: Iterator[RawBatch]
        if fmt.kind == "parquet":
            batches = _parquet_batches(path, batch_rows, limits, _Budget(limits, upload_bytes))
        else:
            stream = stack.enter_context(_byte_stream(path, fmt.compression))
            if fmt.kind == "csv":
                _check_csv_lines(stream, limits.max_line_bytes)
                batches = _csv_batches(stream, fmt.dialect or CsvDialect(), batch_rows, limits)
            else:
                batches = _json_batches(stream, fmt.kind == "json", batch_rows, limits)
        for batch in batches:
            if limits.max_rows is not None and _last_row(batch) > limits.max_rows:
                raise TooManyRowsError(limits.max_rows)
            yield batch


def _last_row(batch: RawBatch) -> int:
    """The highest data-row number the batch covers, rows dropped as rejects included."""
    numbers = [pc.max(batch.row_numbers).as_py(), pc.max(batch.rejects.column("row_number")).as_py()]
    return max((number for number in numbers if number is not None), default=0)


def _native_input(
    source: Source, fmt: DetectedFormat, stack: ExitStack, limits: ReadLimits
) -> tuple[str, DetectedFormat, int]:
    """A local, uncompressed file Arrow can read on its own threads, its format, and the size of the upload.

    Arrow's readers prefetch on I/O threads. Python code on those threads (a file object's ``read``, a Python
    codec) can deadlock when a reader is torn down mid-read, so file objects are first copied to a temporary
    file, and gzip is decompressed (and text in another encoding transcoded) into one, chunk by chunk, counting
    the bytes against the limits: a decompression bomb stops at the limit, and no more than that is ever written.
    Plain files on disk, the common case, are read in place.
    """
    directory: str | None = None

    def scratch(name: str) -> str:
        nonlocal directory
        directory = directory or stack.enter_context(tempfile.TemporaryDirectory(prefix="northstar-formats-"))
        return os.path.join(directory, name)

    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
    else:
        path = scratch("upload")
        with open(path, "wb") as copy:
            shutil.copyfileobj(source, copy, READ_CHUNK)
    size = os.path.getsize(path)
    budget = _Budget(limits, size if fmt.compression != "none" else None)
    transcode = fmt.kind != "parquet" and codecs.lookup(fmt.encoding).name != "utf-8"
    if fmt.compression == "none":
        budget.add(size)
    if fmt.compression != "none" or transcode:
        path = _rewritten(
            path,
            fmt.compression,
            scratch("data"),
            fmt.encoding if transcode else None,
            budget if fmt.compression != "none" else None,
        )
        fmt = replace(fmt, compression="none", encoding="utf-8" if transcode else fmt.encoding)
    return path, fmt, size


def _rewritten(path: str, compression: str, target: str, encoding: str | None, budget: _Budget | None) -> str:
    """Decompress (and transcode to UTF-8, when ``encoding`` is given) into ``target``, chunk by chunk.

    Each decompressed chunk is counted against ``budget`` before it is written.
    """
    decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
    with _byte_stream(path, compression) as stream, open(target, "wb") as out:
        while chunk := stream.read(READ_CHUNK):
            if budget is not None:
                budget.add(len(chunk))
            out.write(decoder.decode(chunk).encode() if decoder else chunk)
        if decoder:
            out.write(decoder.decode(b"", final=True).encode())
    return target


@contextmanager
def _translated_errors(fmt: DetectedFormat, limits: ReadLimits) -> Iterator[None]:
    """Library exceptions from damaged input become errors that tell the user what is wrong."""
    try:
        yield
    except (FormatError, FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except UnicodeDecodeError as exc:
        raise TextEncodingError(
            f"Part of the file is not valid {fmt.encoding} text, the encoding its start "
            "suggested; save it as UTF-8 and upload it again"
        ) from exc
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        message = str(exc)
        lowered = message.lower()
        if "straddl" in lowered:
            raise LineTooLongError(limits.max_line_bytes) from exc
        if any(word in lowered for word in ("compressed", "zlib", "gzip", "inflate")):
            raise CorruptFileError("The gzip data is truncated or corrupt; the upload may have been cut short") from exc
        if "empty csv" in lowered:
            raise EmptyFileError("The file is empty") from exc
        if "parquet" in lowered or "thrift" in lowered or fmt.kind == "parquet":
            raise CorruptFileError("The Parquet file is damaged or incomplete") from exc
        if isinstance(exc, pa.ArrowInvalid):
            raise MalformedFileError(f"The file cannot be parsed: {message[:_PARSE_ERROR_CHARS]}") from exc
        raise


@contextmanager
def _byte_stream(path: str, compression: str) -> Iterator[pa.NativeFile]:
    with pa.OSFile(path, "rb") as file:
        yield pa.CompressedInputStream(file, "gzip") if compression == "gzip" else file


class _RowNumbers:
    """Data-row numbers for rows the parser kept, skipping the rows it reported as invalid.

    The parser numbers records (header included) as it meets them, including the invalid ones it drops, so
    the kept rows are the consecutive numbers that are not in the invalid set.
    """

    def __init__(self, first: int) -> None:
        self.next = first
        self.invalid: list[tuple[int, str]] = []  # (record number, reason), ascending

    def take(self, count: int) -> tuple[Column, list[tuple[int, str]]]:
        """Numbers for the next ``count`` kept rows, and the invalid rows they pass over."""
        skipped = [number for number, _ in self.invalid]
        candidates = np.arange(self.next, self.next + count + len(skipped), dtype=np.int64)
        if skipped:
            candidates = candidates[~np.isin(candidates, np.asarray(skipped, dtype=np.int64))]
        numbers = candidates[:count]
        if count:
            self.next = int(numbers[-1]) + 1
        passed = [item for item in self.invalid if item[0] < self.next]
        self.invalid = self.invalid[len(passed) :]
        return pa.array(numbers), passed

    def rest(self) -> list[tuple[int, str]]:
        rest, self.invalid = self.invalid, []
        return rest


def _check_csv_lines(stream: pa.NativeFile, max_line_bytes: int) -> None:
    """Refuse a line longer than the limit before Arrow reads the file, then rewind.

    Arrow's streaming CSV reader reads up to 32 blocks of ``max_line_bytes`` ahead of its parser on an I/O
    thread, so an over-long line found by the parser can cost 32 times the limit. This pass holds one chunk at a
    time and stops one chunk past the limit; it runs at memchr speed, and the parser then reads the file from
    the page cache. A row made long by quoted line breaks is still left to the parser (the "straddling" error).
    """
    for _ in _bounded_lines(_chunks(stream, max_line_bytes), max_line_bytes, b"\r\n"):
        pass
    stream.seek(0)


def _csv_batches(stream: pa.NativeFile, dialect: CsvDialect, batch_rows: int, limits: ReadLimits) -> Iterator[RawBatch]:
    header_rows = 1 if dialect.header else 0
    numbers = _RowNumbers(first=1)

    def on_invalid(row: pa_csv.InvalidRow) -> Literal["skip"]:
        assert row.number is not None  # the parser counts rows when it runs on one thread
        numbers.invalid.append(
            (row.number - header_rows, f"expected {row.expected_columns} fields, found {row.actual_columns}")
        )
        return "skip"

    reader = pa_csv.open_csv(
        cast(IO[bytes], stream),  # any Arrow input stream works; the stubs list only Python ones
        read_options=pa_csv.ReadOptions(
            block_size=limits.max_line_bytes, use_threads=False, autogenerate_column_names=True
        ),
        parse_options=pa_csv.ParseOptions(
            delimiter=dialect.delimiter,
            quote_char=dialect.quote_char,
            double_quote=True,
            newlines_in_values=True,
            ignore_empty_lines=True,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pa_csv.ConvertOptions(
            column_types={f"f{index}": pa.binary() for index in range(limits.max_columns + 1)},
            strings_can_be_null=True,
            null_values=[""],
            quoted_strings_can_be_null=False,
        ),
    )
    if len(reader.schema) > limits.max_columns:
        raise TooManyColumnsError(len(reader.schema), limits.max_columns)
    labels: list[str] | None = None
    for block in reader:
        if labels is None:
            labels = _labels(block, dialect.header)
            block = block.slice(1) if dialect.header else block
        block = pa.RecordBatch.from_arrays(block.columns, names=labels)
        for start in range(0, max(block.num_rows, 1), batch_rows):
            part = block.slice(start, batch_rows)
            row_numbers, skipped = numbers.take(part.num_rows)
            text, kept, bad_utf8 = _decoded(part, row_numbers)
            yield _raw(text, kept, skipped, bad_utf8)
    if labels is None:
        raise EmptyFileError("The file is empty")
    rest = numbers.rest()
    if rest:
        yield _raw(
            pa.RecordBatch.from_pylist([], schema=pa.schema([(label, pa.string()) for label in labels])),
            pa.array([], pa.int64()),
            rest,
            [],
        )


def _labels(block: pa.RecordBatch, header: bool) -> list[str]:
    if not header:
        return [f"column_{index}" for index in range(1, block.num_columns + 1)]
    if block.num_rows == 0:
        return [f"column_{index}" for index in range(1, block.num_columns + 1)]
    cells = [column[0].as_py() for column in block.columns]
    return [(cell or b"").decode("utf-8", errors="replace").strip() for cell in cells]


def _decoded(part: pa.RecordBatch, row_numbers: Column) -> tuple[pa.RecordBatch, Column, list[pa.Table]]:
    """Binary columns as UTF-8 text; rows with undecodable bytes are dropped and reported, per cell.

    Text in another encoding is transcoded as a whole when detection sees it in the head; bytes that are not
    UTF-8 further down a UTF-8 file are isolated to their rows rather than failing the import.
    """
    columns: list[Column] = []
    bad_rows = np.zeros(part.num_rows, dtype=np.bool_)
    rejects: list[pa.Table] = []
    for name, column in zip(part.schema.names, part.columns, strict=True):
        if not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            columns.append(column)
            continue
        try:
            columns.append(column.cast(pa.string()))
            continue
        except pa.ArrowInvalid:
            pass
        raw_values = column.to_pylist()
        bad = np.array([value is not None and not _is_utf8(value) for value in raw_values], dtype=np.bool_)
        bad_rows |= bad
        rejects.append(rejects_table(row_numbers.filter(pa.array(bad)), name, INVALID_UTF8_REASON))
        columns.append(
            pa.array(
                [
                    None if flag or value is None else value.decode()
                    for value, flag in zip(raw_values, bad, strict=True)
                ],
                pa.string(),
            )
        )
    text = pa.RecordBatch.from_arrays(columns, names=part.schema.names)
    if not bad_rows.any():
        return text, row_numbers, []
    keep = pa.array(~bad_rows)
    return text.filter(keep), row_numbers.filter(keep), rejects


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _raw(
    data: pa.RecordBatch, row_numbers: Column, skipped: list[tuple[int, str]], cell_rejects: list[pa.Table]
) -> RawBatch:
    parts = list(cell_rejects)
    if skipped:
        parts.append(
            rejects_table(
                pa.array([number for number, _ in skipped], pa.int64()),
                None,
                pa.array([reason for _, reason in skipped], pa.string()),
            )
        )
    if not parts:
        return RawBatch(data, row_numbers, empty_rejects(), 0)
    rejects = pa.concat_tables(parts).sort_by("row_number")
    dropped = pc.count_distinct(rejects.column("row_number")).as_py()
    return RawBatch(data, row_numbers, rejects, int(dropped))


def _json_batches(stream: pa.NativeFile, is_array: bool, batch_rows: int, limits: ReadLimits) -> Iterator[RawBatch]:
    chunks: Iterable[bytes] = _chunks(stream, limits.max_line_bytes)
    if is_array:
        chunks = split_json_array(chunks)
    parser = _NdjsonParser(limits.max_columns)
    next_number = 1
    for block in _line_blocks(_bounded_lines(chunks, limits.max_line_bytes, b"\n")):
        data, row_numbers, skipped, records = parser.parse(block, next_number)
        next_number += records
        yield from _sliced(data, row_numbers, skipped, batch_rows)


def _sliced(
    data: pa.RecordBatch, row_numbers: Column, skipped: list[tuple[int, str]], batch_rows: int
) -> Iterator[RawBatch]:
    """Batches of at most ``batch_rows``, each carrying the skipped rows that fall within its range."""
    for start in range(0, max(data.num_rows, 1), batch_rows):
        part, numbers = data.slice(start, batch_rows), row_numbers.slice(start, batch_rows)
        last = start + batch_rows >= data.num_rows
        limit = numbers[-1].as_py() if len(numbers) and not last else None
        mine = [item for item in skipped if limit is None or item[0] <= limit]
        skipped = skipped[len(mine) :]
        yield _raw(part, numbers, mine, [])


def _chunks(stream: pa.NativeFile, max_line_bytes: int) -> Iterator[bytes]:
    """The stream in chunks no longer than a line may be (what ``_bounded_lines`` needs), without a UTF-8 BOM."""
    first = True
    while chunk := stream.read(min(READ_CHUNK, max_line_bytes)):
        if first:
            chunk, first = chunk.removeprefix(codecs.BOM_UTF8), False
        yield chunk


def _bounded_lines(chunks: Iterable[bytes], max_line_bytes: int, line_ends: bytes) -> Iterator[bytes]:
    """``chunks`` passed on until a line (ended by any byte of ``line_ends``) outgrows the limit: then an error.

    Chunks are no longer than the limit, so a line past it spans chunks, and only the first and last line end of
    each chunk matter (found at C speed). The error comes at most one chunk past the limit, however long the line.
    """
    open_line = 0  # bytes of the line still open at the end of the chunks so far
    for chunk in chunks:
        firsts = [at for end in line_ends if (at := chunk.find(end)) >= 0]
        if firsts:
            if open_line + min(firsts) > max_line_bytes:
                raise LineTooLongError(max_line_bytes)
            open_line = len(chunk) - 1 - max(chunk.rfind(end) for end in line_ends)
        else:
            open_line += len(chunk)
        if open_line > max_line_bytes:
            raise LineTooLongError(max_line_bytes)
        yield chunk


def _line_blocks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Runs of complete lines of about ``JSON_BLOCK`` bytes (``_bounded_lines`` keeps each line bounded)."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        if len(buffer) < JSON_BLOCK:
            continue
        cut = buffer.rfind(b"\n")
        if cut >= 0:
            yield bytes(buffer[: cut + 1])
            del buffer[: cut + 1]
    if buffer.strip():
        yield bytes(buffer)


class _NdjsonParser:
    """Arrow's JSON reader for clean blocks; a Python line-by-line pass, with per-row rejects, for the rest.

    Arrow turns ISO date strings into timestamps on its own; such columns are pinned as text (validation
    decides their type), and nested values go the slow way so JSON columns keep their exact text.
    """

    def __init__(self, max_columns: int) -> None:
        self.max_columns = max_columns
        self.text_columns: dict[str, pa.DataType] = {}

    def parse(self, block: bytes, first: int) -> tuple[pa.RecordBatch, Column, list[tuple[int, str]], int]:
        """(kept rows, their numbers, skipped rows with reasons, number of records in the block)."""
        fast = self._fast(block)
        if fast is not None:
            self._check_width(fast.num_columns)
            return fast, pa.array(np.arange(first, first + fast.num_rows, dtype=np.int64)), [], fast.num_rows
        return self._slow(block, first)

    def _fast(self, block: bytes) -> pa.RecordBatch | None:
        for _ in range(2):
            explicit = pa.schema(list(self.text_columns.items())) if self.text_columns else None
            try:
                table = pa_json.read_json(
                    cast(IO[bytes], pa.BufferReader(block)),
                    read_options=pa_json.ReadOptions(block_size=len(block) + 1),
                    parse_options=pa_json.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer"),
                )
            except pa.ArrowInvalid:
                return None
            stamps = [field.name for field in table.schema if pa.types.is_timestamp(field.type)]
            if not stamps:
                break
            self.text_columns.update((name, pa.string()) for name in stamps)
        else:
            return None
        if any(pa.types.is_nested(field.type) for field in table.schema):
            return None
        return table.combine_chunks().to_batches()[0] if table.num_rows else None

    def _slow(self, block: bytes, first: int) -> tuple[pa.RecordBatch, Column, list[tuple[int, str]], int]:
        rows: list[dict[str, Any]] = []
        numbers: list[int] = []
        skipped: list[tuple[int, str]] = []
        number = first
        for line in block.split(b"\n"):
            if not line.strip():
                continue
            value, problem = _json_line(line)
            if problem is None:
                rows.append(value)
                numbers.append(number)
            else:
                skipped.append((number, problem))
            number += 1
        keys = list(dict.fromkeys(key for row in rows for key in row))
        self._check_width(len(keys))
        columns = [_text_column(key, [row.get(key) for row in rows]) for key in keys]
        if not keys:  # no object had a key: rows with nothing in them
            columns = [(pa.field("column_1", pa.string()), nulls(len(rows), pa.string()))]
        data = pa.RecordBatch.from_arrays(
            [column for _, column in columns], schema=pa.schema([field for field, _ in columns])
        )
        return data, pa.array(numbers, pa.int64()), skipped, number - first

    def _check_width(self, columns: int) -> None:
        if columns > self.max_columns:
            raise TooManyColumnsError(columns, self.max_columns)


def _json_line(line: bytes) -> tuple[dict[str, Any], str | None]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        try:  # integers beyond 64 bits are valid JSON that orjson refuses
            value = json.loads(line)
        except ValueError:
            return {}, f"not valid JSON ({exc.msg})"
        except RecursionError:  # orjson stops at its depth limit; the standard parser recurses until Python stops it
            return {}, f"not valid JSON (nested deeper than {JSON_MAX_DEPTH:,} levels)"
    if not isinstance(value, dict):
        return {}, "not a JSON object"
    return value, None


def _text_column(key: str, values: list[Any]) -> tuple[pa.Field[Any], Column]:
    """Scalars as their text; a key holding objects or arrays anywhere keeps JSON text for every value, so a
    JSON string stays distinguishable (quoted) from the JSON it sits beside."""
    if any(isinstance(value, dict | list) for value in values):
        texts = [None if value is None else orjson.dumps(value, default=str).decode() for value in values]
        return pa.field(key, pa.string(), metadata={KIND_METADATA_KEY: b"json"}), pa.array(texts, pa.string())
    return pa.field(key, pa.string()), pa.array([_scalar_text(value) for value in values], pa.string())


def _scalar_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value, default=str).decode()


def _parquet_batches(path: str, batch_rows: int, limits: ReadLimits, budget: _Budget) -> Iterator[RawBatch]:
    """Batches of a Parquet file, each counted against the limits before it is expanded.

    Parquet compresses its pages and stores repeated values once (dictionaries, run lengths), so a small file
    can hold billions of rows or one long value repeated. The footer's row count and sizes are checked first;
    then text columns are read as dictionaries, so each batch's size once expanded is known, and checked,
    before it is expanded.
    """
    metadata = pq.read_metadata(path)
    natural = pq.read_schema(path)
    if len(natural) > limits.max_columns:
        raise TooManyColumnsError(len(natural), limits.max_columns)
    if limits.max_rows is not None and metadata.num_rows > limits.max_rows:
        raise TooManyRowsError(limits.max_rows)
    _Budget(limits, budget.compressed_bytes).add(_declared_bytes(metadata))
    texts = [field.name for field in natural if _is_binary_like(field.type)]
    with pq.ParquetFile(path, read_dictionary=texts) as parquet:
        number = 1
        for batch in parquet.iter_batches(batch_size=batch_rows):
            budget.add(_expanded_bytes(batch))
            batch = _binary_decoded(batch)
            row_numbers = pa.array(np.arange(number, number + batch.num_rows, dtype=np.int64))
            number += batch.num_rows
            text, kept, rejects = _decoded(batch, row_numbers)
            yield _raw(text, kept, [], rejects)


def _is_binary_like(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
    )


def _declared_bytes(metadata: pq.FileMetaData) -> int:
    """The least the footer says the data takes: its pages uncompressed, or its values at one byte each."""
    pages = values = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            pages += chunk.total_uncompressed_size
            values += chunk.num_values
    return max(pages, values)


def _expanded_bytes(batch: pa.RecordBatch) -> int:
    """What the batch takes once its dictionaries are expanded, computed without expanding them."""
    total = 0
    for column in batch.columns:
        if not pa.types.is_dictionary(column.type):
            total += column.nbytes
            continue
        dictionary, indices = cast(Any, column).dictionary, cast(Any, column).indices
        if _is_binary_like(dictionary.type):
            lengths = pc.take(pc.binary_length(dictionary), indices)
            total += int(pc.sum(lengths).as_py() or 0) + 4 * len(column)
        else:
            total += len(column) * (dictionary.nbytes // max(len(dictionary), 1))
    return total


def _binary_decoded(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Binary columns read as dictionaries back to plain binary, for the UTF-8 check (text stays a dictionary:
    validation expands it once)."""
    columns = [
        cast(Any, column).dictionary_decode()
        if pa.types.is_dictionary(column.type)
        and not pa.types.is_string(column.type.value_type)
        and not pa.types.is_large_string(column.type.value_type)
        else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
