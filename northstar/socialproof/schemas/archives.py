"""Archives of raw events as an org sees them, restores, and restored events."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, Instant, RequestModel

ArchiveStatus = Literal["writing", "written", "verified", "failed"]
RestoreStatus = Literal["pending", "running", "ready", "failed", "expired"]


class ArchiveOut(CamelModel):
    id: uuid.UUID
    month: date = Field(description="the first day of the archived month (UTC)")
    status: ArchiveStatus = Field(description="verified: read back and compared before its partition was dropped")
    schema_version: int
    range_start: datetime = Field(description="the month's range, inclusive")
    range_end: datetime = Field(description="exclusive")
    rows: int = Field(description="this organization's events in the archive")
    first_occurred_at: datetime = Field(description="this organization's first event in it")
    last_occurred_at: datetime
    created_at: datetime
    verified_at: datetime | None


class RestoreCreate(RequestModel):
    start: Instant | None = Field(default=None, description="default: the start of the archive's month")
    end: Instant | None = Field(default=None, description="exclusive; default: the end of the archive's month")
    site_id: uuid.UUID | None = Field(default=None, description="only this site's events")
    keep_days: int | None = Field(
        default=None, description="days the restored events stay (1 to the configured maximum, the default)"
    )


class RestoreOut(CamelModel):
    id: uuid.UUID
    archive_id: uuid.UUID
    site_id: uuid.UUID | None
    period_start: datetime
    period_end: datetime
    status: RestoreStatus = Field(description="poll until ready (or failed, with error)")
    rows: int
    keep_days: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="when the restored events are dropped")


class RestoredEventOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID
    event_type: str
    event_name: str | None
    notification_id: uuid.UUID | None
    visitor_id: str | None
    url: str | None
    payload: dict[str, Any]
    variant_id: uuid.UUID | None = Field(description="the A/B test variant the event was shown with")
    occurred_at: datetime
    received_at: datetime
