"""Data service logic: create jobs (row + queue entry in one transaction), follow, cancel, retry; datasets, files.

Every job is created with its queue entry in the caller's transaction, so either both exist or neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core import crypto
from northstar.core.db import fetch_page, get_in_org
from northstar.core.http import Conflict, Forbidden, NotFound, Unprocessable
from northstar.core.manifest import EXPORT_SOURCES
from northstar.core.permissions import Principal
from northstar.core.queue import enqueue
from northstar.core.storage import ObjectStore, expiring_link
from northstar.datasets import tasks, transfer
from northstar.datasets.exports import check_request, exportable
from northstar.datasets.generation import referenced_datasets, with_seed
from northstar.datasets.models import Dataset, Job, StoredFile
from northstar.datasets.schemas import ExportFilter, ExportRequest, ExportSource, FileFormat, GenerateRequest
from northstar.settings import Settings

TASK_OF_TYPE = {"generation": tasks.run_generation, "upload": tasks.run_import, "export": tasks.run_export}
RETRYABLE = ("failed", "cancelled")
CANCELLABLE = ("pending", "in-progress")


async def _start(
    session: AsyncSession, *, principal: Principal, job: Job, related: tuple[Any, ...] = (), queue: bool = True
) -> Job:
    """Defer the job's task on the session's connection, then insert the job (and rows that belong to it).

    Both commit with the request, or neither; the job's creation is published by a trigger on the table. With
    ``queue=False`` nothing is deferred: the caller runs the job itself (``run_unqueued``).
    """
    if queue:
        job.queue_job_id = await enqueue(session, TASK_OF_TYPE[job.type], org_id=principal.org_id, job_id=str(job.id))
    session.add_all([job, *related])
    await session.flush()
    return job


def _new_job(principal: Principal, job_type: str, params: dict[str, Any], **fields: Any) -> Job:
    return Job(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        type=job_type,
        params=params,
        status="pending",
        progress=0.0,
        rows_done=0,
        result={},
        attempts=0,
        cancel_requested=False,
        created_by=principal.user_id,
        **fields,
    )


async def _ready_dataset(session: AsyncSession, *, org_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    dataset = await get_dataset(session, org_id=org_id, dataset_id=dataset_id)
    if dataset.status != "ready":
        raise Conflict(f"Dataset {dataset_id} is {dataset.status}, not ready", code="dataset_not_ready")
    return dataset


async def create_generation_job(
    session: AsyncSession, *, principal: Principal, request: GenerateRequest, queue: bool = True
) -> Job:
    for reference in referenced_datasets(request):
        dataset = await _ready_dataset(session, org_id=principal.org_id, dataset_id=reference.dataset)
        if reference.referenced_column not in {c["name"] for c in dataset.columns}:
            raise Unprocessable(
                "The referenced dataset has no such column",
                details=[
                    {
                        "field": ".".join(str(part) for part in ("body", *reference.loc)),
                        "message": f"dataset {reference.dataset} has no column {reference.referenced_column!r}",
                        "type": "reference",
                    }
                ],
            )
    seeded = with_seed(request)
    params = seeded.model_dump(mode="json", by_alias=True, exclude_none=True)
    job = _new_job(principal, "generation", params, rows_total=request.rows)
    if not request.output.dataset:
        return await _start(session, principal=principal, job=job, queue=queue)
    dataset = Dataset(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        name=request.name or "Generated data",
        source="generation",
        job_id=job.id,
        columns=[],
        row_count=0,
        status="building",
        created_by=principal.user_id,
    )
    job.result = {"datasetId": str(dataset.id)}
    return await _start(session, principal=principal, job=job, related=(dataset,), queue=queue)


async def run_unqueued(*, job_type: str, org_id: uuid.UUID, job_id: uuid.UUID) -> None:
    """Run a committed job that was not queued here, once, exactly as a worker runs its task: the demo seed makes
    its dataset so, since a worker of the same database would otherwise race it for the job. The process must have
    given tasks its database (``core.queue.tasks_using``)."""
    await TASK_OF_TYPE[job_type](None, org_id=str(org_id), job_id=str(job_id))


@dataclass(frozen=True)
class UploadedObject:
    key: str
    original_name: str
    mime_type: str
    size_bytes: int
    checksum: str


async def org_stored_bytes(session: AsyncSession) -> int:
    """What the session's org stores now: its datasets' tables on disk and its files (``transfer.ORG_STORED_BYTES``)."""
    return int((await session.execute(text(transfer.ORG_STORED_BYTES))).scalar_one())


async def storage_room(session: AsyncSession, *, declared_bytes: int | None, limit: int) -> int:
    """The bytes the org may still store before it passes its storage ``limit``; refused at once when the org is
    already full, or when ``declared_bytes`` (an upload's ``Content-Length``) will not fit."""
    room = limit - await org_stored_bytes(session)
    if room <= 0 or (declared_bytes is not None and declared_bytes > room):
        raise transfer.StorageQuotaError(limit)
    return room


async def find_duplicate_upload(session: AsyncSession, *, org_id: uuid.UUID, checksum: str) -> StoredFile | None:
    return (
        await session.scalars(
            select(StoredFile)
            .where(
                StoredFile.org_id == org_id,
                StoredFile.kind == "upload",
                StoredFile.checksum == checksum,
                StoredFile.status != "failed",
            )
            .order_by(StoredFile.uploaded_at)
            .limit(1)
        )
    ).first()


async def create_import_job(
    session: AsyncSession,
    *,
    principal: Principal,
    upload: UploadedObject,
    options: dict[str, Any],
    dataset_name: str | None,
) -> tuple[Job, StoredFile]:
    job = _new_job(principal, "upload", {"fileName": upload.original_name, **options})
    stored = StoredFile(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        job_id=job.id,
        kind="upload",
        original_name=upload.original_name,
        stored_path=upload.key,
        mime_type=upload.mime_type,
        size_bytes=upload.size_bytes,
        checksum=upload.checksum,
        status="pending",
    )
    dataset = Dataset(
        id=uuid.uuid4(),
        org_id=principal.org_id,
        name=dataset_name or upload.original_name,
        source="upload",
        job_id=job.id,
        file_id=stored.id,
        columns=[],
        row_count=0,
        status="building",
        created_by=principal.user_id,
    )
    job.result = {"datasetId": str(dataset.id), "fileId": str(stored.id)}
    await _start(session, principal=principal, job=job, related=(stored, dataset))
    return job, stored


async def create_export_job(session: AsyncSession, *, principal: Principal, request: ExportRequest) -> Job:
    source = request.source
    table = EXPORT_SOURCES.get(source.type)
    if table is not None and not principal.can("read", table.resource):
        raise Forbidden(f"Your role cannot read {source.type}")
    dataset_id: uuid.UUID | None = None
    if source.type == "dataset" and source.id is not None:
        dataset_id = (await _ready_dataset(session, org_id=principal.org_id, dataset_id=source.id)).id
    elif source.type == "file" and source.id is not None:
        dataset_id = await _dataset_of_file(session, org_id=principal.org_id, file_id=source.id)
    found = await exportable(session, source_type=source.type, dataset_id=dataset_id)
    if found is None:
        raise NotFound("No such dataset")
    params = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    params["filters"] = check_request(request, found.columns)
    if dataset_id is not None:
        params["datasetId"] = str(dataset_id)
    job = _new_job(principal, "export", params, rows_total=None if request.filters else found.rows)
    return await _start(session, principal=principal, job=job)


async def export_source_rows(
    session: AsyncSession,
    *,
    principal: Principal,
    source: str,
    file_format: FileFormat,
    name: str,
    where_equal: Mapping[str, Any],
) -> Job:
    """An export job of a platform source's rows whose columns equal the given values: for a module that offers
    an export of its own data on its own route."""
    return await create_export_job(
        session,
        principal=principal,
        request=ExportRequest(
            source=ExportSource(type=source),
            format=file_format,
            name=name,
            filters=[ExportFilter(column=column, op="eq", value=value) for column, value in where_equal.items()],
        ),
    )


async def _dataset_of_file(session: AsyncSession, *, org_id: uuid.UUID, file_id: uuid.UUID) -> uuid.UUID:
    stored = await get_file(session, org_id=org_id, file_id=file_id)
    dataset = (
        await session.scalars(
            select(Dataset).where(Dataset.org_id == org_id, Dataset.file_id == stored.id, Dataset.status == "ready")
        )
    ).first()
    if dataset is None:
        raise Conflict(
            "This file has no imported data to export (its import has not completed)", code="dataset_not_ready"
        )
    return dataset.id


async def get_job(session: AsyncSession, *, org_id: uuid.UUID, job_id: uuid.UUID) -> Job:
    return await get_in_org(session, Job, job_id, org_id=org_id, missing="No such job")


@dataclass(frozen=True)
class JobFilters:
    type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_jobs(
    session: AsyncSession, *, org_id: uuid.UUID, filters: JobFilters, offset: int, limit: int
) -> tuple[list[Job], int]:
    query = select(Job).where(Job.org_id == org_id)
    if filters.type:
        query = query.where(Job.type == filters.type)
    if filters.status:
        query = query.where(Job.status == filters.status)
    if filters.since:
        query = query.where(Job.created_at >= filters.since)
    if filters.until:
        query = query.where(Job.created_at < filters.until)
    return await fetch_page(session, query.order_by(Job.created_at.desc(), Job.id), offset=offset, limit=limit)


def _ensure_may(principal: Principal, action: str, what: str, created_by: uuid.UUID | None) -> None:
    """Members change only the jobs and datasets they started; founders and admins change any."""
    if not principal.can(action, "data", owner_id=created_by):
        raise Forbidden(f"Your role cannot {action} {what} started by someone else", code="not_owner")


async def cancel_job(session: AsyncSession, *, principal: Principal, job_id: uuid.UUID) -> Job:
    """A pending job is cancelled now; a running one stops at its next batch (the worker confirms)."""
    job = await get_job(session, org_id=principal.org_id, job_id=job_id)
    _ensure_may(principal, "update", "a job", job.created_by)
    if job.status not in CANCELLABLE:
        raise Conflict(f"A {job.status} job cannot be cancelled", code="job_not_cancellable")
    job.cancel_requested = True
    if job.status == "pending":
        job.status = "cancelled"
        job.finished_at = func.now()
    await session.flush()
    await session.refresh(job)
    return job


async def retry_job(session: AsyncSession, *, principal: Principal, job_id: uuid.UUID) -> Job:
    job = await get_job(session, org_id=principal.org_id, job_id=job_id)
    _ensure_may(principal, "update", "a job", job.created_by)
    if job.status not in RETRYABLE:
        raise Conflict(f"A {job.status} job cannot be retried; only failed or cancelled ones", code="job_not_retryable")
    if job.result.get("dataRemoved"):  # the job passed a limit and what it had made was removed
        again = "upload the file again" if job.type == "upload" else "start a new job"
        raise Conflict(f"This job passed a limit and its data was removed; {again}", code="job_not_retryable")
    job.status, job.error_code, job.error_message = "pending", None, None
    job.cancel_requested, job.finished_at = False, None
    await session.execute(
        update(Dataset)
        .where(Dataset.org_id == principal.org_id, Dataset.job_id == job.id, Dataset.status == "failed")
        .values(status="building")
    )
    await session.flush()
    job.queue_job_id = await enqueue(session, TASK_OF_TYPE[job.type], org_id=principal.org_id, job_id=str(job.id))
    await session.flush()
    await session.refresh(job)
    return job


async def queue_overview(session: AsyncSession, *, org_id: uuid.UUID) -> tuple[dict[str, int], list[Job], list[Job]]:
    counts = dict(
        (await session.execute(select(Job.status, func.count()).where(Job.org_id == org_id).group_by(Job.status))).all()
    )
    running = list(
        (
            await session.scalars(
                select(Job).where(Job.org_id == org_id, Job.status == "in-progress").order_by(Job.started_at).limit(50)
            )
        ).all()
    )
    failed = list(
        (
            await session.scalars(
                select(Job)
                .where(Job.org_id == org_id, Job.status == "failed")
                .order_by(Job.finished_at.desc())
                .limit(50)
            )
        ).all()
    )
    return {status: int(count) for status, count in counts.items()}, running, failed


async def list_datasets(
    session: AsyncSession, *, org_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[Dataset], int]:
    query = select(Dataset).where(Dataset.org_id == org_id).order_by(Dataset.created_at.desc(), Dataset.id)
    return await fetch_page(session, query, offset=offset, limit=limit)


async def get_dataset(session: AsyncSession, *, org_id: uuid.UUID, dataset_id: uuid.UUID) -> Dataset:
    return await get_in_org(session, Dataset, dataset_id, org_id=org_id, missing="No such dataset")


async def dataset_rows(
    session: AsyncSession, dataset: Dataset, *, offset: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of a dataset's rows in row order, each with its ``_row`` number, and how many there are (none while
    it has no columns or failed)."""
    if dataset.status == "failed" or not dataset.columns:
        return [], 0
    table = transfer.dataset_table(dataset.id).as_string()
    rows = (
        await session.execute(
            text(f"SELECT to_jsonb(t) - 'org_id' FROM {table} t ORDER BY _row OFFSET :offset LIMIT :limit"),  # noqa: S608
            {"offset": offset, "limit": limit},
        )
    ).scalars()
    return list(rows), dataset.row_count


async def delete_dataset(session: AsyncSession, *, principal: Principal, dataset_id: uuid.UUID) -> None:
    """The row goes and a trigger drops its table; a dataset still being built is refused."""
    dataset = await get_dataset(session, org_id=principal.org_id, dataset_id=dataset_id)
    _ensure_may(principal, "delete", "a dataset", dataset.created_by)
    if dataset.status == "building":
        raise Conflict("This dataset is still being built; cancel its job first", code="dataset_building")
    await session.delete(dataset)
    await session.flush()


async def get_file(session: AsyncSession, *, org_id: uuid.UUID, file_id: uuid.UUID) -> StoredFile:
    return await get_in_org(session, StoredFile, file_id, org_id=org_id, missing="No such file")


async def downloadable_file(session: AsyncSession, *, org_id: uuid.UUID, file_id: uuid.UUID) -> StoredFile:
    stored = await get_file(session, org_id=org_id, file_id=file_id)
    if stored.status != "completed" and stored.kind != "upload":
        raise Conflict("This file is not ready yet", code="file_not_ready")
    if stored.expires_at is not None and stored.expires_at <= datetime.now(UTC):
        raise NotFound("This file has expired", code="file_expired")
    return stored


DOWNLOADS = "downloads/links"  # the purpose of the key that signs download links


def link_signature(settings: Settings, *, org_id: uuid.UUID, file_id: uuid.UUID, expires: int) -> str:
    """The signature of a download link to one file of one org until ``expires``."""
    return crypto.link_signature(settings.resolved_secret_key(), DOWNLOADS, org_id, file_id, expires)


async def download_link(store: ObjectStore, settings: Settings, stored: StoredFile) -> str:
    """An expiring link to a file: the store's own presigned URL (S3), else one signed by us."""
    return await expiring_link(
        store,
        stored.stored_path,
        ttl_seconds=settings.datasets.download_link_ttl_seconds,
        secret=settings.resolved_secret_key(),
        purpose=DOWNLOADS,
        org_id=stored.org_id,
        subject=stored.id,
        route=f"{settings.public_url.rstrip('/')}/api/v1/files/{stored.id}/content",
    )


def check_download_link(
    settings: Settings, *, org_id: uuid.UUID | None, file_id: uuid.UUID, expires: int | None, signature: str | None
) -> uuid.UUID:
    """The org a link was signed for; any missing, expired or forged part answers like a missing file."""
    return crypto.check_signed(
        settings.resolved_secret_key(),
        DOWNLOADS,
        org_id=org_id,
        subject=file_id,
        expires=expires,
        signature=signature,
    )
