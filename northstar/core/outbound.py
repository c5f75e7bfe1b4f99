"""Outbound HTTP to addresses users give us (a Shopify store, a webhook receiver): SSRF-safe by construction.

The client's transport resolves the host itself, refuses private, loopback, link-local, multicast and reserved
addresses (cloud metadata endpoints among them), and connects to the address it checked (the name is kept for TLS
and the Host header), so a DNS answer that changes between check and connect cannot redirect the request. Only
``https`` is allowed, redirects are never followed, and responses are cut off at a size limit, counted after
decompression (gzip and deflate only). Tests (whose fake vendors listen on loopback over plain HTTP) opt in with
``allow_private_networks`` and ``allow_http``.

Webhook deliveries, posted by the thousand, go through ``posting_session`` instead: an aiohttp session under the
same policy (its resolver answers only with checked addresses, and addresses written in the URL are checked before
the request), which costs about a twentieth of httpx's CPU per request (docs/decisions.md). Its answers are read
only as far as the caller keeps them and are never decompressed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from northstar.core.http import AppError
from northstar.settings import OutboundSettings


class BlockedDestination(AppError):
    status, code = 422, "blocked_destination"


class ResponseTooLarge(httpx.HTTPError):
    """The remote answer exceeded the size limit (raised while reading it)."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_private_networks: bool = False
    allow_http: bool = False
    timeout_seconds: float = 30.0
    max_response_bytes: int = 50 * 1024 * 1024
    retry_backoff_seconds: float = 0.5  # a provider's first retry wait, doubled each attempt


def outbound_policy(config: OutboundSettings) -> OutboundPolicy:
    """The configured policy (``NORTHSTAR_OUTBOUND__*``): what connectors and notification channels reach."""
    return OutboundPolicy(
        allow_private_networks=config.allow_private_networks,
        allow_http=config.allow_http,
        timeout_seconds=config.timeout_seconds,
        max_response_bytes=config.max_response_bytes,
        retry_backoff_seconds=config.retry_backoff_seconds,
    )


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


async def resolve_checked(host: str, port: int, policy: OutboundPolicy) -> str:
    """The first address of ``host`` that may be reached, else ``BlockedDestination``."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise BlockedDestination(f"{host} does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if policy.allow_private_networks or _public(address):
            return address
    raise BlockedDestination(f"{host} resolves only to private or reserved addresses")


ACCEPTED_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class _LimitedStream(httpx.AsyncByteStream):
    """The body, decompressed here when it is gzip or deflate, cut off once it passes ``limit`` bytes.

    Counting only the bytes on the wire would let a small compressed answer expand past any limit when httpx
    decodes it, so a compressed body is decoded here, at most ``limit + 1`` bytes at a time, and counted after.
    """

    def __init__(self, stream: httpx.AsyncByteStream, limit: int, encoding: str | None) -> None:
        self.stream = stream
        self.limit = limit
        self.wbits = ACCEPTED_ENCODINGS[encoding] if encoding else None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = 0
        decoder = zlib.decompressobj(self.wbits) if self.wbits is not None else None
        raw_deflate = False
        async for chunk in self.stream:
            pending = chunk
            while pending:
                if decoder is None:
                    piece, pending = pending, b""
                else:
                    try:
                        piece = decoder.decompress(pending, self.limit - received + 1)
                    except zlib.error as exc:
                        if self.wbits != zlib.MAX_WBITS or received or raw_deflate:
                            raise httpx.DecodingError("the response is not valid gzip or deflate data") from exc
                        decoder, raw_deflate = zlib.decompressobj(-zlib.MAX_WBITS), True  # as some servers send it
                        continue
                    pending = decoder.unconsumed_tail
                received += len(piece)
                if received > self.limit:
                    raise ResponseTooLarge(f"the response exceeded {self.limit} bytes")
                if piece:
                    yield piece

    async def aclose(self) -> None:
        await self.stream.aclose()


class GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__(retries=0)
        self.policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        _checked_scheme(url, self.policy)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await resolve_checked(host, port, self.policy)
        request.url = url.copy_with(host=address)
        request.headers["Host"] = url.netloc.decode("ascii")
        request.extensions = {**request.extensions, "sni_hostname": host}
        request.headers["Accept-Encoding"] = ", ".join(ACCEPTED_ENCODINGS)
        response = await super().handle_async_request(request)
        if not isinstance(response.stream, httpx.AsyncByteStream):
            return response
        encoding = response.headers.get("content-encoding", "identity").strip().lower() or "identity"
        if encoding != "identity" and encoding not in ACCEPTED_ENCODINGS:
            await response.aclose()
            raise httpx.DecodingError(f"the response is encoded as {encoding!r}, which is not accepted")
        compressed = encoding != "identity"
        response.stream = _LimitedStream(
            response.stream, self.policy.max_response_bytes, encoding if compressed else None
        )
        if compressed:  # decoded by the stream: httpx must not decode it again, and the length is not the body's
            del response.headers["content-encoding"]
            response.headers.pop("content-length", None)
        return response


def outbound_client(
    policy: OutboundPolicy, *, base_url: str = "", headers: dict[str, str] | None = None
) -> httpx.AsyncClient:
    """An httpx client through the guarded transport; never follows redirects."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        follow_redirects=False,
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(policy.timeout_seconds),
    )


def _checked_scheme(url: URL | httpx.URL, policy: OutboundPolicy) -> None:
    if url.scheme != "https" and not (url.scheme == "http" and policy.allow_http):
        raise BlockedDestination(f"only https addresses are allowed, not {url.scheme}://")


class GuardedResolver(AbstractResolver):
    """aiohttp's name resolution under the policy: only addresses the policy allows, the first of which aiohttp
    connects to, so no second lookup can lead elsewhere."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = await resolve_checked(host, port, self.policy)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


_SESSIONS: dict[tuple[OutboundPolicy, int, asyncio.AbstractEventLoop], aiohttp.ClientSession] = {}


def posting_session(policy: OutboundPolicy, *, connections: int) -> aiohttp.ClientSession:
    """One session per policy and event loop, kept until ``close_posting_sessions``: its connections to receivers
    stay open between posts (keep-alive) and its TLS context is built once. At most ``connections`` at a time."""
    key = (policy, connections, asyncio.get_running_loop())
    session = _SESSIONS.get(key)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=connections)
        session = _SESSIONS[key] = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_seconds),
            auto_decompress=False,
            headers={"Accept-Encoding": "identity"},
        )
    return session


async def checked_destination(url: str, policy: OutboundPolicy) -> URL:
    """``url`` parsed, once its scheme is allowed and, when it names an address rather than a host, once that address
    is (aiohttp asks the resolver only for names)."""
    parsed = URL(url)
    _checked_scheme(parsed, policy)
    host = parsed.host or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return parsed
    await resolve_checked(host, parsed.port or 0, policy)
    return parsed


async def close_posting_sessions() -> None:
    """Close the sessions of the running event loop (a worker stopping)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _SESSIONS if key[2] is loop]:
        await _SESSIONS.pop(key).close()
