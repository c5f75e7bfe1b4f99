"""Slack, faked: incoming webhooks (``POST /services/T…/B…/…``) and the Web API's ``chat.postMessage`` for bot
tokens, checking what Slack checks.

A webhook answers ``ok`` (text) or Slack's error texts: 404 ``no_service`` for an unknown hook, 400
``invalid_payload`` for a body that is not a message. ``chat.postMessage`` needs ``Authorization: Bearer`` with a
known bot token and answers 200 with ``{"ok": true, "channel", "ts", "message"}``, or ``{"ok": false, "error"}``
(``not_authed``, ``invalid_auth``, ``channel_not_found``, ``invalid_blocks``), as Slack does. Every message's Block
Kit structure is checked against the documented limits (at most 50 blocks; a header's plain text up to 150
characters, a section's text up to 3000; known block and element types; buttons with a URL), and the messages that
arrived are kept per channel. Faults (503s) come from ``FakeVendor``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from northstar.demo.vendor_api import FakeVendor

POST_MESSAGE = "/api/chat.postMessage"
HOOKS = "/services/"
BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def block_kit_problems(message: Any) -> list[str]:
    """What Slack would refuse in a message's ``text`` and ``blocks`` (empty when it would take it)."""
    if not isinstance(message, dict):
        return ["not an object"]
    problems = []
    if not isinstance(message.get("text"), str) or not message["text"]:
        problems.append("text: a fallback text is required with blocks")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return [*problems, "blocks: 1 to 50 blocks"]
    for position, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        where = f"blocks[{position}]"
        if kind not in BLOCK_TYPES:
            problems.append(f"{where}: unknown type {kind!r}")
        elif kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 1 <= len(text.get("text", "")) <= 150:
                problems.append(f"{where}: a header is plain_text of 1 to 150 characters")
        elif kind == "section":
            text = block.get("text", {})
            if text.get("type") not in ("plain_text", "mrkdwn") or not 1 <= len(text.get("text", "")) <= 3000:
                problems.append(f"{where}: a section's text is 1 to 3000 characters")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 1 <= len(elements) <= 10 or any(e.get("type") not in ("mrkdwn", "plain_text") for e in elements):
                problems.append(f"{where}: a context has 1 to 10 text elements")
        elif kind == "actions":
            for element in block.get("elements", []):
                if element.get("type") != "button" or not str(element.get("url", "")).startswith(
                    ("http://", "https://")
                ):
                    problems.append(f"{where}: buttons with a URL")
    return problems


@dataclass
class FakeSlack:
    """A workspace with one incoming webhook and one bot token that may post to ``channels``."""

    channels: set[str] = field(default_factory=lambda: {"C0ALERTS"})
    hook_path: str = field(default_factory=lambda: f"{HOOKS}T0000/B0000/{secrets.token_hex(12)}")
    bot_token: str = field(default_factory=lambda: f"xoxb-{secrets.token_hex(12)}")
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (channel or "webhook", message)
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.vendor = FakeVendor(
            routes=[
                Route(POST_MESSAGE, self.post_message, methods=["POST"]),
                Route(f"{HOOKS}{{path:path}}", self.webhook, methods=["POST"]),
            ],
            authorised=lambda request: True,  # Slack answers its own errors, below
        )

    def webhook_url(self, base_url: str) -> str:
        return f"{base_url}{self.hook_path}"

    def messages(self, where: str = "webhook") -> list[dict[str, Any]]:
        return [message for channel, message in self.received if channel == where]

    async def webhook(self, request: Request) -> Response:
        if request.url.path != self.hook_path:
            return PlainTextResponse("no_service", status_code=404)
        try:
            message = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if block_kit_problems(message):
            return PlainTextResponse("invalid_blocks", status_code=400)
        self.received.append(("webhook", message))
        return PlainTextResponse("ok")

    async def post_message(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        try:
            message = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_json"})
        if message.get("channel") not in self.channels:
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        if block_kit_problems({key: value for key, value in message.items() if key != "channel"}):
            return JSONResponse({"ok": False, "error": "invalid_blocks"})
        self.received.append((message["channel"], message))
        ts = f"{len(self.received)}.000100"
        return JSONResponse({"ok": True, "channel": message["channel"], "ts": ts, "message": {"ts": ts}})
