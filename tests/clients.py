"""What a client reads besides JSON: server-sent event streams and presigned downloads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx


async def sse_events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, data) of a server-sent event stream."""
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            yield event, json.loads(line.split(":", 1)[1])


async def download(uri: str) -> bytes:
    """Follow a ``resultUri`` as a browser would, with no credentials: a presigned link to the object store."""
    assert uri.startswith("http://127.0.0.1:") and "X-Amz-Signature=" in uri, uri
    async with httpx.AsyncClient() as browser:
        response = await browser.get(uri)
    assert response.status_code == 200, response.text
    return response.content
