"""Outbound HTTP to user-given addresses: https only, no private or metadata targets, no redirects, size limits."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from northstar.core.outbound import BlockedDestination, OutboundPolicy, ResponseTooLarge, outbound_client
from northstar.demo.loopback import serving


async def _echo(request: Request) -> Response:
    return JSONResponse({"host": request.headers["host"], "path": request.url.path})


async def _redirect(request: Request) -> Response:
    return RedirectResponse("http://169.254.169.254/latest/meta-data/")


async def _big(request: Request) -> Response:
    return Response(b"x" * 5000)


def _deflated(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


async def _encoded(request: Request) -> Response:
    """``?size=`` bytes of ``x`` sent compressed as ``?encoding=``; the accepted encodings echoed back."""
    body = b"x" * int(request.query_params["size"])
    encoding = request.query_params["encoding"]
    compressed = {
        "gzip": lambda: gzip.compress(body),
        "gzip, gzip": lambda: gzip.compress(gzip.compress(body)),
        "deflate": lambda: _deflated(body, zlib.MAX_WBITS),
        "raw-deflate": lambda: _deflated(body, -zlib.MAX_WBITS),
        "br": lambda: body,
    }[encoding]()
    return Response(
        compressed,
        headers={
            "content-encoding": encoding.replace("raw-", ""),
            "x-accepted": request.headers.get("accept-encoding", ""),
        },
    )


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[str]:
    app = Starlette(
        routes=[Route("/echo", _echo), Route("/redirect", _redirect), Route("/big", _big), Route("/encoded", _encoded)]
    )
    async with serving(app) as url:
        yield url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",  # not https
        "https://127.0.0.1/",
        "https://localhost/",
        "https://10.1.2.3/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://192.168.0.1:8443/",
    ],
)
async def test_private_and_plain_destinations_are_refused(url: str) -> None:
    async with outbound_client(OutboundPolicy()) as client:
        with pytest.raises(BlockedDestination):
            await client.get(url)


async def test_an_allowed_destination_keeps_its_name_and_redirects_are_not_followed(receiver: str) -> None:
    policy = OutboundPolicy(allow_private_networks=True, allow_http=True, max_response_bytes=1000)
    port = receiver.rsplit(":", 1)[1]
    async with outbound_client(policy) as client:
        echoed = await client.get(f"http://localhost:{port}/echo")
        assert echoed.json() == {"host": f"localhost:{port}", "path": "/echo"}
        redirected = await client.get(f"{receiver}/redirect")
        assert redirected.status_code == 307 and "169.254.169.254" in redirected.headers["location"]
        with pytest.raises(ResponseTooLarge):
            await client.get(f"{receiver}/big")


async def test_names_that_do_not_resolve_are_refused() -> None:
    async with outbound_client(OutboundPolicy()) as client:
        with pytest.raises(BlockedDestination, match="does not resolve"):
            await client.get("https://no-such-host.invalid/")


async def test_compressed_answers_are_limited_once_decompressed(receiver: str) -> None:
    """900 kB of gzip-compressed x is under a kilobyte on the wire: the limit counts what it expands to."""
    policy = OutboundPolicy(allow_private_networks=True, allow_http=True, max_response_bytes=1000)
    async with outbound_client(policy) as client:
        for encoding in ("gzip", "deflate", "raw-deflate"):
            with pytest.raises(ResponseTooLarge):
                await client.get(f"{receiver}/encoded", params={"size": 900_000, "encoding": encoding})
            small = await client.get(f"{receiver}/encoded", params={"size": 1000, "encoding": encoding})
            assert small.content == b"x" * 1000 and small.headers["x-accepted"] == "gzip, x-gzip, deflate"
        for refused in ("gzip, gzip", "br"):
            with pytest.raises(httpx.DecodingError, match="not accepted"):
                await client.get(f"{receiver}/encoded", params={"size": 10, "encoding": refused})
