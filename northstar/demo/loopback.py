"""An ASGI app behind uvicorn on a loopback port, for as long as a block runs.

The demo seed serves its generated Stripe account this way while the connector syncs it, and the tests serve their
fake vendors and browsers' pages the same way (streaming responses and browsers need a real server).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """The app on a loopback port, its base URL yielded; give the port when the app must know its own address
    beforehand."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event to wait on
        if task.done():
            task.result()  # it could not start: say why
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class SelfAddressed(Protocol):
    """A fake that names its own address in what it answers (an identity provider's issuer and endpoints)."""

    @property
    def app(self) -> ASGIApp: ...

    def serve_at(self, base_url: str) -> None: ...


@asynccontextmanager
async def serving_at_its_address(fake: SelfAddressed) -> AsyncIterator[str]:
    """The fake told its address on a free loopback port, then served there."""
    port = free_port()
    fake.serve_at(f"http://127.0.0.1:{port}")
    async with serving(fake.app, port=port) as url:
        yield url
