"""A fake Jira Cloud site: projects' issues with their changelog behind the JQL search, statuses, the API user, and
boards with their sprints, answered as Jira Cloud answers them.

``POST /rest/api/3/search/jql`` reads the JQL Jira's connectors write: ``project in (…)``, ``updated >= "yyyy/MM/dd
HH:mm"`` (in the API user's time zone, to the minute) and ``ORDER BY updated ASC|DESC``; it answers ``issues`` with
the requested ``fields`` (and ``changelog`` with ``expand=changelog``), ``nextPageToken`` (opaque) and ``isLast``.
The Agile API pages with ``startAt``, ``maxResults`` and ``isLast``. Requests need HTTP Basic credentials (the
account's e-mail and API token); ``FakeVendor`` refuses requests beyond ``requests_per_second`` with 429 and
``Retry-After``, as Jira does. ``POST /rest/api/3/issue`` files an issue and ``POST …/issue/{id}/comment`` keeps a
comment (``comments``), as approved DevBizOps proposals do.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import re
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from northstar.demo.vendor_api import FakeVendor

# id -> (name, category key)
STATUSES = {
    "1": ("To Do", "new"),
    "3": ("In Progress", "indeterminate"),
    "4": ("In Review", "indeterminate"),
    "10001": ("Done", "done"),
}
MAX_RESULTS = 100


def iso(moment: dt.datetime) -> str:
    """Jira's time format: ``2025-03-17T15:00:00.000+0000``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sign(body: bytes, secret: str) -> str:
    """``X-Hub-Signature`` of a delivery from a webhook registered with a secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _status(status_id: str) -> dict[str, Any]:
    name, category = STATUSES[status_id]
    return {"id": status_id, "name": name, "statusCategory": {"key": category, "name": category.title()}}


@dataclass
class FakeJira:
    email: str = "bot@acme.example"
    token: str = field(default_factory=lambda: "ATATT" + uuid.uuid4().hex)
    time_zone: str = "America/Los_Angeles"
    requests_per_second: float | None = None
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> issue
    searches: list[dict[str, Any]] = field(default_factory=list)
    boards: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # project key -> boards
    sprints: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # issue id -> comments (ADF bodies)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(10_000))
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        expected = "Basic " + base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        self.vendor = FakeVendor(
            routes=[
                Route("/rest/api/3/myself", self._myself),
                Route("/rest/api/3/status", self._statuses),
                Route("/rest/api/3/search/jql", self._search, methods=["POST"]),
                Route("/rest/api/3/issue", self._create, methods=["POST"]),
                Route("/rest/api/3/issue/{id}", self._issue),
                Route("/rest/api/3/issue/{id}/comment", self._comment, methods=["POST"]),
                Route("/rest/agile/1.0/board", self._boards),
                Route("/rest/agile/1.0/board/{id:int}/sprint", self._sprints),
            ],
            authorised=lambda request: request.headers.get("authorization") == expected,
            requests_per_second=self.requests_per_second,
        )

    @property
    def app(self) -> ASGIApp:
        return self.vendor.app

    def add_issue(
        self,
        project: str,
        *,
        created: dt.datetime,
        kind: str = "Story",
        transitions: Sequence[tuple[str, dt.datetime]] = (),
        resolution: str | None = None,
        summary: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """An issue; ``transitions`` are (status id, when) in order, from "To Do"."""
        issue_id = str(next(self._ids))
        number = sum(1 for issue in self.issues.values() if issue["fields"]["project"]["key"] == project) + 1
        status, histories = "1", []
        for target, moment in transitions:
            histories.append(
                {
                    "id": str(next(self._ids)),
                    "created": iso(moment),
                    "items": [{"field": "status", "fieldtype": "jira", "from": status, "to": target}],
                }
            )
            status = target
        updated = max([created, *(moment for _, moment in transitions)])
        done_at = transitions[-1][1] if transitions and STATUSES[status][1] == "done" else None
        self.issues[issue_id] = {
            "id": issue_id,
            "key": f"{project}-{number}",
            "fields": {
                "summary": summary or f"Issue {number}",
                "description": (
                    {
                        "type": "doc",
                        "version": 1,
                        "content": [{"type": "paragraph", "content": [{"type": "text", "text": description}]}],
                    }
                    if description
                    else None
                ),
                "status": _status(status),
                "issuetype": {"name": kind},
                "assignee": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Ana Dev"}
                if transitions
                else None,
                "reporter": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Bo Sales"},
                "labels": [],
                "created": iso(created),
                "updated": iso(updated),
                "resolution": {"name": resolution or "Done"} if done_at else None,
                "resolutiondate": iso(done_at) if done_at else None,
                "project": {"key": project},
            },
            "changelog": {"startAt": 0, "maxResults": len(histories), "total": len(histories), "histories": histories},
        }
        return self.issues[issue_id]

    def add_sprint(self, project: str, name: str, *, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        board = self.boards.setdefault(project, [{"id": next(self._ids), "name": f"{project} board", "type": "scrum"}])[
            0
        ]
        sprint = {"id": next(self._ids), "name": name, "state": "active", "startDate": iso(start), "endDate": iso(end)}
        self.sprints.setdefault(board["id"], []).append(sprint)
        return sprint

    async def _myself(self, request: Request) -> JSONResponse:
        return JSONResponse({"accountId": "557058:bot", "emailAddress": self.email, "timeZone": self.time_zone})

    async def _statuses(self, request: Request) -> JSONResponse:
        return JSONResponse([_status(status_id) for status_id in STATUSES])

    def _shown(self, issue: dict[str, Any], fields: Sequence[str] | None, changelog: bool) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": issue["id"],
            "key": issue["key"],
            "fields": {name: value for name, value in issue["fields"].items() if fields is None or name in fields},
        }
        if changelog:
            shown["changelog"] = issue["changelog"]
        return shown

    async def _search(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.searches.append(body)
        jql = str(body.get("jql") or "")
        projects = re.search(r"project in \(([^)]*)\)", jql)
        keys = {key.strip().strip('"') for key in projects.group(1).split(",")} if projects else None
        since = re.search(r'updated >= "(\d{4}/\d{2}/\d{2} \d{2}:\d{2})"', jql)
        floor = (
            dt.datetime.strptime(since.group(1), "%Y/%m/%d %H:%M").replace(tzinfo=zoneinfo.ZoneInfo(self.time_zone))
            if since
            else None
        )
        found = [
            issue
            for issue in self.issues.values()
            if (keys is None or issue["fields"]["project"]["key"] in keys)
            and (floor is None or dt.datetime.fromisoformat(issue["fields"]["updated"]) >= floor)
        ]
        found.sort(
            key=lambda issue: (issue["fields"]["updated"], int(issue["id"])),
            reverse="DESC" in jql.upper().split("ORDER BY")[-1],
        )
        offset = int(base64.b64decode(body["nextPageToken"]).decode()) if body.get("nextPageToken") else 0
        size = min(MAX_RESULTS, int(body.get("maxResults") or 50))
        page = found[offset : offset + size]
        last = offset + size >= len(found)
        answer: dict[str, Any] = {
            "issues": [self._shown(issue, body.get("fields"), body.get("expand") == "changelog") for issue in page],
            "isLast": last,
        }
        if not last:
            answer["nextPageToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return JSONResponse(answer)

    async def _issue(self, request: Request) -> JSONResponse:
        issue = self.issues.get(request.path_params["id"])
        if issue is None:
            return JSONResponse(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}, 404
            )
        fields = request.query_params.get("fields")
        return JSONResponse(
            self._shown(
                issue, fields.split(",") if fields else None, "changelog" in request.query_params.get("expand", "")
            )
        )

    async def _create(self, request: Request) -> JSONResponse:
        """``POST /rest/api/3/issue``: a new issue in "To Do" from ``fields`` (project key, summary, issue type)."""
        fields = (await request.json()).get("fields") or {}
        project = (fields.get("project") or {}).get("key")
        if not project or not fields.get("summary") or not (fields.get("issuetype") or {}).get("name"):
            return JSONResponse({"errorMessages": [], "errors": {"summary": "You must specify a summary."}}, 400)
        issue = self.add_issue(
            project, created=dt.datetime.now(dt.UTC), kind=fields["issuetype"]["name"], summary=fields["summary"]
        )
        issue["fields"]["description"] = fields.get("description")
        issue["fields"]["labels"] = list(fields.get("labels") or [])
        return JSONResponse({"id": issue["id"], "key": issue["key"], "self": f"/rest/api/3/issue/{issue['id']}"}, 201)

    async def _comment(self, request: Request) -> JSONResponse:
        wanted = request.path_params["id"]
        issue = self.issues.get(wanted) or next(
            (found for found in self.issues.values() if found["key"] == wanted), None
        )
        if issue is None:
            return JSONResponse(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}, 404
            )
        comment = {"id": str(next(self._ids)), "body": (await request.json()).get("body")}
        self.comments.setdefault(issue["id"], []).append(comment)
        return JSONResponse(comment, 201)

    def _agile_page(self, request: Request, values: list[dict[str, Any]]) -> JSONResponse:
        start = int(request.query_params.get("startAt", "0"))
        size = int(request.query_params.get("maxResults", "50"))
        page = values[start : start + size]
        return JSONResponse(
            {"startAt": start, "maxResults": size, "isLast": start + size >= len(values), "values": page}
        )

    async def _boards(self, request: Request) -> JSONResponse:
        return self._agile_page(request, self.boards.get(request.query_params.get("projectKeyOrId", ""), []))

    async def _sprints(self, request: Request) -> JSONResponse:
        return self._agile_page(request, self.sprints.get(request.path_params["id"], []))
