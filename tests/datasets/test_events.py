"""Following a job live on ``/events/stream`` (server-sent events) instead of polling, over a real socket."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.clients import sse_events
from tests.factories import Account

pytestmark = pytest.mark.usefixtures("worker")


async def test_job_status_is_streamed_to_its_org_only(served: str, founder: Account, other_founder: Account) -> None:
    async with (
        httpx.AsyncClient(base_url=served, timeout=30) as http,
        http.stream("GET", "/events/stream?topics=job.status", headers=founder.headers) as mine,
        http.stream("GET", "/events/stream", headers=other_founder.headers) as theirs,
    ):
        assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/event-stream")
        my_events, their_events = sse_events(mine), sse_events(theirs)
        assert (await anext(my_events))[0] == "ready" and (await anext(their_events))[0] == "ready"
        response = await http.post(
            "/api/v1/generate",
            headers=founder.headers,
            json={"rows": 50, "seed": 1, "columns": [{"name": "n", "type": "int"}]},
        )
        job_id = response.json()["data"]["jobId"]
        seen: list[str] = []
        async with asyncio.timeout(60):
            async for name, data in my_events:
                assert name == "job.status"
                if data["jobId"] == job_id:
                    seen.append(data["status"])
                    if data["status"] == "completed":
                        break
        assert seen[0] == "pending" and "in-progress" in seen
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await anext(their_events)


async def test_stream_needs_credentials(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as http:
        assert (await http.get("/events/stream")).status_code == 401
