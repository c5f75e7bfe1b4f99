"""What the code-hosting connectors share (GitHub, GitLab): streams read repository by repository, pages followed
through the ``Link`` header, first pages asked conditionally, and the budget the provider states on its answers.

A stream's cursor keeps, per repository, its high-water mark (``since``) and its first page's ETag (``etags``), and
``at``: the repository and the next page's path and query where a sync stopped, with the mark that repository will
get once it is done (``newest``). Repositories are read in name order, so a resumed sync skips the ones done before
it stopped and starts the one it stopped in at that page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.parse
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, NamedTuple, Self

import httpx
from pydantic import Field

from northstar.core.outbound import OutboundPolicy
from northstar.integrations.connectors.base import (
    Answer,
    Budget,
    Connector,
    ConnectorSettings,
    Page,
    VendorClient,
    VendorError,
    paced_client,
    validated,
)


class ForgeSettings(ConnectorSettings):
    """What GitHub's and GitLab's configs share."""

    requests_per_second: float = Field(10.0, gt=0, le=1000)
    production_environments: list[str] = Field(
        default_factory=lambda: ["production", "prod"], max_length=50, description="deployment environments that ship"
    )
    incident_labels: list[str] = Field(
        default_factory=lambda: ["incident"], max_length=50, description="issue labels that make an issue an incident"
    )
    concurrency: int = Field(8, ge=1, le=32, description="requests in flight for a page's reviews and commits")
    max_wait_seconds: float = Field(60.0, ge=0, le=3600, description="the longest wait for a spent rate limit")


class ForgeConnector(Connector):
    """A code host's connector: its settings, requests in flight, and the budget headers it states."""

    engineering_source = True
    budget_headers: ClassVar[tuple[str, str]]  # (requests left, reset) header names
    settings: ForgeSettings

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        config: Mapping[str, Any],
        client: VendorClient,
        settings: ForgeSettings,
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.settings = settings
        self.limit = asyncio.Semaphore(settings.concurrency)
        self.production = {name.lower() for name in settings.production_environments}
        self.incident_labels = {name.lower() for name in settings.incident_labels}

    @classmethod
    def open(cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy) -> Self:
        settings = validated(cls.settings_model, config)
        assert isinstance(settings, ForgeSettings)
        client = paced_client(
            settings,
            policy,
            base_url=settings.base_url or "",
            headers=cls.headers_of(credentials),
            stated=budget_reader(*cls.budget_headers),
            max_wait_seconds=settings.max_wait_seconds,
        )
        return cls(credentials=credentials, config=config, client=client, settings=settings)

    @classmethod
    @abstractmethod
    def headers_of(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        """The headers every request carries: the token, the API version."""


class RepoPage(NamedTuple):
    """A page of one repository's stream: its records, the next page (None: the repository is done), the mark the
    repository gets once done, and the first page's ETag (None on later pages)."""

    records: list[dict[str, Any]]
    following: str | None
    mark: str | None
    etag: str | None


Reader = Callable[[dict[str, Any], str | None, Mapping[str, Any] | None, str | None], AsyncIterator[RepoPage]]


async def per_repository(
    stream: str,
    repositories: list[dict[str, Any]],
    name_of: Callable[[dict[str, Any]], str],
    cursor: Mapping[str, Any] | None,
    read: Reader,
) -> AsyncIterator[Page]:
    """The stream's pages over every repository, each with the cursor that resumes after it.

    ``read(repository, mark, resume, etag)`` yields a repository's pages from ``resume`` (the cursor's ``at`` when the
    sync stopped in it) or from its first page, asked with ``etag``."""
    state = dict(cursor or {})
    marks: dict[str, str] = dict(state.get("since", {}))
    etags: dict[str, str] = dict(state.get("etags", {}))
    at: dict[str, Any] = dict(state.get("at") or {})
    for repository in sorted(repositories, key=name_of):
        name = name_of(repository)
        resume = at if at.get("repo") == name else None
        if at and resume is None and name < str(at["repo"]):
            continue  # done before the sync stopped
        async for page in read(repository, marks.get(name), resume, etags.get(name)):
            if page.etag is not None:
                etags[name] = page.etag
            if page.following is None and page.mark is not None:
                marks[name] = page.mark
            where = None if page.following is None else {"repo": name, "page": page.following, "newest": page.mark}
            yield Page(stream, page.records, {"since": dict(marks), "etags": dict(etags), "at": where})


def resumed_page(resume: Mapping[str, Any] | None) -> str | None:
    return str(resume["page"]) if resume is not None and resume.get("page") else None


def relative(url: str) -> str:
    """A ``Link`` URL as the path and query to ask the configured base URL for (so a cursor survives a base URL
    change, and an absolute URL from the provider never chooses the host)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def listed(
    client: VendorClient, path: str, params: Mapping[str, Any], resume: str | None, etag: str | None
) -> AsyncIterator[tuple[Answer, list[dict[str, Any]]]]:
    """A listing's pages: from ``resume``, or from the first page asked with ``etag``; nothing when the provider
    answers that it has not changed (304)."""
    answer = await (
        client.request_answer("GET", resume)
        if resume
        else client.request_answer("GET", path, etag=etag, params=dict(params) or None)
    )
    while not answer.not_modified:
        if not isinstance(answer.body, list) or not all(isinstance(item, dict) for item in answer.body):
            raise VendorError(f"the provider sent a page of {path} that cannot be read")
        yield answer, answer.body
        if answer.next_url is None:
            return
        answer = await client.request_answer("GET", relative(answer.next_url))


def budget_reader(remaining: str, reset: str, *, reset_unit: float = 1.0) -> Callable[[httpx.Response], Budget | None]:
    """How a provider states its rate limit: requests left and the reset (epoch seconds, or ``reset_unit`` seconds:
    Linear's are milliseconds) in the named headers, and ``Retry-After`` on a refusal (403 or 429)."""

    def stated(response: httpx.Response) -> Budget | None:
        retry_after = response.headers.get("retry-after")
        if response.status_code in (403, 429) and retry_after:
            try:
                return Budget(0, 0.0, retry_after=max(0.0, float(retry_after)))
            except ValueError:
                return Budget(0, 0.0, retry_after=60.0)
        left, resets = response.headers.get(remaining), response.headers.get(reset)
        if left is None or resets is None or not left.isdigit():
            return None
        try:
            return Budget(int(left), max(0.0, float(resets) * reset_unit - time.time()))
        except ValueError:
            return None

    return stated


def instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 time ("2025-03-17T15:00:00Z", "2025-03-17T15:00:00.000+01:00") as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        found = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def required(record: Mapping[str, Any], name: str, what: str) -> dt.datetime:
    found = instant(record.get(name))
    if found is None:
        raise VendorError(f"the provider sent {what} {record.get('id')} without {name}")
    return found
