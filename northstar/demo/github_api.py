"""A fake GitHub (REST API ``2022-11-28``): an owner's repositories, pull requests with reviews and commits,
deployments and their statuses, releases and issues, answered as GitHub answers them.

Lists take ``page`` and ``per_page`` (at most 100) and answer a ``Link`` header with ``rel="next"`` and
``rel="last"``; pull requests take ``state``, ``sort`` (``created``, ``updated``) and ``direction``; issues take
``state``, ``since``, ``sort`` and ``direction`` and, as on GitHub, list pull requests too (with a ``pull_request``
key). Every answer has a weak ``ETag``; a request whose ``If-None-Match`` matches it is answered 304 without a body
and, as GitHub does, without using the rate limit. The primary rate limit is ``limit`` requests a
``window_seconds`` window, stated on every answer (``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` in epoch
seconds); a request past it is a 403 "API rate limit exceeded" (``forge_api.StatedLimit``). Bad tokens are 401s;
faults on demand come from ``FakeVendor`` (the tests and the benchmark serve it on loopback with
``loopback.serving``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from northstar.demo.forge_api import StatedLimit
from northstar.demo.vendor_api import FakeVendor

DOCS = "https://docs.github.com/rest"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature-256`` of a delivery."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class FakeGitHub:
    """One GitHub account's view of an owner; tests and benchmarks add objects and change them between syncs."""

    token: str = field(default_factory=lambda: "ghp_" + uuid.uuid4().hex)
    owner: str = "acme"
    limit: int = 5000
    window_seconds: float = 3600.0
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)  # full name -> repository
    pulls: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    reviews: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    commits: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    issues: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    deployments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    releases: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.stated = StatedLimit(
            self.limit,
            self.window_seconds,
            prefix="X-RateLimit-",
            refusal=403,
            refusal_body={"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS},
        )
        repo = "/repos/{owner}/{repo}"
        self.vendor = FakeVendor(
            routes=[
                Route("/orgs/{owner}/repos", self._repos),
                Route("/users/{owner}/repos", self._repos),
                Route(repo + "/pulls", self._pulls),
                Route(repo + "/pulls/{number:int}", self._pull),
                Route(repo + "/pulls/{number:int}/reviews", self._reviews),
                Route(repo + "/pulls/{number:int}/commits", self._commits),
                Route(repo + "/issues", self._issues),
                Route(repo + "/deployments", self._deployments),
                Route(repo + "/deployments/{id:int}/statuses", self._statuses),
                Route(repo + "/releases", self._releases),
            ],
            authorised=lambda request: (
                request.headers.get("authorization")
                in (
                    f"Bearer {self.token}",
                    f"token {self.token}",
                )
            ),
        )

    @property
    def app(self) -> ASGIApp:
        return self.vendor.app

    # -- building the account --------------------------------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        return {"login": login, "id": int(hashlib.sha1(login.encode()).hexdigest()[:8], 16), "type": "User"}  # noqa: S324

    def add_repo(self, name: str, *, created: dt.datetime | None = None) -> dict[str, Any]:
        full = f"{self.owner}/{name}"
        moment = iso(created or dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        self.repos[full] = {
            "id": next(self._ids),
            "name": name,
            "full_name": full,
            "private": True,
            "owner": self._user(self.owner),
            "html_url": f"https://github.com/{full}",
            "default_branch": "main",
            "archived": False,
            "created_at": moment,
            "updated_at": moment,
        }
        return self.repos[full]

    def add_pull(
        self,
        repo: str,
        *,
        created: dt.datetime,
        author: str = "dev",
        first_commit: dt.datetime | None = None,
        reviews: Sequence[tuple[str, dt.datetime]] = (),
        merged: dt.datetime | None = None,
        closed: dt.datetime | None = None,
        title: str | None = None,
        body: str | None = None,
    ) -> dict[str, Any]:
        full = f"{self.owner}/{repo}"
        number = len(self.pulls[full]) + len(self.issues[full]) + 1
        pull_id = next(self._ids)
        closed = closed or merged
        moments = [created, *(at for _, at in reviews), *(moment for moment in (merged, closed) if moment)]
        pull: dict[str, Any] = {
            "id": pull_id,
            "number": number,
            "state": "closed" if closed else "open",
            "title": title or f"Change {number}",
            "body": body,
            "user": self._user(author),
            "html_url": f"https://github.com/{full}/pull/{number}",
            "created_at": iso(created),
            "updated_at": iso(max(moments)),
            "closed_at": iso(closed) if closed else None,
            "merged_at": iso(merged) if merged else None,
            "merge_commit_sha": hashlib.sha1(str(pull_id).encode()).hexdigest() if merged else None,  # noqa: S324
            "requested_reviewers": [],
            "base": {"ref": "main", "repo": {"id": self.repos[full]["id"], "full_name": full}},
            "head": {"ref": f"change-{number}"},
        }
        self.pulls[full][number] = pull
        self.reviews[(full, number)] = [
            {"id": next(self._ids), "user": self._user(login), "state": "APPROVED", "submitted_at": iso(at)}
            for login, at in reviews
        ]
        start = first_commit or created
        self.commits[(full, number)] = [
            {
                "sha": hashlib.sha1(f"{pull_id}-{index}".encode()).hexdigest(),  # noqa: S324
                "commit": {"author": {"name": author, "date": iso(start + dt.timedelta(minutes=index))}},
            }
            for index in range(2)
        ]
        return pull

    def update_pull(self, repo: str, number: int, *, at: dt.datetime, **changes: Any) -> None:
        pull = self.pulls[f"{self.owner}/{repo}"][number]
        pull.update({key: iso(value) if isinstance(value, dt.datetime) else value for key, value in changes.items()})
        if changes.get("merged_at") or changes.get("closed_at"):
            pull["state"] = "closed"
        pull["updated_at"] = iso(at)

    def add_deployment(
        self,
        repo: str,
        *,
        created: dt.datetime,
        environment: str = "production",
        statuses: list[tuple[str, dt.datetime]],
    ) -> dict[str, Any]:
        """A deployment and its statuses, oldest first as they happened (GitHub lists them newest first)."""
        full = f"{self.owner}/{repo}"
        deployment: dict[str, Any] = {
            "id": next(self._ids),
            "sha": hashlib.sha1(str(created).encode()).hexdigest(),  # noqa: S324
            "ref": "main",
            "task": "deploy",
            "environment": environment,
            "production_environment": environment == "production",
            "creator": self._user("deploy-bot"),
            "created_at": iso(created),
            "updated_at": iso(created),
        }
        self.deployments[full].insert(0, deployment)
        self.deployments[full].sort(key=lambda item: item["created_at"], reverse=True)
        for state, at in statuses:
            self.add_status(deployment["id"], state, at)
        return deployment

    def add_status(self, deployment_id: int, state: str, at: dt.datetime) -> None:
        self.statuses[deployment_id].insert(0, {"id": next(self._ids), "state": state, "created_at": iso(at)})

    def add_issue(
        self,
        repo: str,
        *,
        created: dt.datetime,
        closed: dt.datetime | None = None,
        labels: tuple[str, ...] = (),
        assignee: str | None = None,
        not_planned: bool = False,
        title: str | None = None,
    ) -> dict[str, Any]:
        full = f"{self.owner}/{repo}"
        number = len(self.pulls[full]) + len(self.issues[full]) + 1
        issue = {
            "id": next(self._ids),
            "number": number,
            "title": title or f"Issue {number}",
            "body": None,
            "state": "closed" if closed else "open",
            "state_reason": ("not_planned" if not_planned else "completed") if closed else None,
            "labels": [{"id": index, "name": label} for index, label in enumerate(labels)],
            "assignee": self._user(assignee) if assignee else None,
            "assignees": [self._user(assignee)] if assignee else [],
            "user": self._user("reporter"),
            "html_url": f"https://github.com/{full}/issues/{number}",
            "created_at": iso(created),
            "updated_at": iso(closed or created),
            "closed_at": iso(closed) if closed else None,
        }
        self.issues[full][number] = issue
        return issue

    def add_release(self, repo: str, *, published: dt.datetime, tag: str, draft: bool = False) -> dict[str, Any]:
        full = f"{self.owner}/{repo}"
        release = {
            "id": next(self._ids),
            "tag_name": tag,
            "name": tag,
            "draft": draft,
            "prerelease": False,
            "created_at": iso(published),
            "published_at": None if draft else iso(published),
        }
        self.releases[full].insert(0, release)
        return release

    # -- answering -------------------------------------------------------------------------------------------------

    @property
    def not_modified(self) -> int:
        return self.stated.not_modified

    @property
    def limited(self) -> int:
        return self.stated.limited

    def _answer(self, request: Request, body: Any, *, paged: bool = False) -> Response:
        self.stated.limit = self.limit  # a test may change the limit between syncs
        return self.stated.answer(request, body, paged=paged)

    def _missing(self) -> Response:
        return self.stated.missing({"message": "Not Found", "documentation_url": DOCS})

    def _full(self, request: Request) -> str | None:
        full = f"{request.path_params['owner']}/{request.path_params['repo']}"
        return full if full in self.repos else None

    async def _repos(self, request: Request) -> Response:
        if request.path_params["owner"] != self.owner:
            return self._missing()
        return self._answer(request, sorted(self.repos.values(), key=lambda repo: repo["full_name"]), paged=True)

    async def _pulls(self, request: Request) -> Response:
        full = self._full(request)
        if full is None:
            return self._missing()
        state = request.query_params.get("state", "open")
        found = [pull for pull in self.pulls[full].values() if state == "all" or pull["state"] == state]
        key = "updated_at" if request.query_params.get("sort") == "updated" else "created_at"
        descending = request.query_params.get("direction", "desc") == "desc"
        found.sort(key=lambda pull: (pull[key], pull["number"]), reverse=descending)
        return self._answer(request, found, paged=True)

    async def _pull(self, request: Request) -> Response:
        full = self._full(request)
        pull = self.pulls[full].get(request.path_params["number"]) if full else None
        return self._missing() if pull is None else self._answer(request, {**pull, "additions": 10, "deletions": 2})

    async def _reviews(self, request: Request) -> Response:
        full = self._full(request)
        if full is None or request.path_params["number"] not in self.pulls[full]:
            return self._missing()
        return self._answer(request, self.reviews[(full, request.path_params["number"])], paged=True)

    async def _commits(self, request: Request) -> Response:
        full = self._full(request)
        if full is None or request.path_params["number"] not in self.pulls[full]:
            return self._missing()
        return self._answer(request, self.commits[(full, request.path_params["number"])], paged=True)

    async def _issues(self, request: Request) -> Response:
        full = self._full(request)
        if full is None:
            return self._missing()
        state = request.query_params.get("state", "open")
        since = request.query_params.get("since")
        as_issues = [
            {**pull, "pull_request": {"url": pull["html_url"]}, "labels": [], "assignees": []}
            for pull in self.pulls[full].values()
        ]
        found = [
            issue
            for issue in [*self.issues[full].values(), *as_issues]
            if (state == "all" or issue["state"] == state) and (since is None or issue["updated_at"] >= since)
        ]
        key = "updated_at" if request.query_params.get("sort") == "updated" else "created_at"
        found.sort(
            key=lambda issue: (issue[key], issue["number"]), reverse=request.query_params.get("direction") != "asc"
        )
        return self._answer(request, found, paged=True)

    async def _deployments(self, request: Request) -> Response:
        full = self._full(request)
        return self._missing() if full is None else self._answer(request, self.deployments[full], paged=True)

    async def _statuses(self, request: Request) -> Response:
        if self._full(request) is None:
            return self._missing()
        return self._answer(request, self.statuses[request.path_params["id"]], paged=True)

    async def _releases(self, request: Request) -> Response:
        full = self._full(request)
        return self._missing() if full is None else self._answer(request, self.releases[full], paged=True)
