"""``read_batches``: a file in, validated Arrow batches and rejects out, in bounded memory."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from itertools import chain
from queue import Full, Queue
from typing import Any, Literal, TypeVar

import pyarrow as pa

from northstar.datasets.formats.detect import DetectedFormat
from northstar.datasets.formats.errors import NoDataRowsError, NoValidRowsError, SchemaMismatchError
from northstar.datasets.formats.schema import ColumnTypeRequest, DatasetSchema, bind_columns, with_types
from northstar.datasets.formats.sources import RawBatch, ReadLimits, Source, raw_batches
from northstar.datasets.formats.validate import ValidatedBatch, infer_schema, validate_batch

DEFAULT_BATCH_ROWS = 65_536
READ_AHEAD = 2  # batches parsed ahead of the caller: memory stays a few batches, whatever the file size
_POLL_SECONDS = 0.1
T = TypeVar("T")


def read_batches(
    source: Source,
    fmt: DetectedFormat,
    *,
    schema: DatasetSchema | None = None,
    types: Mapping[str, ColumnTypeRequest] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    limits: ReadLimits | None = None,
) -> Iterator[ValidatedBatch]:
    """Validated batches of at most ``batch_rows`` rows; without a schema, one is inferred from the first rows.

    ``types`` gives some columns' types (by header or column name) instead of inferring them; only without a
    ``schema``.

    Every batch carries its rejects. After the last batch, a file without data rows raises
    ``NoDataRowsError`` and a file whose rows were all rejected raises ``NoValidRowsError``.
    Parsing and validation run on a helper thread a few batches ahead of the caller (Arrow releases the GIL),
    so the caller's own work on a batch, such as sending it to ``COPY``, overlaps with reading the next.
    """
    return _read_ahead(_validated(source, fmt, schema, types, batch_rows, limits or ReadLimits()), READ_AHEAD)


def _validated(
    source: Source,
    fmt: DetectedFormat,
    schema: DatasetSchema | None,
    types: Mapping[str, ColumnTypeRequest] | None,
    batch_rows: int,
    limits: ReadLimits,
) -> Iterator[ValidatedBatch]:
    raw = raw_batches(source, fmt, batch_rows=batch_rows, limits=limits)
    positional = fmt.kind == "csv" and fmt.dialect is not None and not fmt.dialect.header
    sample: list[RawBatch] = []
    if schema is None:
        sampled = 0
        for batch in raw:
            sample.append(batch)
            sampled += batch.data.num_rows
            if sampled >= limits.sample_rows:
                break
        schema = infer_schema([batch.data for batch in sample], max_rows=limits.sample_rows)
        if types:
            schema = with_types(schema, types)
    valid = rejected = 0
    checked = False
    for batch in chain(sample, raw):
        if not checked and fmt.kind in ("csv", "parquet"):  # JSON objects may omit keys row by row
            _check_columns(batch.data.schema.names, schema, positional)
            checked = True
        result = validate_batch(batch.data, batch.row_numbers, schema, positional=positional)
        valid += result.rows.num_rows
        rejected += batch.dropped + batch.data.num_rows - result.rows.num_rows
        if batch.rejects.num_rows:
            merged = pa.concat_tables([batch.rejects, result.rejects]).sort_by("row_number")
            result = ValidatedBatch(result.rows, result.row_numbers, merged, schema)
        yield result
    if not valid:
        if rejected:
            raise NoValidRowsError(rejected)
        has_header = fmt.kind == "csv" and not positional
        raise NoDataRowsError("The file has a header but no data rows" if has_header else "The file has no data rows")


def read_sample(
    source: Source, fmt: DetectedFormat, *, rows: int = 10_000, limits: ReadLimits | None = None
) -> pa.Table:
    """The first ``rows`` parsed rows, untyped: for a preview, or for ``infer_schema``."""
    limits = limits or ReadLimits()
    batches: list[pa.RecordBatch] = []
    taken = 0
    for batch in raw_batches(source, fmt, batch_rows=min(rows, DEFAULT_BATCH_ROWS), limits=limits):
        batches.append(batch.data.slice(0, rows - taken))
        taken += batches[-1].num_rows
        if taken >= rows:
            break
    if not batches:
        return pa.table({})
    return pa.Table.from_batches(batches) if fmt.kind in ("csv", "parquet") else _union_table(batches)


def _union_table(batches: list[pa.RecordBatch]) -> pa.Table:
    """JSON batches may name different keys: align them (missing keys are nulls)."""
    tables = [pa.Table.from_batches([batch]) for batch in batches if batch.num_columns]
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def _check_columns(labels: list[str], schema: DatasetSchema, positional: bool) -> None:
    """A required column that the file lacks altogether is one clear error, not a reject per row."""
    bound = bind_columns(labels, schema, positional=positional)
    missing = [
        column.display_name
        for column, index in zip(schema.columns, bound, strict=True)
        if index is None and not column.nullable
    ]
    if missing:
        raise SchemaMismatchError(
            f"The file has no column for the required {', '.join(map(repr, missing))}",
            details={"missingColumns": missing},
        )


def _read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` on a helper thread, at most ``depth`` items ahead; errors surface in the caller.

    When the caller stops early (``close``, or garbage collection of the generator), the helper stops too and
    closes ``items``, so files are not left open.
    """
    queue: Queue[tuple[Literal["item", "error", "end"], Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def offer(message: tuple[Literal["item", "error", "end"], Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(message, timeout=_POLL_SECONDS)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
            offer(("end", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    helper = threading.Thread(target=produce, name="formats-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        helper.join()
