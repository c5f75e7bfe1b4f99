"""The queue page (``/queue``): what Bull Board is to the seed, for founders and admins.

A static page and script; all data comes from ``GET /api/v1/queue`` with the viewer's own credential,
so it shows exactly what their role may see and needs no session cookie.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

STATIC = Path(__file__).parent / "static"
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
)

router = APIRouter(tags=["data service"], include_in_schema=False)


@router.get("/queue", name="datasets.queue_page")
async def queue_page() -> Response:
    return Response(
        (STATIC / "queue.html").read_bytes(),
        media_type="text/html; charset=utf-8",
        headers={"content-security-policy": PAGE_POLICY},
    )


@router.get("/queue.js", name="datasets.queue_script")
async def queue_script() -> Response:
    return Response((STATIC / "queue.js").read_bytes(), media_type="text/javascript; charset=utf-8")
