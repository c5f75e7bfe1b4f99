"""What every connector is: streams of pages with cursors, and HTTP that respects the vendor's limits.

A connector turns a provider's API into ``Page``s of records, each page carrying the cursor to resume after it; the
sync job stores a page's records, whatever they normalise into, and the cursor in one transaction, so a sync killed
at any point resumes after its last stored page and never stores a record twice. Connectors register in
``northstar.integrations.connectors`` (the plugin registry) by provider name.

``VendorClient`` is the HTTP side: every request goes through the SSRF-guarded client, waits for the provider's rate
limit (a token bucket per integration), and retries 429s (honouring ``Retry-After``) and 5xx answers with exponential
backoff; answers are read as JSON (``request_json``) or JSON lines (``request_lines``), and one that does not parse
is retried, then a ``VendorError`` naming the request, never a crash. ``request_answer`` keeps the headers too:
``Link`` paging and conditional requests (``ETag``), for providers that page and cache that way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from northstar.core.outbound import BlockedDestination, OutboundPolicy, outbound_client
from northstar.devbizops.inputs import EngineeringBatch, Ticket
from northstar.metrics.inputs import SourceBatch

T = TypeVar("T")


class Signature(enum.Enum):
    """What checking a webhook delivery's signature found."""

    VALID = "valid"
    INVALID = "invalid"  # missing, malformed, or not made with the integration's secret
    EXPIRED = "expired"  # made with the secret, but dated outside the provider's tolerance: a replay or a late retry


class ConnectorError(Exception):
    """A sync cannot go on; the message is shown to the merchant (no secrets in it)."""


class CredentialsRejected(ConnectorError):
    """The provider refused the credentials (401/403): the integration needs new ones."""


class VendorError(ConnectorError):
    """The provider answered in a way that cannot be used, after retries."""


@dataclass(frozen=True)
class Page:
    """Records of one stream and the cursor that resumes after them (``None``: the stream is done for now).

    ``fetched`` is how many items the provider sent for the page, when they are not its records: Stripe's events are
    read, and the objects they carry are stored under their own streams."""

    stream: str
    records: list[dict[str, Any]]
    cursor: dict[str, Any] | None
    fetched: int | None = None


@dataclass
class RateLimit:
    """A token bucket: ``per_second`` sustained, ``burst`` at once."""

    per_second: float
    burst: int = 1
    tokens: float = field(init=False)
    updated: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.per_second)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.per_second)


class VendorClient:
    """HTTP to one provider account: rate-limited, retried, SSRF-guarded."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        policy: OutboundPolicy,
        rate: RateLimit,
        retries: int = 5,
        backoff_seconds: float | None = None,
        stated: Callable[[httpx.Response], Budget | None] | None = None,
        max_wait_seconds: float = 60.0,
    ) -> None:
        self.http = outbound_client(policy, base_url=base_url, headers=dict(headers))
        self.rate = rate
        self.retries = retries
        self.backoff_seconds = policy.retry_backoff_seconds if backoff_seconds is None else backoff_seconds
        # A provider that states its budget on every answer (GitHub's X-RateLimit-*): ``stated`` reads it. Requests
        # are counted against it as they are sent, so requests in flight do not overrun it, and once it is spent the
        # next ones wait for its reset; a refusal for a spent budget is waited out and asked again, and a reset
        # further ahead than ``max_wait_seconds`` ends the sync, which resumes from its cursor later.
        self.stated = stated
        self.max_wait_seconds = max_wait_seconds
        self.remaining: int | None = None
        self.reset_at = 0.0
        self.in_flight = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def request_json(self, method: str, path: str, **options: Any) -> Any:
        """The answer's JSON body."""
        return await self._request(method, path, lambda response: _json(response.content), **options)

    async def request_lines(self, method: str, path: str, **options: Any) -> list[Any]:
        """The answer's JSON lines (JSONL, one value a line; blank lines skipped), retried like ``request_json``."""
        return await self._request(method, path, lambda response: _json_lines(response.content), **options)

    async def request_answer(self, method: str, path: str, *, etag: str | None = None, **options: Any) -> Answer:
        """The answer's JSON body with its headers; with ``etag``, a conditional request (``If-None-Match``) whose
        304 answer is an ``Answer`` without a body."""
        if etag is not None:
            options["headers"] = {**options.get("headers", {}), "If-None-Match": etag}
        return await self._request(method, path, _answer, **options)

    async def _request(self, method: str, path: str, read: Callable[[httpx.Response], T], **options: Any) -> T:
        for attempt in range(self.retries + 1):
            await self._take_budget()
            await self.rate.wait()
            self.in_flight += 1
            try:
                response = await self.http.request(method, path, **options)
            except BlockedDestination as exc:
                raise ConnectorError(exc.message) from None
            except httpx.HTTPError as exc:
                if attempt == self.retries:
                    raise VendorError(f"{method} {path}: {type(exc).__name__}") from None
                await self._pause(attempt, None)
                continue
            finally:
                self.in_flight -= 1
            budget = self.stated(response) if self.stated is not None else None
            if budget is not None:
                self._note(budget)
                if response.status_code >= 400 and (budget.remaining == 0 or budget.retry_after is not None):
                    if attempt == self.retries:
                        raise VendorError(f"{method} {path}: rate limited after {attempt + 1} attempts")
                    continue
            if response.status_code in (401, 403):
                raise CredentialsRejected(f"the provider refused the credentials ({response.status_code})")
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    raise VendorError(f"{method} {path}: {response.status_code} after {attempt + 1} attempts")
                await self._pause(attempt, response.headers.get("retry-after"))
                continue
            if response.status_code >= 400:
                raise VendorError(f"{method} {path}: {response.status_code} {_error_text(response)}")
            try:
                return read(response)
            except _Unreadable as exc:
                if attempt == self.retries:
                    raise VendorError(f"{method} {path}: {exc}") from None
                await self._pause(attempt, None)
        raise VendorError(f"{method} {path}: no answer")

    def _note(self, budget: Budget) -> None:
        """What the provider says is left, less what is in flight; a later reset is a new window."""
        now = time.monotonic()
        if budget.retry_after is not None:
            self.remaining, self.reset_at = 0, max(self.reset_at, now + budget.retry_after)
            return
        reset_at, left = now + budget.reset_in, budget.remaining - self.in_flight
        if self.remaining is None or reset_at > self.reset_at + 1.0:
            self.remaining, self.reset_at = left, reset_at
        else:
            self.remaining = min(self.remaining, left)

    async def _take_budget(self) -> None:
        """Count a request against the stated budget; while it is spent, wait for its reset (or stop the sync if
        that is too far ahead)."""
        while self.remaining is not None and self.remaining <= 0:
            wait = self.reset_at - time.monotonic()
            if wait <= 0:
                self.remaining = None
                break
            if wait > self.max_wait_seconds:
                raise VendorError(
                    f"the provider's rate limit allows the next request in {wait:.0f} s; the next sync resumes here"
                )
            await asyncio.sleep(wait)
        if self.remaining is not None:
            self.remaining -= 1

    async def _pause(self, attempt: int, retry_after: str | None) -> None:
        if retry_after is not None:
            try:
                await asyncio.sleep(min(float(retry_after), 60.0))
                return
            except ValueError:
                pass
        ceiling = self.backoff_seconds * 2**attempt
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not a secret


@dataclass(frozen=True)
class Budget:
    """What a provider's answer says of its rate limit: requests left and seconds until the window is refilled, or
    for a refusal of a secondary limit, the seconds to wait (``retry_after``)."""

    remaining: int
    reset_in: float
    retry_after: float | None = None


@dataclass(frozen=True)
class Answer:
    """A provider's answer: its JSON body (``None`` for a 304 Not Modified) and headers."""

    body: Any
    headers: httpx.Headers
    next_url: str | None  # the ``Link`` header's rel="next"

    @property
    def not_modified(self) -> bool:
        return self.body is None


def _answer(response: httpx.Response) -> Answer:
    following = response.links.get("next", {}).get("url")
    body = None if response.status_code == 304 else _json(response.content)
    return Answer(body, response.headers, str(following) if following else None)


class _Unreadable(Exception):
    """An answer that does not parse: retried, as a cut-off transfer reads like one."""


def _json(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise _Unreadable("the answer is not JSON") from None


def _json_lines(content: bytes) -> list[Any]:
    values = []
    for number, line in enumerate(content.splitlines(), start=1):
        if line.strip():
            try:
                values.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                raise _Unreadable(f"line {number} of the answer is not JSON") from None
    return values


def _error_text(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")  # {"error": {"message"}} (Stripe, Google), {"error": "…"}, or {"message"} (HubSpot)
    message = (
        error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else body.get("message")
    )
    return str(message)[:300] if message else ""


def without_nul(value: Any) -> Any:
    """The value without NUL characters (vendors send them; PostgreSQL text and jsonb cannot hold them)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


class ConnectorSettings(BaseModel):
    """An integration's ``config`` (camelCase on the wire, stored snake_case): what every provider takes. Each
    connector extends it; it is checked whenever an integration is connected or changed, so a stored config is
    valid and a wrong one is a 422 naming the field, never a failure in the middle of a sync."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        max_length=500,
        description="the provider's API (a proxy, a regional endpoint, a test server)",
    )
    requests_per_second: float | None = Field(None, gt=0, le=1000, description="below the provider's limit")
    sync_every_minutes: int = Field(60, ge=5, le=7 * 24 * 60, description="how often scheduled syncs run")


Settings = TypeVar("Settings", bound=ConnectorSettings)


def paced_client(
    settings: ConnectorSettings,
    policy: OutboundPolicy,
    *,
    base_url: str,
    headers: Mapping[str, str],
    stated: Callable[[httpx.Response], Budget | None] | None = None,
    max_wait_seconds: float = 60.0,
) -> VendorClient:
    """A provider's client at the settings' pace: ``requestsPerSecond`` sustained, a second's worth at once."""
    rate = settings.requests_per_second or 1.0
    return VendorClient(
        base_url=base_url,
        policy=policy,
        headers=headers,
        rate=RateLimit(rate, burst=max(1, int(rate))),
        stated=stated,
        max_wait_seconds=max_wait_seconds,
    )


def settings_problems(error: ValidationError) -> list[tuple[str, str, str]]:
    """(camelCase field path, message, type) of each problem a config has."""
    return [
        (".".join(to_camel(str(part)) for part in problem["loc"]), problem["msg"], problem["type"])
        for problem in error.errors()
    ]


def validated(model: type[Settings], config: Mapping[str, Any]) -> Settings:
    """A stored config as its connector's settings (stored configs were validated when saved)."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        found = "; ".join(f"config.{field}: {message}" for field, message, _ in settings_problems(exc))
        raise ConnectorError(f"The settings are not usable: {found}") from None


class Connector(ABC):
    """One provider. ``streams`` are synced in order; ``pages`` yields pages from a stream's cursor."""

    provider: ClassVar[str]
    title: ClassVar[str]  # the provider's name as people write it
    streams: ClassVar[tuple[str, ...]]
    credential_fields: ClassVar[tuple[str, ...]]  # the first is required
    settings_model: ClassVar[type[ConnectorSettings]] = ConnectorSettings

    def __init__(self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient) -> None:
        self.credentials = credentials
        self.config = config
        self.client = client

    @classmethod
    @abstractmethod
    def open(cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy) -> Connector:
        """The connector with its HTTP client (base URL from ``config`` or the provider's)."""

    @abstractmethod
    async def test(self) -> None:
        """Raise ``ConnectorError`` unless the credentials work (one cheap request)."""

    @abstractmethod
    def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        """The stream's pages after ``cursor`` (``None``: from the beginning). A page may carry records of another
        stream (events carry the objects they changed); its cursor always belongs to ``stream``."""

    def plan(self, state: Mapping[str, Any], now: dt.datetime) -> tuple[list[str], dict[str, Any]]:
        """The streams to sync now, and the state to start from (a connector may reset cursors here)."""
        return list(self.streams), dict(state)

    def finish(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The state once every planned stream is done."""
        return dict(state)

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        """The billing data in a page's records (none, for providers that are not billing systems)."""
        return SourceBatch()

    engineering_source: ClassVar[bool] = False  # its records feed DevBizOps' engineering model
    files_tickets: ClassVar[bool] = False  # approved DevBizOps proposals can be filed in it (``create_issue``)

    def engineering(self, stream: str, records: list[dict[str, Any]]) -> EngineeringBatch:
        """The engineering data in a page's records (none, for providers that are not engineering systems)."""
        return EngineeringBatch()

    async def create_issue(self, ticket: Ticket) -> tuple[str, dict[str, Any]]:
        """File ``ticket`` in the tracker; the (stream, record) of the issue made, as a sync reads it."""
        raise ConnectorError(f"{self.title} does not take tickets; choose a Jira or Linear integration")

    async def comment_issue(self, external_id: str, key: str, text: str) -> None:
        """Add ``text`` to an existing issue (its id at the source and its key) as a comment."""
        raise ConnectorError(f"{self.title} does not take comments on its issues")

    signature_header: ClassVar[str | None] = None  # where the provider puts a delivery's signature

    @classmethod
    def verify_webhook(cls, body: bytes, headers: Mapping[str, str], credentials: Mapping[str, str]) -> Signature:
        """Whether a delivery is signed with the integration's ``webhook_secret`` (providers without webhooks:
        never), and recently enough."""
        secret = credentials.get("webhook_secret")
        signature = headers.get(cls.signature_header) if cls.signature_header else None
        if not (secret and signature):
            return Signature.INVALID
        return cls.check_signature(body, str(signature), str(secret))

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        """The provider's signature scheme."""
        return Signature.INVALID

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        """A verified delivery's event id (what makes a replay a duplicate) and topic, from its body or headers."""
        raise ConnectorError(f"{cls.provider} sends no webhooks")

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        """The (stream, record) a delivery of ``topic`` carries, completed from the API if needed; None if it carries
        none."""
        return None

    async def close(self) -> None:
        await self.client.close()
