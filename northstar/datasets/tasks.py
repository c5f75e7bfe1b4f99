"""Queue tasks of the data service: generation, import, export, and the retention sweep.

Each task owns the job row's life cycle (in-progress → completed / failed / cancelled, or back to
pending while a transient failure waits for its retry); the data work runs in a thread on its own
connection (``pipeline``), committing each batch together with its checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import secrets
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from psycopg.types.json import Jsonb
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.db import execute_count, to_libpq_url
from northstar.core.queue import Backoff, periodic_per_org, queue_app, task_database, task_settings, task_storage
from northstar.core.search.indexing import index_rows
from northstar.core.storage import ObjectStore
from northstar.datasets import transfer
from northstar.datasets.exports import export_query, exportable
from northstar.datasets.failures import TRANSIENT, PermanentJobError, job_failure
from northstar.datasets.formats import (
    REJECTS_SCHEMA,
    BatchWriter,
    ColumnDef,
    CsvBatchWriter,
    DatasetSchema,
    DatasetSchemaRequest,
    DetectedFormat,
    ExportFormat,
    FormatError,
    NoDataRowsError,
    NoValidRowsError,
    ValidatedBatch,
    detect_format,
    file_extension,
    mime_type,
    open_writer,
    read_batches,
    safe_file_name,
)
from northstar.datasets.formats.errors import LimitExceededError
from northstar.datasets.formats.schema import TYPE_MAPPING, column_renames
from northstar.datasets.formats.sources import ReadLimits
from northstar.datasets.generation import GenerationSpec, arrow_schema, generate_range, referenced_datasets
from northstar.datasets.models import Dataset, Job, StoredFile
from northstar.datasets.schemas import GenerateRequest
from northstar.settings import get_settings

log = structlog.get_logger("northstar.datasets")
SNIFF_BYTES = 64 * 1024


def retry_strategy(job_type: str) -> Backoff:
    """Read from the process's settings when the task is declared: Procrastinate fixes a retry strategy then."""
    limits = get_settings().datasets
    return Backoff(
        max_attempts=limits.retry_attempts.get(job_type, 3),
        base_seconds=limits.retry_base_delay_seconds,
        max_seconds=limits.retry_max_delay_seconds,
        transient=TRANSIENT,
    )


@dataclass
class JobRun:
    """What a job function needs: ids, params, its connection string, storage and a scratch directory."""

    org_id: uuid.UUID
    job_id: uuid.UUID
    params: dict[str, Any]
    result: dict[str, Any]
    conninfo: str
    storage: ObjectStore
    scratch: Path
    outcome: dict[str, Any] = field(default_factory=dict)

    def connection(self) -> Any:
        return transfer.JobConnection.open(self.conninfo, org_id=self.org_id, job_id=self.job_id)

    def ordered_load(self, dataset_id: uuid.UUID, *, rows_total: int | None) -> transfer.OrderedLoad:
        """Batches into ``dataset_id`` on the configured number of connections, committed in order."""
        settings = task_settings().datasets
        return transfer.OrderedLoad(
            self.conninfo,
            org_id=self.org_id,
            job_id=self.job_id,
            dataset_id=dataset_id,
            quota=settings.max_org_storage_bytes,
            rows_total=rows_total,
            connections=settings.load_connections,
        )


async def _transition(org_id: uuid.UUID, job_id: uuid.UUID, **values: Any) -> None:
    async with task_database().tenant_transaction(org_id=org_id) as session:
        await session.execute(update(Job).where(Job.id == job_id).values(updated_at=func.now(), **values))
        if values.get("status") == "failed":
            await session.execute(
                update(Dataset).where(Dataset.job_id == job_id, Dataset.status == "building").values(status="failed")
            )


async def _begin(org_id: uuid.UUID, job_id: uuid.UUID) -> JobRun | None:
    """Claim the job row; ``None`` when there is nothing to do (finished, cancelled, gone)."""
    async with task_database().tenant_transaction(org_id=org_id) as session:
        job = await session.get(Job, job_id, with_for_update=True)
        if job is None or job.status in ("completed", "cancelled", "failed"):
            return None
        if job.cancel_requested:
            job.status, job.finished_at = "cancelled", func.now()
            return None
        job.status, job.attempts, job.error_code, job.error_message = "in-progress", job.attempts + 1, None, None
        job.started_at = job.started_at or datetime.now(UTC)
        await session.flush()
        return JobRun(
            org_id=org_id,
            job_id=job_id,
            params=dict(job.params),
            result=dict(job.result),
            conninfo=to_libpq_url(task_database().url),
            storage=task_storage(),
            scratch=Path(),
        )


def job_task(job_type: str) -> Callable[[Callable[[JobRun], Awaitable[dict[str, Any]]]], Any]:
    """Register ``fn(run) -> result`` as the task for ``job_type`` with the job row's life cycle around it.

    Each attempt logs under its own trace id; a failure reaches the job row only as ``job_failure`` words it. The
    task's ``context`` is ``None`` for a job that was not queued and runs in the caller's process
    (``service.run_unqueued``).
    """
    strategy = retry_strategy(job_type)

    def decorator(fn: Callable[[JobRun], Awaitable[dict[str, Any]]]) -> Any:
        @queue_app.task(name=f"datasets.{job_type}", queue="datasets", retry=strategy, pass_context=True)
        @functools.wraps(fn)
        async def run(context: procrastinate.JobContext | None, org_id: str, job_id: str) -> None:
            tenant, job = uuid.UUID(org_id), uuid.UUID(job_id)
            claimed = await _begin(tenant, job)
            if claimed is None:
                return
            trace_id = secrets.token_hex(16)
            with structlog.contextvars.bound_contextvars(traceId=trace_id, jobId=job_id, jobType=job_type):
                try:
                    with tempfile.TemporaryDirectory(prefix="northstar-job-") as scratch:
                        claimed.scratch = Path(scratch)
                        result = await fn(claimed)
                except transfer.JobCancelled:
                    await _transition(tenant, job, status="cancelled", finished_at=func.now())
                except Exception as exc:
                    attempts = context.job.attempts if context is not None and context.job else 0
                    failure = job_failure(exc, trace_id=trace_id)
                    retrying = strategy.will_retry(exc, attempts)
                    if failure.internal:
                        log.error("job_failed", errorCode=failure.code, retrying=retrying, exc_info=exc)
                    else:
                        log.info("job_failed", errorCode=failure.code, errorMessage=failure.message)
                    if retrying:
                        await _transition(
                            tenant,
                            job,
                            status="pending",
                            error_code=failure.code,
                            error_message=f"Attempt {attempts + 1} failed and will be retried: {failure.message}",
                        )
                        raise
                    await _transition(
                        tenant,
                        job,
                        status="failed",
                        error_code=failure.code,
                        error_message=failure.message,
                        finished_at=func.now(),
                    )
                else:
                    await _transition(
                        tenant, job, status="completed", progress=1.0, result=result, finished_at=func.now()
                    )

        return run

    return decorator


async def _store_file(run: JobRun, session: AsyncSession, *, path: Path, kind: str, name: str, mime: str) -> uuid.UUID:
    """Upload a finished scratch file and record it (exports expire per the retention setting)."""
    file_id = uuid.uuid4()
    key = f"org/{run.org_id}/{kind}/{file_id}/{name}"
    digest = hashlib.sha256()

    async def chunks() -> Any:
        with path.open("rb") as source:
            while chunk := await asyncio.to_thread(source.read, 1 << 20):
                digest.update(chunk)
                yield chunk

    size = await run.storage.put_stream(key, chunks(), content_type=mime)
    expires = datetime.now(UTC) + timedelta(seconds=task_settings().datasets.export_ttl_seconds)
    session.add(
        StoredFile(
            id=file_id,
            org_id=run.org_id,
            job_id=run.job_id,
            kind=kind,
            original_name=name,
            stored_path=key,
            mime_type=mime,
            size_bytes=size,
            checksum=digest.hexdigest(),
            status="completed",
            expires_at=expires,
        )
    )
    await session.flush()
    return file_id


def _output_name(run: JobRun, base: str, file_format: ExportFormat, gzip: bool) -> str:
    """The file's name: the one asked for (an export's is checked on request; a dataset's name may be anything)."""
    return safe_file_name(run.params.get("name") or base, fallback=base) + file_extension(file_format, gzip=gzip)


async def _reference_values(run: JobRun, spec: GenerationSpec) -> dict[str, pa.Array[Any]]:
    """Candidate values for foreign-key columns, read from the referenced datasets under RLS."""
    wanted = referenced_datasets(spec)
    if not wanted:
        return {}

    def load() -> dict[str, pa.Array[Any]]:
        values: dict[str, pa.Array[Any]] = {}
        with run.connection() as job, job.transaction() as cursor:
            for reference in wanted:
                cursor.execute("SELECT columns FROM jobs.datasets WHERE id = %s", (reference.dataset,))
                row = cursor.fetchone()
                definition = next(
                    (
                        column
                        for column in transfer.columns_of(row[0] if row else [])
                        if column.name == reference.referenced_column
                    ),
                    None,
                )
                if definition is None:
                    raise PermanentJobError(
                        f"The referenced dataset {reference.dataset} or its column "
                        f"{reference.referenced_column!r} no longer exists",
                        code="source_missing",
                    )
                query = psycopg.sql.SQL("SELECT {} FROM {} ORDER BY _row").format(
                    transfer.select_as_text(definition), transfer.dataset_table(reference.dataset)
                )
                batches = list(transfer.stream_query(cursor, query, [definition]))
                values[reference.column] = pa.concat_arrays([batch.column(0) for batch in batches])
        return values

    return await asyncio.to_thread(load)


@job_task("generation")
async def run_generation(run: JobRun) -> dict[str, Any]:
    spec = GenerateRequest.model_validate(run.params)
    references = await _reference_values(run, spec)
    schema = arrow_schema(spec, references=references)
    columns = [transfer.column_of(item) for item in schema]
    dataset_id = uuid.UUID(run.result["datasetId"]) if "datasetId" in run.result else None
    if dataset_id is not None:
        async with task_database().tenant_transaction(org_id=run.org_id) as session:
            await session.execute(
                update(Dataset).where(Dataset.id == dataset_id).values(columns=transfer.stored_columns(columns))
            )
            await index_rows(session, Dataset, Dataset.id == dataset_id)  # found by its columns from now on
        await asyncio.to_thread(transfer.create_dataset_table, run.conninfo, dataset_id=dataset_id, columns=columns)
    file_output = spec.output.file
    scratch_file = run.scratch / "output"
    batch_rows = task_settings().datasets.batch_rows

    def batches(done: int, start: int) -> Iterator[tuple[int, pa.RecordBatch, transfer.CopyBatch | None]]:
        """Each batch with its end row, encoded for the dataset when it holds rows not loaded yet."""
        position = start
        for batch in generate_range(spec, start, spec.rows, references=references, batch_rows=batch_rows):
            end = position + batch.num_rows
            encoded = None
            if dataset_id is not None and end > done:
                first = max(done, position)
                encoded = transfer.encode_batch(batch.slice(first - position), pa.array(range(first + 1, end + 1)))
            yield end, batch, encoded
            position = end

    def work() -> None:
        with run.connection() as job:
            with job.transaction() as cursor:
                done = transfer.dataset_rows_done(job, cursor) if dataset_id else 0
            loading = run.ordered_load(dataset_id, rows_total=spec.rows) if dataset_id else contextlib.nullcontext()
            with scratch_file.open("wb") as sink, loading as loader:
                writer = open_writer(file_output.format, sink, schema, gzip=file_output.gzip) if file_output else None
                for end, batch, encoded in transfer.ahead(batches(done, 0 if file_output else done)):
                    if encoded is not None and loader is not None:
                        loader.submit(encoded, rows_done=end)
                    elif job.progress_due():  # rows loaded before a resume stay counted as done
                        with job.transaction() as cursor:
                            job.checkpoint(cursor, rows_done=max(end, done), rows_total=spec.rows)
                    if writer is not None:
                        writer.write(batch)
                if writer is not None:
                    writer.close()
            with job.transaction() as cursor:  # file-only output checkpoints at intervals: record the last row too
                job.checkpoint(cursor, rows_done=spec.rows, rows_total=spec.rows)

    try:
        await asyncio.to_thread(work)
    except transfer.StorageQuotaError as exc:
        await _discard_outputs(run, error=exc, dataset_id=dataset_id)
        raise
    if dataset_id is not None:
        await asyncio.to_thread(transfer.finish_dataset_table, run.conninfo, dataset_id=dataset_id)
    outcome: dict[str, Any] = {"seed": spec.seed, "rows": spec.rows}
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        if dataset_id is not None:
            await session.execute(
                update(Dataset).where(Dataset.id == dataset_id).values(status="ready", row_count=spec.rows)
            )
            outcome["datasetId"] = str(dataset_id)
        if file_output is not None:
            name = _output_name(run, "generated", file_output.format, file_output.gzip)
            outcome["fileId"] = str(
                await _store_file(
                    run,
                    session,
                    path=scratch_file,
                    kind="export",
                    name=name,
                    mime=mime_type(file_output.format, gzip=file_output.gzip),
                )
            )
    return outcome


def _with_overrides(detected: DetectedFormat, options: dict[str, Any]) -> DetectedFormat:
    """The caller's CSV delimiter / header choice wins over sniffing."""
    if detected.dialect is None:
        return detected
    dialect = detected.dialect
    if options.get("delimiter"):
        dialect = replace(dialect, delimiter=options["delimiter"])
    if options.get("header") in ("yes", "no"):
        dialect = replace(dialect, header=options["header"] == "yes")
    return replace(detected, dialect=dialect)


@dataclass
class ImportOutcome:
    columns: list[ColumnDef]
    loaded: int = 0
    rejected: int = 0
    failure: FormatError | None = None


@job_task("upload")
async def run_import(run: JobRun) -> dict[str, Any]:
    dataset_id, file_id = uuid.UUID(run.result["datasetId"]), uuid.UUID(run.result["fileId"])
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        stored = await session.get(StoredFile, file_id)
        dataset = await session.get(Dataset, dataset_id)
        if stored is None or dataset is None:
            raise PermanentJobError("The uploaded file or its dataset was deleted", code="source_missing")
        key, name, mime, known = stored.stored_path, stored.original_name, stored.mime_type, dataset.columns
    source = run.scratch / "source"
    with source.open("wb") as sink:
        async for chunk in run.storage.iter_chunks(key):
            await asyncio.to_thread(sink.write, chunk)
    rejects_path = run.scratch / "rejects.csv"
    settings = task_settings().datasets
    batch_rows = settings.batch_rows
    limits = ReadLimits(
        max_rows=settings.max_upload_rows,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_compression_ratio=settings.max_compression_ratio,
    )
    types = TYPE_MAPPING.validate_python(run.params["types"]) if "types" in run.params else None

    def work() -> ImportOutcome:
        with source.open("rb") as handle:
            detected = _with_overrides(detect_format(handle.read(SNIFF_BYTES), name, mime), run.params)
        if known:
            schema: DatasetSchema | None = DatasetSchema(tuple(transfer.columns_of(known)))
        elif "schema" in run.params:
            schema = DatasetSchemaRequest.model_validate(run.params["schema"]).to_schema()
        else:
            schema = None
        outcome = ImportOutcome(columns=[])

        def prepared(done: int) -> Iterator[tuple[ValidatedBatch, int, transfer.CopyBatch | None]]:
            """Validated batches, their last source row, and their rows past the checkpoint encoded for COPY."""
            for validated in read_batches(
                source, detected, schema=schema, types=None if schema else types, batch_rows=batch_rows, limits=limits
            ):
                last_row = max(
                    pc.max(validated.row_numbers).as_py() or 0,
                    pc.max(validated.rejects.column("row_number")).as_py() or 0,
                )
                encoded = None
                if last_row > done:
                    fresh = pc.greater(validated.row_numbers, pa.scalar(done, pa.int64()))
                    encoded = transfer.encode_batch(validated.rows.filter(fresh), validated.row_numbers.filter(fresh))
                yield validated, last_row, encoded

        with (
            run.connection() as job,
            rejects_path.open("wb") as rejects_sink,
            open_writer("csv", rejects_sink, REJECTS_SCHEMA) as rejects,
        ):
            with job.transaction() as cursor:
                done = transfer.dataset_rows_done(job, cursor)
            try:
                with run.ordered_load(dataset_id, rows_total=None) as loader:
                    for validated, last_row, encoded in transfer.ahead(prepared(done)):
                        if not outcome.columns:
                            outcome.columns = list(validated.schema.columns)
                            transfer.create_dataset_table(run.conninfo, dataset_id=dataset_id, columns=outcome.columns)
                            with job.transaction() as cursor:
                                cursor.execute(
                                    "UPDATE jobs.datasets SET columns = %s WHERE id = %s",
                                    (Jsonb(transfer.stored_columns(outcome.columns)), dataset_id),
                                )
                        rejects.write(validated.rejects)
                        outcome.rejected += len(set(validated.rejects.column("row_number").to_pylist()))
                        outcome.loaded += validated.rows.num_rows
                        if encoded is not None:
                            loader.submit(encoded, rows_done=last_row)
            except (NoValidRowsError, NoDataRowsError) as exc:
                outcome.failure = exc
        return outcome

    try:
        outcome = await asyncio.to_thread(work)
    except LimitExceededError as exc:
        await _discard_outputs(run, error=exc, dataset_id=dataset_id, file_id=file_id, key=key)
        raise
    if not outcome.failure:
        await asyncio.to_thread(transfer.finish_dataset_table, run.conninfo, dataset_id=dataset_id)
    result: dict[str, Any] = {
        "datasetId": str(dataset_id),
        "fileId": str(file_id),
        "rowsLoaded": outcome.loaded,
        "rowsRejected": outcome.rejected,
    }
    if outcome.columns:
        result["schema"] = _schema_report(outcome.columns, run.params)
        result["renamedColumns"] = column_renames(outcome.columns)
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        if outcome.rejected:
            result["rejectsFileId"] = str(
                await _store_file(
                    run,
                    session,
                    path=rejects_path,
                    kind="rejects",
                    name=f"{Path(name).stem}-rejects.csv",
                    mime="text/csv",
                )
            )
        await session.execute(
            update(StoredFile)
            .where(StoredFile.id == file_id)
            .values(status="failed" if outcome.failure else "completed")
        )
        await session.execute(update(Job).where(Job.id == run.job_id).values(result=result))
        if not outcome.failure:
            await session.execute(
                update(Dataset)
                .where(Dataset.id == dataset_id)
                .values(status="ready", row_count=outcome.loaded, columns=transfer.stored_columns(outcome.columns))
            )
            await index_rows(session, Dataset, Dataset.id == dataset_id)  # found by its columns from now on
    if outcome.failure:
        raise outcome.failure
    return result


def _schema_report(columns: list[ColumnDef], params: dict[str, Any]) -> dict[str, Any]:
    """The dataset's columns, each saying whether its type was given with the upload or inferred from the file."""
    given = set(params.get("types") or ())

    def source(column: ColumnDef) -> str:
        return "given" if "schema" in params or column.name in given or column.label in given else "inferred"

    return {
        "columns": [
            {**stored, "source": source(column)}
            for column, stored in zip(columns, transfer.stored_columns(columns), strict=True)
        ]
    }


async def _discard_outputs(
    run: JobRun,
    *,
    error: LimitExceededError,
    dataset_id: uuid.UUID | None,
    file_id: uuid.UUID | None = None,
    key: str | None = None,
) -> None:
    """A job past a limit leaves nothing that counts against the org: its rows, dataset, file and object go.

    The job stays, failed, with the error in its result (``code``, ``message``, and which limit, at what value);
    it cannot be retried, as what it would resume is gone.
    """
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        if dataset_id is not None:
            await session.execute(delete(Dataset).where(Dataset.id == dataset_id))  # a trigger drops its table
        if file_id is not None:
            await session.execute(delete(StoredFile).where(StoredFile.id == file_id))
        await session.execute(
            update(Job)
            .where(Job.id == run.job_id)
            .values(
                result={
                    "error": {"code": error.code, "message": error.message, "details": error.details},
                    "dataRemoved": True,
                }
            )
        )
    if key is not None:
        try:
            await run.storage.delete(key)
        except Exception:  # the job's outcome stands; the object no longer counts for the org, and is logged
            log.warning("discarded_object_not_deleted", jobId=str(run.job_id), key=key, exc_info=True)


@job_task("export")
async def run_export(run: JobRun) -> dict[str, Any]:
    """Stream the matching rows into a file; the row count is known before the first row is written.

    The count and the rows are read in one repeatable-read snapshot, so they agree; an unfiltered dataset's
    count is its stored row count.
    """
    dataset_id = uuid.UUID(run.params["datasetId"]) if "datasetId" in run.params else None
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        source = await exportable(session, source_type=run.params["source"]["type"], dataset_id=dataset_id)
    if source is None:
        raise PermanentJobError("The exported dataset no longer exists", code="source_missing")
    query = export_query(run.params, source.columns)
    known_total = None if run.params.get("filters") else source.rows
    file_format: ExportFormat = run.params.get("format", "csv")
    gzip = bool(run.params.get("gzip"))
    scratch_file = run.scratch / "export"

    schema = pa.schema([column.arrow_field() for column in query.columns])

    def write_rows(cursor: psycopg.Cursor[Any], writer: BatchWriter) -> Iterator[int]:
        """Write the rows, yielding how many each step wrote. CSV arrives rendered by PostgreSQL (a copy of
        bytes, no parsing here); other formats are built from Arrow batches."""
        if isinstance(writer, CsvBatchWriter):
            with cursor.copy(query.csv):
                for lines, count in transfer.copied_rows(cursor):
                    writer.write_rendered(lines, count)
                    yield count
            return
        for batch in transfer.stream_query(cursor, query.select, [column.column for column in query.columns]):
            writer.write(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            yield batch.num_rows

    def work() -> int:
        rows = 0
        with run.connection() as data, run.connection() as control, scratch_file.open("wb") as sink:
            data.connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            data.connection.read_only = True
            writer = open_writer(file_format, sink, schema, gzip=gzip)
            with data.transaction() as cursor:
                total = known_total
                if total is None:
                    cursor.execute(query.count)
                    total = int(cursor.fetchone()[0])
                with control.transaction() as progress:
                    control.checkpoint(progress, rows_done=0, rows_total=total)
                for count in write_rows(cursor, writer):
                    rows += count
                    if control.progress_due():
                        with control.transaction() as progress:
                            control.checkpoint(progress, rows_done=rows, rows_total=total)
            writer.close()
            with control.transaction() as progress:
                control.checkpoint(progress, rows_done=rows, rows_total=rows)
        return rows

    rows = await asyncio.to_thread(work)
    async with task_database().tenant_transaction(org_id=run.org_id) as session:
        name = _output_name(run, f"{run.params['source']['type']}-export", file_format, gzip)
        file_id = await _store_file(
            run, session, path=scratch_file, kind="export", name=name, mime=mime_type(file_format, gzip=gzip)
        )
    return {"fileId": str(file_id), "rows": rows}


@periodic_per_org("datasets.retention_sweep", cron="17 * * * *")
async def retention_sweep(session: AsyncSession) -> int:
    """Delete expired exports (objects and rows) and finished jobs older than the retention period."""
    storage = task_storage()
    expired = (await session.scalars(select(StoredFile).where(StoredFile.expires_at < func.now()))).all()
    for stored in expired:
        await storage.delete(stored.stored_path)
        await session.delete(stored)
    cutoff = datetime.now(UTC) - timedelta(days=task_settings().datasets.retention_days)
    removed = await execute_count(
        session, delete(Job).where(Job.finished_at < cutoff, Job.status.in_(("completed", "failed", "cancelled")))
    )
    return len(expired) + removed
