"""One gated route: the notes of the caller's org (there are none; the gate is what is under test)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from northstar.core.context import require
from northstar.core.permissions import Principal

NotesRead = Annotated[Principal, Depends(require("fixture_notes", "read"))]
router = APIRouter(tags=["fixture notes"])


@router.get("/fixture-notes", name="fixture_notes.list")
async def list_notes(principal: NotesRead) -> dict[str, Any]:
    return {"data": [], "meta": {"orgId": str(principal.org_id)}}
