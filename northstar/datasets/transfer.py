"""The heavy lifting of data jobs, run in a worker thread on its own synchronous psycopg connection.

Rows move as Arrow batches and cross into PostgreSQL with ``COPY`` both ways; nothing is ever held
whole in memory. Every batch is committed together with the job's checkpoint (rows done), so a job
picked up again after a crash resumes after the last committed batch and no row is written twice.

``COPY FROM`` is not allowed on a table under row-level security, so batches are copied into a
temporary staging table and moved with one ``INSERT … SELECT``, which the tenant policy checks.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import queue
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, cast

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import pq, sql

from northstar.core.db import APP_ROLE, tenant_binding
from northstar.datasets.formats import ColumnDef, ColumnKind, to_copy_csv
from northstar.datasets.formats.errors import LimitExceededError
from northstar.datasets.formats.schema import KIND_METADATA_KEY

T = TypeVar("T")
# The current org, read once per statement: as an uncorrelated subquery PostgreSQL runs it as an InitPlan, where
# the bare expression costs a settings lookup and a uuid parse for every row a policy checks or a default fills.
ORG_SETTING = sql.SQL("nullif(current_setting('northstar.org_id', true), '')::uuid")
CURRENT_ORG = sql.SQL("(SELECT {})").format(ORG_SETTING)
Buffer = bytes | bytearray | memoryview
PROGRESS_INTERVAL_SECONDS = 1.0
COPY_READ_BLOCK = 1 << 22
COPY_ROWS_PER_BLOCK = 10_000


class JobCancelled(Exception):
    """The job's ``cancel_requested`` flag was seen at a checkpoint."""


def column_of(field: pa.Field[Any]) -> ColumnDef:
    """The dataset column an Arrow field becomes (generation output; imports already carry ``ColumnDef``)."""
    tagged = (field.metadata or {}).get(KIND_METADATA_KEY)
    kind = field.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if tagged:
        return ColumnDef(field.name, cast(ColumnKind, tagged.decode()))
    if pa.types.is_decimal(kind):
        return ColumnDef(field.name, "decimal", precision=kind.precision, scale=kind.scale)
    checks: tuple[tuple[Callable[[pa.DataType], bool], ColumnKind], ...] = (
        (pa.types.is_integer, "int"),
        (pa.types.is_floating, "float"),
        (pa.types.is_boolean, "bool"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "datetime"),
    )
    for check, name in checks:
        if check(kind):
            return ColumnDef(field.name, name)
    if isinstance(kind, pa.UuidType):
        return ColumnDef(field.name, "uuid")
    return ColumnDef(field.name, "string")


def stored_columns(columns: list[ColumnDef]) -> list[dict[str, Any]]:
    return [{key: value for key, value in asdict(column).items() if value is not None} for column in columns]


def columns_of(stored: list[dict[str, Any]]) -> list[ColumnDef]:
    return [ColumnDef(**column) for column in stored]


def dataset_table(dataset_id: uuid.UUID) -> sql.Identifier:
    return sql.Identifier("datasets", f"d_{dataset_id.hex}")


_HEX = np.frombuffer(b"0123456789abcdef", dtype="S1")
_DASHES = (8, 12, 16, 20)


def _uuid_strings(array: pa.Array[Any]) -> pa.Array[Any]:
    """UUIDs (16-byte values) as canonical text, vectorised: PostgreSQL's COPY reads the text form."""
    storage = array.storage if isinstance(array, pa.ExtensionArray) else array
    values = storage.buffers()[1]
    assert values is not None
    raw = np.frombuffer(memoryview(values), dtype=np.uint8)[storage.offset * 16 : (storage.offset + len(storage)) * 16]
    nibbles = np.empty((len(storage), 32), dtype="S1")
    octets = raw.reshape(-1, 16)
    nibbles[:, 0::2], nibbles[:, 1::2] = _HEX[octets >> 4], _HEX[octets & 15]
    text = np.insert(nibbles, _DASHES, b"-", axis=1).view("S36").ravel()
    return pa.array(text.astype(str), pa.string(), mask=storage.is_null().to_numpy(zero_copy_only=False))


def copyable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns in forms Arrow's CSV writer prints: dictionaries decoded, UUIDs as text."""
    columns = []
    for array in batch.columns:
        if pa.types.is_dictionary(array.type):
            array = cast("pa.DictionaryArray[Any, Any]", array).dictionary_decode()
        elif isinstance(array.type, pa.UuidType) or pa.types.is_fixed_size_binary(array.type):
            array = _uuid_strings(array)
        columns.append(array)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


@dataclass
class JobConnection:
    """A synchronous connection bound to one tenant and one job, for use inside a worker thread."""

    connection: psycopg.Connection[Any]
    org_id: uuid.UUID
    job_id: uuid.UUID
    last_progress: float = 0.0

    @classmethod
    @contextmanager
    def open(cls, conninfo: str, *, org_id: uuid.UUID, job_id: uuid.UUID) -> Iterator[JobConnection]:
        with psycopg.connect(conninfo) as connection:
            yield cls(connection, org_id, job_id)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor[Any]]:
        """A transaction as the app role with this job's tenant bound (same rules as every request)."""
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.execute(tenant_binding(org_id=self.org_id, settings={"TimeZone": "UTC", "DateStyle": "ISO"}))
            yield cursor

    def checkpoint(self, cursor: psycopg.Cursor[Any], *, rows_done: int, rows_total: int | None) -> None:
        """Record progress in the caller's transaction (a trigger publishes it); raise ``JobCancelled`` on a cancel."""
        progress = min(1.0, rows_done / rows_total) if rows_total else 0.0
        cursor.execute(
            "UPDATE jobs.jobs SET rows_done = %s, rows_total = %s, progress = %s, updated_at = now()"
            " WHERE id = %s RETURNING cancel_requested",
            (rows_done, rows_total, progress, self.job_id),
        )
        row = cursor.fetchone()
        if row is None or row[0]:
            raise JobCancelled
        self.last_progress = time.monotonic()

    def progress_due(self) -> bool:
        return time.monotonic() - self.last_progress >= PROGRESS_INTERVAL_SECONDS


def create_dataset_table(conninfo: str, *, dataset_id: uuid.UUID, columns: list[ColumnDef]) -> None:
    """Create the dataset's table as its owner, under forced RLS; a no-op when it exists (resumed job).

    Identifiers are validated column names passed through ``sql.Identifier``; types come from a fixed map.
    The primary key on ``_row`` is added by ``finish_dataset_table`` once loaded: one index build is several
    times cheaper than maintaining it row by row during the load. The table has no foreign key (a check per
    loaded row); the trigger on ``jobs.datasets`` drops it with its dataset, and so with its org.
    """
    table = dataset_table(dataset_id)
    definitions = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.sql_type)) for column in columns
    )
    statements = [
        sql.SQL(
            "CREATE TABLE {table} (org_id uuid NOT NULL DEFAULT {org_setting}, _row bigint NOT NULL, {definitions})"
        ),
        sql.SQL("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"),
        sql.SQL("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"),
        sql.SQL("CREATE POLICY tenant_isolation ON {table} USING (org_id = {current_org})"),
        sql.SQL("GRANT SELECT, INSERT, DELETE ON {table} TO {role}"),
    ]
    with psycopg.connect(conninfo) as connection, connection.transaction():
        exists = connection.execute("SELECT to_regclass(%s)", (f"datasets.d_{dataset_id.hex}",)).fetchone()
        if exists and exists[0]:
            return
        for statement in statements:
            connection.execute(
                statement.format(
                    table=table,
                    org_setting=ORG_SETTING,
                    current_org=CURRENT_ORG,
                    definitions=definitions,
                    role=sql.Identifier(APP_ROLE),
                )
            )


def finish_dataset_table(conninfo: str, *, dataset_id: uuid.UUID) -> None:
    """Index the loaded rows by ``_row`` (for paging); a no-op when a resumed job already did."""
    with psycopg.connect(conninfo) as connection, connection.transaction():
        exists = connection.execute(
            "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
            (f"datasets.d_{dataset_id.hex}",),
        ).fetchone()
        if not exists:
            connection.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (_row)").format(dataset_table(dataset_id)))


@dataclass(frozen=True)
class CopyBatch:
    """Rows encoded as COPY input with their ``_row`` numbers: encoding can run ahead of the database."""

    names: list[str]
    data: bytes


def encode_batch(batch: pa.RecordBatch, row_numbers: pa.Array[Any]) -> CopyBatch:
    rows = copyable(batch).add_column(0, "_row", row_numbers.cast(pa.int64()))
    return CopyBatch(names=rows.schema.names, data=to_copy_csv(rows))


def load_batch(cursor: psycopg.Cursor[Any], *, dataset_id: uuid.UUID, rows: CopyBatch) -> None:
    """COPY one encoded batch into the dataset through a staging table.

    The staging table holds the batch's columns only: ``org_id`` is set once per ``INSERT`` (``CURRENT_ORG``)
    rather than filled by its default row by row, twice.
    """
    table = dataset_table(dataset_id)
    stage = sql.Identifier(f"stage_{dataset_id.hex}")
    names = sql.SQL(", ").join(sql.Identifier(name) for name in rows.names)
    cursor.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA").format(
            stage, names, table
        )
    )
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, names)) as copy:
        copy.write(rows.data)
    cursor.execute(
        sql.SQL("INSERT INTO {} (org_id, {}) SELECT {}, {} FROM {}").format(table, names, CURRENT_ORG, names, stage)
    )


class _Abandoned(Exception):
    """A batch given up because one before it failed: its transaction rolls back, the first error stands."""


class OrderedLoad:
    """Load batches on several connections at once; commit them in the order they were submitted.

    Each batch commits in one transaction with its rows, the storage quota check and the job's checkpoint (rows
    done), as on one connection. A batch may be copied while the one before it is still loading, but it issues
    its checkpoint only once that one has committed, and gives up if any batch before it failed: the committed
    batches are always a prefix of the input and the checkpoint names its end. A worker killed at any point
    leaves that prefix, and the job resumes after it with no row lost or loaded twice. A cancel is seen by the
    next batch's checkpoint.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        org_id: uuid.UUID,
        job_id: uuid.UUID,
        dataset_id: uuid.UUID,
        quota: int,
        rows_total: int | None,
        connections: int,
    ) -> None:
        self.conninfo, self.org_id, self.job_id = conninfo, org_id, job_id
        self.dataset_id, self.quota, self.rows_total = dataset_id, quota, rows_total
        self.width = max(1, connections)
        self.submitted = self.committed = 0
        self.error: BaseException | None = None
        self.failed_at: int | None = None  # the first batch that failed (-1: a connection, before any batch)
        self.turn = threading.Condition()
        self.inboxes: list[queue.Queue[tuple[int, CopyBatch, int] | None]] = []
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> OrderedLoad:
        for _ in range(self.width):
            inbox: queue.Queue[tuple[int, CopyBatch, int] | None] = queue.Queue(1)
            thread = threading.Thread(target=self._load, args=(inbox,), daemon=True)
            self.inboxes.append(inbox)
            self.threads.append(thread)
            thread.start()
        return self

    def submit(self, rows: CopyBatch, *, rows_done: int) -> None:
        """Queue one batch, which ends the input at source row ``rows_done``; raises a loader's first error."""
        self._raise_error()
        self.inboxes[self.submitted % self.width].put((self.submitted, rows, rows_done))
        self.submitted += 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        """Wait for the batches submitted to commit (or fail), as one connection would have before an error."""
        for inbox in self.inboxes:
            inbox.put(None)
        for thread in self.threads:
            thread.join()
        if kind is None:
            self._raise_error()

    def _raise_error(self) -> None:
        with self.turn:
            if self.error is not None:
                raise self.error

    def _doomed(self, sequence: int) -> bool:
        """Whether a batch before this one failed, so this one must not commit (call holding ``turn``)."""
        return self.failed_at is not None and self.failed_at < sequence

    def _fail(self, error: BaseException, sequence: int) -> None:
        with self.turn:
            if self.failed_at is None or sequence < self.failed_at:
                self.failed_at = sequence
                if not isinstance(error, _Abandoned):
                    self.error = error
            self.turn.notify_all()

    def _load(self, inbox: queue.Queue[tuple[int, CopyBatch, int] | None]) -> None:
        """One connection's loop, taking every batch it is given so that ``submit`` never blocks for good."""
        try:
            with JobConnection.open(self.conninfo, org_id=self.org_id, job_id=self.job_id) as job:
                while (item := inbox.get()) is not None:
                    with self.turn:
                        doomed = self._doomed(item[0])
                    if not doomed:
                        try:
                            self._load_one(job, *item)
                        except BaseException as exc:  # handed to the submitting thread
                            self._fail(exc, item[0])
        except BaseException as exc:  # the connection itself: no batch of this loop may commit
            self._fail(exc, -1)
            while inbox.get() is not None:
                pass

    def _load_one(self, job: JobConnection, sequence: int, rows: CopyBatch, rows_done: int) -> None:
        with job.transaction() as cursor:
            check_storage_quota(cursor, adding=len(rows.data), limit=self.quota)
            load_batch(cursor, dataset_id=self.dataset_id, rows=rows)
            with self.turn:
                self.turn.wait_for(lambda: self.committed == sequence or self._doomed(sequence))
                if self._doomed(sequence):
                    raise _Abandoned
            job.checkpoint(cursor, rows_done=rows_done, rows_total=self.rows_total)
        with self.turn:
            self.committed = sequence + 1
            self.turn.notify_all()


# What an org stores: its datasets' tables as they are on disk (indexes and TOAST included) and its files.
# No org id is needed: row-level security shows the current org's rows only, in the API and in the worker alike.
ORG_STORED_BYTES = """
SELECT coalesce((SELECT sum(pg_total_relation_size(to_regclass('datasets.d_' || replace(id::text, '-', ''))))
                 FROM jobs.datasets), 0)
     + coalesce((SELECT sum(size_bytes) FROM jobs.files), 0)
"""


class StorageQuotaError(LimitExceededError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "storage_quota_exceeded",
            f"The organization's datasets and files would take more than {limit:,} bytes, the most "
            "it may store; delete datasets or files to make room",
            limit="maxOrgStorageBytes",
            value=limit,
        )


def check_storage_quota(cursor: psycopg.Cursor[Any], *, adding: int, limit: int) -> None:
    """Raise ``StorageQuotaError`` when ``adding`` more bytes would take the current org past ``limit``."""
    cursor.execute(ORG_STORED_BYTES)
    row = cursor.fetchone()
    if int(row[0] if row else 0) + adding > limit:
        raise StorageQuotaError(limit)


def dataset_rows_done(job: JobConnection, cursor: psycopg.Cursor[Any]) -> int:
    cursor.execute("SELECT rows_done FROM jobs.jobs WHERE id = %s", (job.job_id,))
    row = cursor.fetchone()
    return int(row[0]) if row else 0


class CopyReader(io.RawIOBase):
    """A readable file over ``COPY … TO STDOUT`` rows, so pyarrow's CSV reader can stream from it.

    libpq hands COPY data over one row at a time; rows are gathered into buffer-sized reads.
    """

    def __init__(self, rows: Iterator[Buffer]) -> None:
        self.rows = rows
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        parts: list[Buffer] = [self.pending]
        gathered = len(self.pending)
        for row in self.rows:
            parts.append(row)
            gathered += len(row)
            if gathered >= wanted:
                break
        data = b"".join(parts)
        size = min(wanted, len(data))
        buffer[:size] = data[:size]
        self.pending = data[size:]
        return size


def copied_rows(cursor: psycopg.Cursor[Any]) -> Iterator[tuple[bytes, int]]:
    """COPY output in blocks of up to ``COPY_ROWS_PER_BLOCK`` rows, each with its row count, read straight from libpq.

    ``Copy.read()`` goes through psycopg's wait machinery once per row, which costs more than the row itself.
    This loop takes every row libpq has buffered, waits on the socket only when it has none, and collects
    the final result itself at the end, leaving the connection as ``Copy`` would.
    """
    pgconn = cursor.connection.pgconn
    rows: list[Buffer] = []
    while True:
        size, row = pgconn.get_copy_data(1)
        if size > 0:
            rows.append(row)
            if len(rows) >= COPY_ROWS_PER_BLOCK:
                yield b"".join(rows), len(rows)
                rows = []
        elif size == 0:
            if rows:
                yield b"".join(rows), len(rows)
                rows = []
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        else:
            if rows:
                yield b"".join(rows), len(rows)
            while (result := pgconn.get_result()) is not None:
                if result.status != pq.ExecStatus.COMMAND_OK:
                    raise psycopg.DatabaseError((result.error_message or b"COPY failed").decode(errors="replace"))
            return


def ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce ``items`` in a thread, up to ``depth`` ahead: parsing overlaps the database's work on 2+ cores."""
    buffer: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((True, item))
            buffer.put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            buffer.put((False, exc))

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        while True:
            more, item = buffer.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while producer.is_alive():  # unblock a producer waiting on a full buffer
            with contextlib.suppress(queue.Empty):
                buffer.get(timeout=0.05)


def select_as_text(column: ColumnDef) -> sql.Composable:
    """How a column is rendered for the CSV stream so Arrow parses it back exactly."""
    name = sql.Identifier(column.name)
    if column.type == "datetime":
        return sql.SQL("to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").format(name)
    return name


def stream_query(
    cursor: psycopg.Cursor[Any], query: sql.Composable, columns: list[ColumnDef]
) -> Iterator[pa.RecordBatch]:
    """Arrow batches of ``query`` (which selects ``columns`` in order), streamed through COPY; none when no row
    matches (Arrow's CSV reader refuses an empty input, so it is not opened on one)."""
    schema = pa.schema([column.arrow_field() for column in columns])
    copy_sql = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)
    with cursor.copy(copy_sql):
        blocks = (block for block, _ in copied_rows(cursor))
        first = next(blocks, None)
        if first is None:
            return
        reader = pacsv.open_csv(
            io.BufferedReader(CopyReader(itertools.chain([first], blocks)), buffer_size=COPY_READ_BLOCK),
            read_options=pacsv.ReadOptions(column_names=schema.names, block_size=COPY_READ_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=schema,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
        for batch in reader:
            yield pa.RecordBatch.from_arrays(batch.columns, schema=schema)
