"""The rules every fake vendor shares (``northstar/demo/vendor_api.py``): what the connector tests rely on them
to do."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from northstar.demo.vendor_api import FakeVendor


async def _ok(_: Request) -> Response:
    return JSONResponse({"data": []})


def _vendor(requests_per_second: float | None) -> FakeVendor:
    return FakeVendor(
        routes=[Route("/v1/things", _ok)], authorised=lambda _: True, requests_per_second=requests_per_second
    )


async def _statuses(vendor: FakeVendor, count: int) -> list[int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=vendor.app), base_url="http://vendor") as http:
        return [(await http.get("/v1/things")).status_code for _ in range(count)]


async def test_injected_faults_answer_exactly_the_next_requests_whatever_the_pace() -> None:
    """A run made to fail on page three's 503s must end on a 503 however fast it goes: with the ceiling checked
    first, a throttled request did not use a fault up, so the 429s a busy machine's timing caused decided which
    answer came last (the HubSpot resume test's 429 instead of 503)."""
    refusing = _vendor(requests_per_second=0)  # a ceiling no request is under: the pace cannot matter
    refusing.fail_next("server_error", path_prefix="/v1/things", count=3)
    assert await _statuses(refusing, 4) == [503, 503, 503, 429]
    assert refusing.throttled == 1 and not refusing.faults
