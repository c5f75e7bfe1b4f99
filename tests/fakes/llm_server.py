"""A fake OpenAI-compatible chat-completions server whose answers a test scripts one by one.

``POST /v1/chat/completions`` takes ``model``, ``messages``, ``temperature`` and ``response_format`` and answers the
next scripted reply as OpenAI does: ``id``, ``object: "chat.completion"``, ``created``, ``model``, ``choices[0]``
(``message.content``, a string, and ``finish_reason``) and ``usage`` (``prompt_tokens``, ``completion_tokens``,
``total_tokens``). A reply is any content (valid JSON, broken JSON, JSON that breaks the caller's schema, or JSON
that states numbers it was never given: the fake judges nothing), an error status, or a stall that answers only when
the server stops (for timeouts). With ``json_schema=False`` it refuses ``response_format: json_schema`` with a 400,
as servers without structured outputs do. Every request's body is kept in ``requests``; with nothing scripted the
answer is a 500, so an unexpected call shows.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from northstar.demo.loopback import serving
from northstar.demo.vendor_api import FakeVendor

STALL_LIMIT_SECONDS = 60.0  # a stalled reply gives up by itself should the server never stop


@dataclass
class Reply:
    content: str = ""
    status: int = 200
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    stall: bool = False


@dataclass
class FakeLlm:
    """One server and model; tests queue replies with ``answer``, ``fail`` and ``stall``."""

    api_key: str = field(default_factory=lambda: "sk-test-" + uuid.uuid4().hex)
    model: str = "fake-model-1"
    json_schema: bool = True
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(
        self,
        content: Any,
        *,
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
        finish_reason: str = "stop",
    ) -> None:
        """Answer ``content``: a string as it is (broken JSON too), anything else as its JSON."""
        text = content if isinstance(content, str) else orjson.dumps(content).decode()
        self.replies.append(Reply(text, 200, finish_reason, prompt_tokens, completion_tokens))

    def fail(self, status: int = 500) -> None:
        self.replies.append(Reply(status=status))

    def stall(self) -> None:
        """Answer nothing until the server stops: the client's timeout runs out first."""
        self.replies.append(Reply(stall=True))

    def sent(self) -> str:
        """Every message's text the server was sent, for checking what left the platform."""
        return "\n".join(message["content"] for request in self.requests for message in request["messages"])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """The server on loopback while the block runs; yields its base URL (``…/v1``)."""
        vendor = FakeVendor(
            routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])],
            authorised=lambda request: request.headers.get("authorization") == f"Bearer {self.api_key}",
        )
        async with serving(vendor.app) as url:
            try:
                yield f"{url}/v1"
            finally:
                self._stopped.set()

    async def _complete(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        if not self.json_schema and body.get("response_format", {}).get("type") == "json_schema":
            return _error(400, "response_format json_schema is not supported", "invalid_request_error")
        if not self.replies:
            return _error(500, "no reply scripted", "server_error")
        reply = self.replies.popleft()
        if reply.stall:
            await asyncio.wait_for(self._stopped.wait(), STALL_LIMIT_SECONDS)
            return _error(503, "stopped", "server_error")
        if reply.status != 200:
            return _error(reply.status, "The server had an error while processing your request.", "server_error")
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.content},
                        "finish_reason": reply.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                },
            }
        )


def _error(status: int, message: str, kind: str) -> JSONResponse:
    """An error in OpenAI's shape."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status_code=status)
