"""The data service's console pages: jobs with live progress, generate, upload, export, datasets and downloads.

Every page calls the same service functions as the API routes under ``/api/v1`` and validates input with the same
request models; progress arrives over ``/app/events`` (the API's event stream for the signed-in user).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Form, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from northstar.core.console.pages import console_router, field_errors, read_form, redirect, render, safe_next
from northstar.core.context import DbSession, audit_target
from northstar.core.http import Name, Page
from northstar.core.manifest import EXPORT_SOURCES
from northstar.datasets import api, service
from northstar.datasets.auth import DataCreatePage, DataReadPage, DataUpdatePage, ExportCreatePage
from northstar.datasets.generation import list_presets
from northstar.datasets.models import JobStatus
from northstar.datasets.schemas import ExportRequest, GenerateRequest

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
JOB_STATUSES = ("pending", "in-progress", "completed", "failed", "cancelled")
# Where generated rows go, as the form offers it: the API's ``output`` object.
OUTPUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dataset": ("A dataset", {"dataset": True}),
    "dataset-csv": ("A dataset and a CSV file", {"dataset": True, "file": {"format": "csv"}}),
    "csv": ("A CSV file only", {"dataset": False, "file": {"format": "csv"}}),
    "parquet": ("A Parquet file only", {"dataset": False, "file": {"format": "parquet"}}),
}
FILE_FORMATS = ("csv", "json", "ndjson", "parquet")

router = console_router()


@router.get("/jobs", name="console.datasets_jobs")
async def jobs_page(
    request: Request,
    principal: DataReadPage,
    session: DbSession,
    page: Page,
    status: Annotated[JobStatus | None, Query()] = None,
) -> Response:
    jobs, total = await service.list_jobs(
        session,
        org_id=principal.org_id,
        filters=service.JobFilters(status=status),
        offset=page.offset,
        limit=page.limit,
    )
    return render(
        request,
        "datasets/jobs.html",
        {
            "jobs": [await api.job_out(request, session, job) for job in jobs],
            "total": total,
            "page": page,
            "status": status or "",
            "status_options": [("", "Any status"), *((value, value) for value in JOB_STATUSES)],
            "base_url": f"/app/jobs?status={status}" if status else "/app/jobs",
        },
    )


async def _job_context(request: Request, session: DbSession, org_id: uuid.UUID, job_id: uuid.UUID) -> dict[str, Any]:
    """A job as the API describes it, with its rejects report (imports that turned rows away) when there is one."""
    job = await api.job_out(request, session, await service.get_job(session, org_id=org_id, job_id=job_id))
    rejects_id = job.result.get("rejectsFileId")
    rejects_uri = None
    if rejects_id and job.status == "completed":
        stored = await service.downloadable_file(session, org_id=org_id, file_id=uuid.UUID(rejects_id))
        rejects_uri = await service.download_link(api.object_store(request), request.app.state.settings, stored)
    return {"job": job, "rejects_uri": rejects_uri}


@router.get("/jobs/{job_id}", name="console.datasets_job")
async def job_page(job_id: uuid.UUID, request: Request, principal: DataReadPage, session: DbSession) -> Response:
    return render(request, "datasets/job.html", await _job_context(request, session, principal.org_id, job_id))


@router.post("/jobs/{job_id}/cancel", name="console.datasets_job_cancel")
async def cancel_job(
    job_id: uuid.UUID,
    request: Request,
    principal: DataUpdatePage,
    session: DbSession,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    job = await service.cancel_job(session, principal=principal, job_id=job_id)
    audit_target(request, "job", job.id)
    return redirect(request, safe_next(next, f"/app/jobs/{job.id}"))


@router.post("/jobs/{job_id}/retry", name="console.datasets_job_retry")
async def retry_job(
    job_id: uuid.UUID,
    request: Request,
    principal: DataUpdatePage,
    session: DbSession,
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    job = await service.retry_job(session, principal=principal, job_id=job_id)
    audit_target(request, "job", job.id)
    return redirect(request, safe_next(next, f"/app/jobs/{job.id}"))


def _generate_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    presets = list_presets()
    return {
        "values": values,
        "errors": errors,
        "presets": {
            preset.name: preset.model_dump(mode="json", by_alias=True, exclude_none=True) for preset in presets
        },
        "preset_options": [
            ("", "No preset: my own columns"),
            *((p.name, f"{p.name}: {p.description}") for p in presets),
        ],
        "output_options": [(key, label) for key, (label, _) in OUTPUTS.items()],
    }


@router.get("/generate", name="console.datasets_generate")
async def generate_page(request: Request, principal: DataCreatePage) -> Response:
    return render(request, "datasets/generate.html", _generate_context({"rows": "1000", "output": "dataset"}, {}))


@router.post("/generate", name="console.datasets_generate_submit")
async def generate(request: Request, principal: DataCreatePage, session: DbSession) -> Response:
    """The API's ``POST /generate``: the form's columns are the JSON a client sends, the rest plain fields."""
    raw = await request.form()
    text = raw.get("columns")
    columns: Any = []
    problems: dict[str, str] = {}
    if isinstance(text, str) and text.strip():
        try:
            columns = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            problems["columns"] = f"The columns are not valid JSON: {exc}"
    form = await read_form(
        request,
        GenerateRequest,
        name=raw.get("name") or None,
        seed=raw.get("seed") or None,
        preset=raw.get("preset") or None,
        columns=columns,
        output=OUTPUTS.get(str(raw.get("output")), OUTPUTS["dataset"])[1],
    )
    errors = {**form.errors, **problems}
    if form.model is None or errors:
        return render(request, "datasets/generate.html", _generate_context(form.values, errors), status=422)
    if form.model.output.dataset:
        await service.storage_room(
            session, declared_bytes=None, limit=request.app.state.settings.datasets.max_org_storage_bytes
        )
    job = await service.create_generation_job(session, principal=principal, request=form.model)
    audit_target(request, "job", job.id, type="generation", rows=form.model.rows)
    return redirect(request, f"/app/jobs/{job.id}")


@router.get("/upload", name="console.datasets_upload")
async def upload_page(request: Request, principal: DataCreatePage) -> Response:
    return render(request, "datasets/upload.html", {"errors": {}})


@router.post("/upload", name="console.datasets_upload_submit")
async def upload(
    request: Request,
    principal: DataCreatePage,
    session: DbSession,
    name: Annotated[Name | None, Query(min_length=1, max_length=200)] = None,
) -> Response:
    """The API's upload (the same streaming, checks and limits), then the job's page."""
    accepted = await api.receive_upload(request, principal, session, name=name)
    audit_target(request, "file", accepted.file_id)
    return redirect(request, f"/app/jobs/{accepted.job_id}")


@router.get("/datasets", name="console.datasets_list")
async def datasets_page(request: Request, principal: DataReadPage, session: DbSession, page: Page) -> Response:
    datasets, total = await service.list_datasets(
        session, org_id=principal.org_id, offset=page.offset, limit=page.limit
    )
    return render(
        request,
        "datasets/datasets.html",
        {"datasets": datasets, "total": total, "page": page},
    )


@router.get("/datasets/{dataset_id}", name="console.datasets_dataset")
async def dataset_page(
    dataset_id: uuid.UUID,
    request: Request,
    principal: DataReadPage,
    session: DbSession,
    page: Page,
) -> Response:
    dataset = await service.get_dataset(session, org_id=principal.org_id, dataset_id=dataset_id)
    rows, total = await service.dataset_rows(session, dataset, offset=page.offset, limit=page.limit)
    return render(
        request,
        "datasets/dataset.html",
        {"dataset": dataset, "rows": rows, "total": total, "page": page},
    )


def _export_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    sources = [
        ("dataset", "A dataset"),
        ("file", "An uploaded file"),
        *((name, name) for name in sorted(EXPORT_SOURCES)),
    ]
    return {
        "values": values,
        "errors": errors,
        "source_options": sources,
        "format_options": [(name, name.upper()) for name in FILE_FORMATS],
    }


@router.get("/export", name="console.datasets_export")
async def export_page(
    request: Request,
    principal: ExportCreatePage,
    source: Annotated[str, Query(max_length=40)] = "dataset",
    id: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    values = {"source_type": source, "source_id": str(id) if id else "", "format": "csv"}
    return render(request, "datasets/export.html", _export_context(values, {}))


@router.post("/export", name="console.datasets_export_submit")
async def export(request: Request, principal: ExportCreatePage, session: DbSession) -> Response:
    """The API's ``POST /export``, its body built from the form's fields."""
    form = await request.form()
    values = {key: value for key, value in form.items() if isinstance(value, str) and key != "csrf_token"}
    body = {
        "source": {"type": values.get("source_type", ""), "id": values.get("source_id") or None},
        "format": values.get("format", "csv"),
        "gzip": values.get("gzip") == "on",
        "name": values.get("name") or None,
    }
    try:
        request_model = ExportRequest.model_validate(body)
    except ValidationError as exc:
        return render(request, "datasets/export.html", _export_context(values, field_errors(exc)), status=422)
    job = await service.create_export_job(session, principal=principal, request=request_model)
    audit_target(request, "job", job.id, type="export", source=request_model.source.type)
    return redirect(request, f"/app/jobs/{job.id}")
