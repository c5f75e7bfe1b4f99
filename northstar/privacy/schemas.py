"""Privacy requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, RequestModel


class PrivacyRequestCreate(RequestModel):
    kind: Literal["export", "erasure"]
    subject_type: Literal["visitor", "visitor_hash"] = Field(
        description="`visitor`: the id you identify the visitor by (customer id or e-mail); "
        "`visitor_hash`: a stored visitor id"
    )
    subject: str = Field(min_length=1, max_length=320)


class OwnErasure(RequestModel):
    """Erasing one's account cannot be undone: the request repeats the account's e-mail address."""

    confirm_email: str = Field(min_length=3, max_length=320, description="your account's e-mail address")


class PrivacyRequestOut(CamelModel):
    id: uuid.UUID
    kind: str
    subject_type: str
    status: str
    requested_by: uuid.UUID | None
    job_id: int | None
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    download_url: str | None = None


class ConsentOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID | None
    source: str
    action: str
    subject_digest: str | None
    actor_id: uuid.UUID | None
    details: dict[str, Any]
    occurred_at: datetime


class PrivacySettingsOut(CamelModel):
    audit_retention_days: int
    updated_at: datetime


class PrivacySettingsUpdate(RequestModel):
    audit_retention_days: int = Field(ge=30, le=2557, description="30 days to 7 years")


class WidgetVisitorIds(RequestModel):
    user_id: str | None = Field(None, min_length=1, max_length=200)
    local_id: str | None = Field(None, pattern="^[0-9a-f]{32}$")


class WidgetConsent(RequestModel):
    site_key: str = Field(min_length=1, max_length=64)
    action: Literal["opt_in", "opt_out"]
    visitor: WidgetVisitorIds = Field(default_factory=WidgetVisitorIds)


class ConsentRecorded(CamelModel):
    id: uuid.UUID
    action: str
