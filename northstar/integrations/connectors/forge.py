"""What the code-hosting connectors share (GitHub, GitLab): streams read repository by repository, pages followed
through the ``Link`` header, first pages asked conditionally, and the budget the provider states on its answers.

A stream's cursor keeps, per repository, its high-water mark (``since``) and its first page's ETag (``etags``), and
``at``: the repository and the next page's path and query where a sync stopped, with the mark that repository will
get once it is done (``newest``). Repositories are read in name order, so a resumed sync skips the ones done before
it stopped and starts the one it stopped in at that page.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NamedTuple

import httpx

from northstar.integrations.connectors.base import Answer, Budget, Page, VendorClient, VendorError


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
