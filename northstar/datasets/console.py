"""The data service's console pages: jobs with live progress, generate, upload, export, datasets and downloads.

Every page calls the same service functions as the API routes under ``/api/v1`` and validates input with the same
request models; progress arrives over ``/app/events`` (the API's event stream for the signed-in user).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from northstar.core.console.pages import console_router, redirect, render, safe_next
from northstar.core.context import DbSession, audit_target
from northstar.datasets import api, service
from northstar.datasets.auth import DataReadPage, DataUpdatePage
from northstar.datasets.models import JobStatus

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
JOB_STATUSES = ("pending", "in-progress", "completed", "failed", "cancelled")
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Limit = Annotated[int, Query(ge=1, le=100)]

router = console_router()


@router.get("/jobs", name="console.datasets_jobs")
async def jobs_page(
    request: Request,
    principal: DataReadPage,
    session: DbSession,
    offset: Offset = 0,
    limit: Limit = 20,
    status: Annotated[JobStatus | None, Query()] = None,
) -> Response:
    jobs, total = await service.list_jobs(
        session, org_id=principal.org_id, filters=service.JobFilters(status=status), offset=offset, limit=limit
    )
    return render(
        request,
        "datasets/jobs.html",
        {
            "jobs": [await api.job_out(request, session, job) for job in jobs],
            "total": total,
            "offset": offset,
            "limit": limit,
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
