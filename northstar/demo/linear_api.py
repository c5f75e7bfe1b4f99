"""A fake Linear workspace: issues, cycles and projects behind the GraphQL API, as Linear answers them.

``POST /graphql`` with ``Authorization: <API key>`` answers the root fields Northstar asks for: ``viewer``,
``issue(id:)``, and the connections ``issues`` (with ``filter: { updatedAt: { gte: $since } }``), ``cycles`` and
``projects``, each taking ``first`` (at most 250) and ``after`` and answering ``nodes`` and ``pageInfo { hasNextPage
endCursor }``; nodes carry every field the connector selects. The budget is stated as
``X-RateLimit-Requests-Limit``, ``-Remaining`` and ``-Reset`` (epoch milliseconds), and a request past it is answered
400 with a ``RATELIMITED`` error, as Linear does (``forge_api.StatedLimit``). The mutations ``issueCreate`` (in one of
``teams``) and ``commentCreate`` (kept in ``comments``) take their ``input`` variable, as approved proposals send it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from northstar.demo.forge_api import StatedLimit, json_response
from northstar.demo.vendor_api import FakeVendor

MAX_FIRST = 250
ROOTS = re.compile(r"\b(viewer|issueCreate|commentCreate|teams|issue|issues|cycles|projects)\b\s*[({]")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sign(body: bytes, secret: str) -> str:
    """``Linear-Signature`` of a delivery."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class FakeLinear:
    api_key: str = field(default_factory=lambda: "lin_api_" + uuid.uuid4().hex)
    limit: int = 1500
    window_seconds: float = 3600.0
    issues: dict[str, dict[str, Any]] = field(default_factory=dict)
    cycles: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, str]] = field(default_factory=lambda: [{"id": "team-ENG", "key": "ENG"}])
    vendor: FakeVendor = field(init=False)

    def __post_init__(self) -> None:
        self.stated = StatedLimit(
            self.limit,
            self.window_seconds,
            prefix="X-RateLimit-Requests-",
            refusal=400,
            refusal_body={"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]},
            reset_unit=0.001,
        )
        self.vendor = FakeVendor(
            routes=[Route("/graphql", self._graphql, methods=["POST"])],
            authorised=lambda request: request.headers.get("authorization") == self.api_key,
        )

    @property
    def app(self) -> ASGIApp:
        return self.vendor.app

    def add_issue(
        self,
        *,
        team: str = "ENG",
        created: dt.datetime,
        state: str = "unstarted",
        started: dt.datetime | None = None,
        completed: dt.datetime | None = None,
        labels: tuple[str, ...] = (),
        title: str | None = None,
    ) -> dict[str, Any]:
        number = sum(1 for issue in self.issues.values() if issue["team"]["key"] == team) + 1
        issue_id = str(uuid.uuid4())
        updated = max(moment for moment in (created, started, completed) if moment)
        self.issues[issue_id] = {
            "id": issue_id,
            "identifier": f"{team}-{number}",
            "title": title or f"Issue {number}",
            "description": None,
            "url": f"https://linear.app/acme/issue/{team}-{number}",
            "priority": 2,
            "estimate": None,
            "createdAt": iso(created),
            "updatedAt": iso(updated),
            "startedAt": iso(started) if started else None,
            "completedAt": iso(completed) if completed and state == "completed" else None,
            "canceledAt": iso(completed) if completed and state == "canceled" else None,
            "state": {"type": state, "name": state.title()},
            "assignee": {"id": "user-1", "name": "ana", "displayName": "Ana"} if started else None,
            "team": {"id": f"team-{team}", "key": team},
            "project": None,
            "cycle": None,
            "labels": {"nodes": [{"name": label} for label in labels]},
        }
        return self.issues[issue_id]

    def add_cycle(self, number: int, *, starts: dt.datetime, ends: dt.datetime) -> dict[str, Any]:
        cycle_id = str(uuid.uuid4())
        self.cycles[cycle_id] = {
            "id": cycle_id, "number": number, "name": f"Cycle {number}", "startsAt": iso(starts), "endsAt": iso(ends),
            "completedAt": None, "team": {"id": "team-ENG", "key": "ENG"},
        }  # fmt: skip
        return self.cycles[cycle_id]

    async def _graphql(self, request: Request) -> Response:
        budget, over = self.stated.count()
        if over:
            self.stated.limited += 1
            return json_response(self.stated.refusal_body, 400, budget)
        body = await request.json()
        self.queries.append(body)
        query, variables = str(body.get("query") or ""), body.get("variables") or {}
        found = ROOTS.search(query)
        if found is None:
            return json_response({"errors": [{"message": "Cannot query this field"}]}, 400, budget)
        root = found.group(1)
        if root == "viewer":
            data: Any = {"id": "user-bot"}
        elif root == "teams":
            data = {"nodes": self.teams}
        elif root == "issueCreate":
            given = variables.get("input") or {}
            team = next((team for team in self.teams if team["id"] == given.get("teamId")), None)
            if team is None or not given.get("title"):
                return json_response({"data": None, "errors": [{"message": "Argument Validation Error"}]}, 200, budget)
            issue = self.add_issue(team=team["key"], created=dt.datetime.now(dt.UTC), title=given["title"])
            issue["description"], issue["priority"] = given.get("description"), given.get("priority", 0)
            data = {"success": True, "issue": issue}
        elif root == "commentCreate":
            given = variables.get("input") or {}
            if given.get("issueId") not in self.issues:
                return json_response({"data": None, "errors": [{"message": "Entity not found"}]}, 200, budget)
            self.comments.append(given)
            data = {"success": True}
        elif root == "issue":
            data = self.issues.get(str(variables.get("id")))
            if data is None:
                return json_response({"data": None, "errors": [{"message": "Entity not found"}]}, 200, budget)
        else:
            nodes = list({"issues": self.issues, "cycles": self.cycles, "projects": self.projects}[root].values())
            since = variables.get("since")
            if root == "issues" and since:
                nodes = [node for node in nodes if node["updatedAt"] >= since]
            data = _connection(nodes, int(variables.get("first") or 50), variables.get("after"))
        return json_response({"data": {root: data}}, 200, budget)


def _connection(nodes: list[dict[str, Any]], first: int, after: str | None) -> dict[str, Any]:
    start = next((index + 1 for index, node in enumerate(nodes) if node["id"] == after), 0) if after else 0
    page = nodes[start : start + min(first, MAX_FIRST)]
    more = start + len(page) < len(nodes)
    return {"nodes": page, "pageInfo": {"hasNextPage": more, "endCursor": page[-1]["id"] if page else None}}
