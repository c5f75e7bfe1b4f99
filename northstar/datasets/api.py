"""Data service routes (seed 003): generate, upload, export, status; jobs, datasets, files, queue overview."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from northstar.core.context import DbSession, audit_target
from northstar.core.http import (
    ERROR_RESPONSES,
    AppError,
    Envelope,
    Instant,
    JobAccepted,
    Name,
    Page,
    PageEnvelope,
    Unprocessable,
    invalid,
)
from northstar.core.idempotency import Idempotent
from northstar.core.permissions import Principal
from northstar.core.storage import ObjectStore
from northstar.datasets import service
from northstar.datasets.auth import DataCreate, DataDelete, DataRead, DataUpdate, ExportCreate, QueueRead
from northstar.datasets.formats import DatasetSchemaRequest, FormatError, detect_format, mime_type
from northstar.datasets.formats.schema import TYPE_MAPPING
from northstar.datasets.generation import PresetInfo, list_presets
from northstar.datasets.models import Job, JobStatus, JobType, StoredFile
from northstar.datasets.schemas import (
    DatasetOut,
    ExportRequest,
    FileOut,
    GenerateRequest,
    JobOut,
    QueueOverview,
    UploadAccepted,
)
from northstar.datasets.transfer import StorageQuotaError

router = APIRouter(tags=["data service"], responses=ERROR_RESPONSES)

UPLOAD_CHUNK = 1 << 20


class UnsupportedMediaType(AppError):
    status, code = 415, "unsupported_media_type"


def object_store(request: Request) -> ObjectStore:
    store: ObjectStore = request.app.state.storage
    return store


async def job_out(request: Request, session: DbSession, job: Job) -> JobOut:
    out = JobOut.model_validate(job)
    file_id = job.result.get("fileId") if job.type != "upload" else None
    if job.status == "completed" and file_id:
        stored = await session.get(StoredFile, uuid.UUID(file_id))
        if stored is not None and stored.status == "completed":
            out.result_uri = await service.download_link(object_store(request), request.app.state.settings, stored)
    return out


@router.get("/generate/presets", response_model=Envelope[list[PresetInfo]], name="datasets.presets")
async def presets(_: DataRead) -> Envelope[list[PresetInfo]]:
    """Starting points for ``POST /generate`` (send ``preset`` with optional extra columns)."""
    return Envelope(data=list_presets())


@router.post(
    "/generate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[JobAccepted],
    name="datasets.generate",
    dependencies=[Idempotent],
)
async def generate(
    body: GenerateRequest, request: Request, principal: DataCreate, session: DbSession
) -> Envelope[JobAccepted]:
    """Queue a generation; refused (413) when the org's storage is already full, and stopped in the worker when it
    fills up (``storage_quota_exceeded``)."""
    if body.output.dataset:
        await service.storage_room(
            session, declared_bytes=None, limit=request.app.state.settings.datasets.max_org_storage_bytes
        )
    job = await service.create_generation_job(session, principal=principal, request=body)
    audit_target(request, "job", job.id, type="generation", rows=body.rows)
    return Envelope(data=JobAccepted(job_id=job.id))


@dataclass
class UploadSource:
    chunks: AsyncIterator[bytes]
    filename: str
    declared_type: str
    schema: str | None


async def _upload_source(request: Request) -> UploadSource:
    """The file's bytes, name, declared type and optional schema: multipart (``file``, ``schema``) or raw body.

    Multipart parts larger than 1 MB are spooled to disk by the parser, so neither form holds a file in memory.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5)
        upload, schema = form.get("file"), form.get("schema")
        if not isinstance(upload, UploadFile):
            raise Unprocessable(
                "Send the file in a multipart field named 'file'",
                details=[{"field": "file", "message": "missing", "type": "missing"}],
            )

        async def parts() -> AsyncIterator[bytes]:
            while chunk := await upload.read(UPLOAD_CHUNK):
                yield chunk

        return UploadSource(
            parts(),
            upload.filename or "upload",
            upload.content_type or "",
            schema if isinstance(schema, str) else request.query_params.get("schema"),
        )
    return UploadSource(
        request.stream(),
        request.query_params.get("filename") or "upload",
        content_type,
        request.query_params.get("schema"),
    )


def _declared_schema(text: str | None) -> dict[str, Any]:
    """The import options a ``schema`` gives, checked now (422 naming the column and what is wrong with it).

    Either the whole schema, ``{"columns": [{"name", "type", …}]}`` (``schema``), or types for some columns by
    header, the rest being inferred: ``{"amount": "float", "price": {"type": "decimal", "precision": 10,
    "scale": 2}}`` (``types``).
    """
    if text is None:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable(
            "The schema is not valid JSON", details=[{"field": "schema", "message": str(exc), "type": "json_invalid"}]
        ) from None
    try:
        if isinstance(value, dict) and isinstance(value.get("columns"), list):
            return {"schema": DatasetSchemaRequest.model_validate(value).model_dump(mode="json", exclude_none=True)}
        types = TYPE_MAPPING.validate_python(value)
    except ValidationError as exc:
        raise invalid("The schema is not valid", exc, prefix=("schema",)) from None
    return {
        "types": {key: given.model_dump(mode="json", by_alias=True, exclude_none=True) for key, given in types.items()}
    }


@router.post(
    "/upload",
    status_code=status.HTTP_201_CREATED,
    response_model=Envelope[UploadAccepted],
    name="datasets.upload",
    responses={
        413: {
            "description": "Larger than the upload limit, or than the room left in the org's storage "
            "(`storage_quota_exceeded`)"
        },
        415: {"description": "Not CSV, JSON, NDJSON or Parquet"},
    },
)
async def upload(
    request: Request,
    principal: DataCreate,
    session: DbSession,
    name: Annotated[Name | None, Query(min_length=1, max_length=200, description="dataset name")] = None,
    filename: Annotated[str | None, Query(max_length=255, description="file name, for a raw body")] = None,
    delimiter: Annotated[str | None, Query(min_length=1, max_length=1, description="CSV delimiter")] = None,
    header: Annotated[Literal["auto", "yes", "no"], Query(description="CSV header row")] = "auto",
    schema: Annotated[
        str | None,
        Query(
            max_length=100_000,
            description='JSON: the whole schema, `{"columns": '
            '[{"name", "type", "nullable", "precision", "scale", '
            '"label"}]}`, or types for some columns by header, `{"amount": '
            '"float"}`; inferred when absent (a multipart field `schema` works '
            "too)",
        ),
    ] = None,
) -> Response:
    """Stream a file in (multipart field ``file`` or the raw body), store it, and queue its import.

    The same bytes uploaded again answer 200 with the first upload's ids (``duplicateOf``). The org's storage
    quota is checked before the body is read (against ``Content-Length``) and while it streams in.
    """
    body = await receive_upload(
        request, principal, session, name=name, delimiter=delimiter, header=header, schema=schema
    )
    return Response(
        Envelope(data=body).model_dump_json(by_alias=True),
        status_code=200 if body.duplicate_of else 201,
        media_type="application/json",
    )


async def receive_upload(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    *,
    name: str | None = None,
    delimiter: str | None = None,
    header: str = "auto",
    schema: str | None = None,
) -> UploadAccepted:
    """Store the request's file and queue its import (or find the same bytes uploaded before): the API's upload
    and the console's share it."""
    length, quota = request.headers.get("content-length", ""), request.app.state.settings.datasets.max_org_storage_bytes
    room = await service.storage_room(session, declared_bytes=int(length) if length.isdigit() else None, limit=quota)
    source = await _upload_source(request)
    schema_options = _declared_schema(source.schema)
    chunks, original_name, declared = source.chunks, source.filename, source.declared_type
    file_id = uuid.uuid4()
    key = f"org/{principal.org_id}/upload/{file_id}/source"
    digest, head = hashlib.sha256(), bytearray()
    received = 0

    async def hashed() -> AsyncIterator[bytes]:
        nonlocal received
        async for chunk in chunks:
            received += len(chunk)
            if received > room:
                raise StorageQuotaError(quota)
            digest.update(chunk)
            if len(head) < 65536:
                head.extend(chunk[: 65536 - len(head)])
            yield chunk

    storage = object_store(request)
    size = await storage.put_stream(key, hashed(), content_type=declared or None)
    try:
        detected = detect_format(bytes(head), original_name, declared)
    except FormatError as exc:
        await storage.delete(key)
        raise UnsupportedMediaType(str(exc)) from None
    duplicate = await service.find_duplicate_upload(session, org_id=principal.org_id, checksum=digest.hexdigest())
    if duplicate is not None:
        await storage.delete(key)
        return UploadAccepted(job_id=duplicate.job_id or duplicate.id, file_id=duplicate.id, duplicate_of=duplicate.id)
    options = {
        key_: value for key_, value in {"delimiter": delimiter, "header": header, **schema_options}.items() if value
    }
    uploaded = service.UploadedObject(
        key=key,
        original_name=original_name,
        mime_type=mime_type(detected.kind, gzip=detected.compression == "gzip"),
        size_bytes=size,
        checksum=digest.hexdigest(),
    )
    job, stored = await service.create_import_job(
        session, principal=principal, upload=uploaded, options=options, dataset_name=name
    )
    audit_target(request, "file", stored.id, size=size, name=original_name)
    return UploadAccepted(job_id=job.id, file_id=stored.id)


@router.post(
    "/export",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[JobAccepted],
    name="datasets.export",
    dependencies=[Idempotent],
)
async def export(
    body: ExportRequest, request: Request, principal: ExportCreate, session: DbSession
) -> Envelope[JobAccepted]:
    job = await service.create_export_job(session, principal=principal, request=body)
    audit_target(request, "job", job.id, type="export", source=body.source.type)
    return Envelope(data=JobAccepted(job_id=job.id))


@router.get("/status/{job_id}", response_model=Envelope[JobOut], name="datasets.status")
async def job_status(job_id: uuid.UUID, request: Request, principal: DataRead, session: DbSession) -> Envelope[JobOut]:
    job = await service.get_job(session, org_id=principal.org_id, job_id=job_id)
    return Envelope(data=await job_out(request, session, job))


@router.get("/jobs", response_model=PageEnvelope[JobOut], name="jobs.list")
async def list_jobs(
    request: Request,
    principal: DataRead,
    session: DbSession,
    page: Page,
    type: Annotated[JobType | None, Query()] = None,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    since: Annotated[Instant | None, Query(alias="from")] = None,
    until: Annotated[Instant | None, Query(alias="to")] = None,
) -> PageEnvelope[JobOut]:
    filters = service.JobFilters(type=type, status=status_, since=since, until=until)
    jobs, total = await service.list_jobs(
        session, org_id=principal.org_id, filters=filters, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[await job_out(request, session, job) for job in jobs], meta=page.meta(total))


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Envelope[JobOut],
    name="datasets.cancel",
)
async def cancel(job_id: uuid.UUID, request: Request, principal: DataUpdate, session: DbSession) -> Envelope[JobOut]:
    job = await service.cancel_job(session, principal=principal, job_id=job_id)
    audit_target(request, "job", job.id)
    return Envelope(data=await job_out(request, session, job))


@router.post(
    "/jobs/{job_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=Envelope[JobOut], name="datasets.retry"
)
async def retry(job_id: uuid.UUID, request: Request, principal: DataUpdate, session: DbSession) -> Envelope[JobOut]:
    job = await service.retry_job(session, principal=principal, job_id=job_id)
    audit_target(request, "job", job.id)
    return Envelope(data=await job_out(request, session, job))


@router.get("/queue", response_model=Envelope[QueueOverview], name="datasets.queue")
async def queue(request: Request, principal: QueueRead, session: DbSession) -> Envelope[QueueOverview]:
    """The org's queue at a glance (the page at ``/queue`` shows it): jobs by status, running and failed ones.

    Only this org's jobs count: the shared queue's total depth would tell a tenant about other tenants.
    """
    by_status, running, failed = await service.queue_overview(session, org_id=principal.org_id)
    return Envelope(
        data=QueueOverview(
            by_status=by_status,
            running=[await job_out(request, session, job) for job in running],
            failed=[await job_out(request, session, job) for job in failed],
        )
    )


@router.get("/datasets", response_model=PageEnvelope[DatasetOut], name="datasets.list")
async def list_datasets(principal: DataRead, session: DbSession, page: Page) -> PageEnvelope[DatasetOut]:
    datasets, total = await service.list_datasets(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return PageEnvelope(data=[DatasetOut.model_validate(d) for d in datasets], meta=page.meta(total))


@router.get("/datasets/{dataset_id}", response_model=Envelope[DatasetOut], name="datasets.get")
async def get_dataset(dataset_id: uuid.UUID, principal: DataRead, session: DbSession) -> Envelope[DatasetOut]:
    dataset = await service.get_dataset(session, org_id=principal.org_id, dataset_id=dataset_id)
    return Envelope(data=DatasetOut.model_validate(dataset))


@router.delete("/datasets/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, name="datasets.delete")
async def delete_dataset(dataset_id: uuid.UUID, request: Request, principal: DataDelete, session: DbSession) -> None:
    await service.delete_dataset(session, principal=principal, dataset_id=dataset_id)
    audit_target(request, "dataset", dataset_id)


@router.get("/datasets/{dataset_id}/rows", response_model=PageEnvelope[dict[str, Any]], name="datasets.rows")
async def dataset_rows(
    dataset_id: uuid.UUID, principal: DataRead, session: DbSession, page: Page
) -> PageEnvelope[dict[str, Any]]:
    """A page of rows in row order, each with its ``_row`` number (the source row for imports)."""
    dataset = await service.get_dataset(session, org_id=principal.org_id, dataset_id=dataset_id)
    rows, total = await service.dataset_rows(session, dataset, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=rows, meta=page.meta(total))


@router.get("/files/{file_id}", response_model=Envelope[FileOut], name="files.get")
async def get_file(file_id: uuid.UUID, principal: DataRead, session: DbSession) -> Envelope[FileOut]:
    return Envelope(
        data=FileOut.model_validate(await service.get_file(session, org_id=principal.org_id, file_id=file_id))
    )


def _stream(storage: ObjectStore, stored: StoredFile) -> StreamingResponse:
    return StreamingResponse(
        storage.iter_chunks(stored.stored_path),
        media_type=stored.mime_type or "application/octet-stream",
        headers={
            "content-disposition": f'attachment; filename="{_safe_name(stored.original_name)}"',
            **({"content-length": str(stored.size_bytes)} if stored.size_bytes else {}),
        },
    )


def _safe_name(name: str) -> str:
    return "".join(char if char.isalnum() or char in "._- " else "_" for char in name)[:200] or "download"


@router.get(
    "/files/{file_id}/download",
    name="files.download",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 307: {"description": "to a signed URL"}},
)
async def download(file_id: uuid.UUID, request: Request, principal: DataRead, session: DbSession) -> Response:
    """The file's bytes (or a redirect to the object store's signed URL)."""
    stored = await service.downloadable_file(session, org_id=principal.org_id, file_id=file_id)
    presigned = await object_store(request).signed_url(stored.stored_path, expires_seconds=300)
    if presigned:
        return RedirectResponse(presigned, status_code=307)
    return _stream(object_store(request), stored)


@router.get(
    "/files/{file_id}/content",
    name="files.signed_content",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def signed_content(
    file_id: uuid.UUID,
    request: Request,
    org: uuid.UUID | None = None,
    expires: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    signature: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> Response:
    """A ``resultUri`` link: no login, valid until ``expires`` for exactly this file (else 404, like any miss)."""
    org = service.check_download_link(
        request.app.state.settings, org_id=org, file_id=file_id, expires=expires, signature=signature
    )
    async with request.app.state.database.tenant_transaction(org_id=org) as session:
        stored = await service.downloadable_file(session, org_id=org, file_id=file_id)
    return _stream(object_store(request), stored)
