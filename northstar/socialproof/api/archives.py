"""Archives of raw events (what this org has in them), restores of a period, and the restored events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from northstar.core.context import DbSession, audit_target
from northstar.core.http import ERROR_RESPONSES, Envelope, Page, PageEnvelope
from northstar.core.idempotency import Idempotent
from northstar.settings import Settings
from northstar.socialproof.auth import ArchivesRead, ArchivesRestore
from northstar.socialproof.schemas.archives import (
    ArchiveOut,
    ArchiveStatus,
    RestoreCreate,
    RestoredEventOut,
    RestoreOut,
)
from northstar.socialproof.schemas.events import WidgetEventType
from northstar.socialproof.service import restores as service

router = APIRouter(tags=["social proof archives"], responses=ERROR_RESPONSES)


@router.get("/archives", response_model=PageEnvelope[ArchiveOut], name="archives.list")
async def list_archives(
    principal: ArchivesRead, session: DbSession, page: Page, status: ArchiveStatus | None = None
) -> PageEnvelope[ArchiveOut]:
    """Archived months holding this organization's events, with its share of each (newest first)."""
    found, total = await service.list_archives(session, status=status, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[ArchiveOut.model_validate(item) for item in found], meta=page.meta(total))


@router.get("/archives/{archive_id}", response_model=Envelope[ArchiveOut], name="archives.get")
async def get_archive(archive_id: uuid.UUID, principal: ArchivesRead, session: DbSession) -> Envelope[ArchiveOut]:
    return Envelope(data=ArchiveOut.model_validate(await service.get_archive(session, archive_id=archive_id)))


@router.post(
    "/archives/{archive_id}/restore",
    response_model=Envelope[RestoreOut],
    status_code=status.HTTP_202_ACCEPTED,
    name="archives.restore",
    dependencies=[Idempotent],
)
async def restore_archive(
    archive_id: uuid.UUID, body: RestoreCreate, request: Request, principal: ArchivesRestore, session: DbSession
) -> Envelope[RestoreOut]:
    """Bring this organization's events of a period of a verified archive back into a queryable table, for
    ``keepDays`` days. Answers at once with the restore (``pending``); poll ``GET /archive-restores/{id}``."""
    settings: Settings = request.app.state.settings
    restore, job_id = await service.request_restore(
        session,
        org_id=principal.org_id,
        archive_id=archive_id,
        start=body.start,
        end=body.end,
        site_id=body.site_id,
        keep_days=body.keep_days,
        max_keep_days=settings.socialproof.archive_restore_days,
        requested_by=principal.user_id,
    )
    audit_target(request, "archive", archive_id, restore=str(restore.id), job=job_id)
    return Envelope(data=RestoreOut.model_validate(restore))


@router.get("/archive-restores", response_model=PageEnvelope[RestoreOut], name="archive_restores.list")
async def list_restores(
    principal: ArchivesRead,
    session: DbSession,
    page: Page,
    archive_id: Annotated[uuid.UUID | None, Query(alias="archiveId")] = None,
) -> PageEnvelope[RestoreOut]:
    found, total = await service.list_restores(session, archive_id=archive_id, offset=page.offset, limit=page.limit)
    return PageEnvelope(data=[RestoreOut.model_validate(item) for item in found], meta=page.meta(total))


@router.get("/archive-restores/{restore_id}", response_model=Envelope[RestoreOut], name="archive_restores.get")
async def get_restore(restore_id: uuid.UUID, principal: ArchivesRead, session: DbSession) -> Envelope[RestoreOut]:
    restore = await service.get_restore(session, org_id=principal.org_id, restore_id=restore_id)
    return Envelope(data=RestoreOut.model_validate(restore))


@router.get(
    "/archive-restores/{restore_id}/events",
    response_model=PageEnvelope[RestoredEventOut],
    name="archive_restores.events",
)
async def restored_events(
    restore_id: uuid.UUID,
    principal: ArchivesRead,
    session: DbSession,
    page: Page,
    event_type: Annotated[WidgetEventType | None, Query(alias="eventType")] = None,
    site_id: Annotated[uuid.UUID | None, Query(alias="siteId")] = None,
) -> PageEnvelope[RestoredEventOut]:
    """The restored events of a ready restore, oldest first (409 ``restore_expired`` once dropped)."""
    rows, total = await service.restored_events(
        session,
        org_id=principal.org_id,
        restore_id=restore_id,
        event_type=event_type,
        site_id=site_id,
        offset=page.offset,
        limit=page.limit,
    )
    return PageEnvelope(data=[RestoredEventOut.model_validate(row) for row in rows], meta=page.meta(total))
