"""A fake GitLab (REST API v4): a group's projects, merge requests with notes and commits, pipelines, deployments
and issues, answered as GitLab answers them.

Authentication is ``PRIVATE-TOKEN`` (or ``Authorization: Bearer``). Lists take ``page`` and ``per_page`` and answer
``Link`` and ``X-Total``; merge requests, pipelines, deployments and issues take ``updated_after``, ``order_by``
(``created_at``, ``updated_at``) and ``sort``; merge requests take ``state``, deployments ``environment``. The rate
limit is stated as ``RateLimit-Limit``, ``-Remaining`` and ``-Reset``, and a request past it is a 429 with
``Retry-After``; list answers have ETags (``forge_api.StatedLimit``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
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


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class FakeGitLab:
    token: str = field(default_factory=lambda: "glpat-" + uuid.uuid4().hex[:20])
    group: str = "acme"
    limit: int = 2000
    window_seconds: float = 60.0
    projects: dict[int, dict[str, Any]] = field(default_factory=dict)
    merge_requests: dict[int, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    notes: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    commits: dict[tuple[int, int], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    pipelines: dict[int, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    deployments: dict[int, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    issues: dict[int, dict[int, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(500))
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.stated = StatedLimit(
            self.limit,
            self.window_seconds,
            prefix="RateLimit-",
            refusal=429,
            refusal_body={"message": "429 Too Many Requests"},
        )
        project = "/api/v4/projects/{id:int}"
        self.vendor = FakeVendor(
            routes=[
                Route("/api/v4/groups/{group}/projects", self._projects),
                Route(project + "/merge_requests", self._merge_requests),
                Route(project + "/merge_requests/{iid:int}", self._merge_request),
                Route(project + "/merge_requests/{iid:int}/notes", self._notes),
                Route(project + "/merge_requests/{iid:int}/commits", self._commits),
                Route(project + "/pipelines", self._pipelines),
                Route(project + "/deployments", self._deployments),
                Route(project + "/deployments/{deployment:int}", self._deployment),
                Route(project + "/issues", self._issues),
                Route(project + "/issues/{iid:int}", self._issue),
            ],
            authorised=lambda request: (
                self.token
                in (
                    request.headers.get("private-token"),
                    request.headers.get("authorization", "").removeprefix("Bearer "),
                )
            ),
        )

    @property
    def app(self) -> ASGIApp:
        return self.vendor.app

    def _user(self, username: str) -> dict[str, Any]:
        user_id = int(hashlib.sha1(username.encode()).hexdigest()[:6], 16)  # noqa: S324 - an id, not a secret
        return {"id": user_id, "username": username, "name": username.title()}

    def add_project(self, path: str) -> dict[str, Any]:
        project_id = next(self._ids)
        self.projects[project_id] = {
            "id": project_id,
            "path": path,
            "path_with_namespace": f"{self.group}/{path}",
            "web_url": f"https://gitlab.com/{self.group}/{path}",
            "default_branch": "main",
            "archived": False,
            "created_at": iso(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        }
        return self.projects[project_id]

    def add_merge_request(
        self,
        project_id: int,
        *,
        created: dt.datetime,
        author: str = "dev",
        first_commit: dt.datetime | None = None,
        approvals: Sequence[tuple[str, dt.datetime]] = (),
        comments: Sequence[tuple[str, dt.datetime]] = (),
        merged: dt.datetime | None = None,
    ) -> dict[str, Any]:
        iid = len(self.merge_requests[project_id]) + 1
        moments = [created, *(at for _, at in [*approvals, *comments]), *([merged] if merged else [])]
        request = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": project_id,
            "title": f"Change {iid}",
            "description": None,
            "state": "merged" if merged else "opened",
            "author": self._user(author),
            "reviewers": [],
            "web_url": f"{self.projects[project_id]['web_url']}/-/merge_requests/{iid}",
            "created_at": iso(created),
            "updated_at": iso(max(moments)),
            "merged_at": iso(merged) if merged else None,
            "closed_at": None,
            "merge_commit_sha": hashlib.sha1(f"{project_id}-{iid}".encode()).hexdigest() if merged else None,  # noqa: S324
        }
        self.merge_requests[project_id][iid] = request
        notes = [
            {
                "id": next(self._ids),
                "body": "approved this merge request",
                "system": True,
                "author": self._user(who),
                "created_at": iso(at),
            }
            for who, at in approvals
        ] + [
            {
                "id": next(self._ids),
                "body": "Looks good",
                "system": False,
                "author": self._user(who),
                "created_at": iso(at),
            }
            for who, at in comments
        ]
        notes.append(
            {
                "id": next(self._ids),
                "body": "added 1 commit",
                "system": True,
                "author": self._user(author),
                "created_at": iso(created),
            }
        )
        self.notes[(project_id, iid)] = sorted(notes, key=lambda note: note["created_at"])
        start = first_commit or created
        self.commits[(project_id, iid)] = [
            {"id": f"{iid}{index}", "authored_date": iso(start + dt.timedelta(minutes=index))} for index in (1, 0)
        ]  # newest first, as GitLab lists them
        return request

    def add_deployment(
        self,
        project_id: int,
        *,
        created: dt.datetime,
        status: str,
        finished: dt.datetime | None,
        environment: str = "production",
    ) -> dict[str, Any]:
        deployment_id = next(self._ids)
        self.deployments[project_id][deployment_id] = {
            "id": deployment_id,
            "iid": len(self.deployments[project_id]) + 1,
            "ref": "main",
            "sha": hashlib.sha1(str(deployment_id).encode()).hexdigest(),  # noqa: S324
            "created_at": iso(created),
            "updated_at": iso(finished or created),
            "finished_at": iso(finished) if finished else None,
            "status": status,
            "environment": {"id": 1, "name": environment},
        }
        return self.deployments[project_id][deployment_id]

    def add_issue(
        self,
        project_id: int,
        *,
        created: dt.datetime,
        closed: dt.datetime | None = None,
        incident: bool = False,
        labels: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        iid = len(self.issues[project_id]) + 1
        issue = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": project_id,
            "title": f"Issue {iid}",
            "description": None,
            "state": "closed" if closed else "opened",
            "issue_type": "incident" if incident else "issue",
            "labels": list(labels),
            "assignee": None,
            "assignees": [],
            "web_url": f"{self.projects[project_id]['web_url']}/-/issues/{iid}",
            "created_at": iso(created),
            "updated_at": iso(closed or created),
            "closed_at": iso(closed) if closed else None,
        }
        self.issues[project_id][iid] = issue
        return issue

    def add_pipeline(self, project_id: int, *, created: dt.datetime, status: str = "success") -> dict[str, Any]:
        pipeline = {
            "id": next(self._ids),
            "status": status,
            "ref": "main",
            "created_at": iso(created),
            "updated_at": iso(created),
        }
        self.pipelines[project_id].append(pipeline)
        return pipeline

    # -- answering -------------------------------------------------------------------------------------------------

    def _answer(self, request: Request, body: Any, *, paged: bool = False) -> Response:
        self.stated.limit = self.limit
        return self.stated.answer(request, body, paged=paged)

    def _missing(self) -> Response:
        return self.stated.missing({"message": "404 Not found"})

    def _filtered(self, request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        query = request.query_params
        after = query.get("updated_after")
        found = [item for item in items if after is None or item["updated_at"] >= after]
        key = "updated_at" if query.get("order_by") == "updated_at" else "created_at"
        found.sort(key=lambda item: (item[key], item["id"]), reverse=query.get("sort", "desc") == "desc")
        return found

    def _project(self, request: Request) -> int | None:
        project_id = request.path_params["id"]
        return project_id if project_id in self.projects else None

    async def _projects(self, request: Request) -> Response:
        if request.path_params["group"] != self.group:
            return self._missing()
        return self._answer(request, sorted(self.projects.values(), key=lambda item: item["path"]), paged=True)

    async def _merge_requests(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        state = request.query_params.get("state", "all")
        found = [item for item in self.merge_requests[project_id].values() if state == "all" or item["state"] == state]
        return self._answer(request, self._filtered(request, found), paged=True)

    async def _merge_request(self, request: Request) -> Response:
        project_id = self._project(request)
        found = self.merge_requests[project_id].get(request.path_params["iid"]) if project_id else None
        return self._missing() if found is None else self._answer(request, found)

    async def _notes(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        return self._answer(request, self.notes[(project_id, request.path_params["iid"])], paged=True)

    async def _commits(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        return self._answer(request, self.commits[(project_id, request.path_params["iid"])], paged=True)

    async def _pipelines(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        return self._answer(request, self._filtered(request, self.pipelines[project_id]), paged=True)

    async def _deployments(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        environment = request.query_params.get("environment")
        found = [
            item
            for item in self.deployments[project_id].values()
            if environment is None or item["environment"]["name"] == environment
        ]
        return self._answer(request, self._filtered(request, found), paged=True)

    async def _deployment(self, request: Request) -> Response:
        project_id = self._project(request)
        found = self.deployments[project_id].get(request.path_params["deployment"]) if project_id else None
        return self._missing() if found is None else self._answer(request, found)

    async def _issues(self, request: Request) -> Response:
        project_id = self._project(request)
        if project_id is None:
            return self._missing()
        return self._answer(request, self._filtered(request, list(self.issues[project_id].values())), paged=True)

    async def _issue(self, request: Request) -> Response:
        project_id = self._project(request)
        found = self.issues[project_id].get(request.path_params["iid"]) if project_id else None
        return self._missing() if found is None else self._answer(request, found)
