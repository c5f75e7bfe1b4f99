"""Audit trail responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from northstar.core.http import CamelModel


class AuditEventOut(CamelModel):
    id: uuid.UUID
    seq: int
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str
    ip: str
    user_agent: str
    request_id: str
    details: dict[str, Any]
    hash: str
