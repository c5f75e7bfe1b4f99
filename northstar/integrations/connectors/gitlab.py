"""GitLab: a group's projects, merge requests with their reviews and first commit, pipelines, deployments and issues,
through the REST API v4, normalised into DevBizOps' engineering model.

Paging follows the ``Link`` header, 100 items a page; each project's first page of a stream is asked with
``If-None-Match``. GitLab filters by last update (``updated_after``) and sorts by it, oldest first, so each project
is read from its high-water mark (the newest update of the previous sync) and the mark moves to the newest update
read. GitLab states its budget on every answer (``RateLimit-Remaining``, ``RateLimit-Reset``) and refuses with 429
and ``Retry-After``: requests are counted against it as for GitHub (``forge.py``).

* **Projects** (``GET /groups/{group}/projects?include_subgroups=true``), optionally only the paths in ``projects``.
* **Merge requests** (``GET /projects/{id}/merge_requests?state=all&order_by=updated_at&sort=asc``). A merge
  request's reviews are its notes (``/merge_requests/{iid}/notes``): an approval (GitLab's system note "approved this
  merge request") or a comment by someone other than its author; once merged, its commits
  (``/merge_requests/{iid}/commits``) give its first commit's authored date. Both are kept in the record.
* **Pipelines** (``GET /projects/{id}/pipelines``), kept as fetched: deployments carry the outcome the metrics use.
* **Deployments** (``GET /projects/{id}/deployments``) to the ``productionEnvironments``: ``success`` and ``failed``
  are final, at ``finished_at`` (else the last update).
* **Issues** (``GET /projects/{id}/issues?scope=all``): GitLab's incident issues (``issue_type: incident``) and issues
  labelled with one of ``incidentLabels`` are incidents, the others work items (``group/project#iid``).

Webhooks carry the secret token itself in ``X-Gitlab-Token`` (compared in constant time) and an id in
``X-Gitlab-Event-UUID``; a merge request's, deployment's or issue's delivery is completed from the API.
"""

from __future__ import annotations

import asyncio
import hmac
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import Field

from northstar.devbizops.inputs import (
    Change,
    ChangeState,
    Deployment,
    EngineeringBatch,
    Incident,
    Person,
    Repository,
    Review,
    WorkItem,
    WorkStatus,
)
from northstar.integrations.connectors.base import (
    ConnectorError,
    Page,
    Signature,
    VendorError,
)
from northstar.integrations.connectors.forge import (
    ForgeConnector,
    ForgeSettings,
    RepoPage,
    instant,
    listed,
    per_repository,
    relative,
    required,
    resumed_page,
)

BASE_URL = "https://gitlab.com"
API = "/api/v4"
PER_PAGE = 100
FINAL = {"success": "success", "failed": "failure"}
APPROVAL_NOTE = "approved this merge request"


class Settings(ForgeSettings):
    base_url: str = BASE_URL
    group: str = Field(
        pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,254}$", description="the group (path or id) whose projects are read"
    )
    projects: list[str] | None = Field(
        None, max_length=1000, description="only these projects (paths with their namespace); all when absent"
    )


def _path(project: dict[str, Any]) -> str:
    return str(project["path_with_namespace"])


def _username(user: Any) -> str | None:
    return str(user["username"])[:255] if isinstance(user, dict) and user.get("username") else None


class GitLabConnector(ForgeConnector):
    provider = "gitlab"
    title = "GitLab"
    streams = ("projects", "merge_requests", "pipelines", "deployments", "issues")
    credential_fields = ("access_token", "webhook_secret")
    settings_model = Settings
    signature_header = "x-gitlab-token"
    budget_headers = ("ratelimit-remaining", "ratelimit-reset")
    settings: Settings
    project_list: list[dict[str, Any]] | None = None

    @classmethod
    def headers_of(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        return {"PRIVATE-TOKEN": credentials.get("access_token", "")}

    def _group_path(self) -> str:
        return f"{API}/groups/{urllib.parse.quote(self.settings.group, safe='')}/projects"

    async def test(self) -> None:
        await self.client.request_answer("GET", self._group_path(), params={"per_page": 1})

    async def _projects(self) -> list[dict[str, Any]]:
        if self.project_list is None:
            wanted = set(self.settings.projects) if self.settings.projects is not None else None
            found: list[dict[str, Any]] = []
            params = {"include_subgroups": "true", "per_page": PER_PAGE, "order_by": "path", "sort": "asc"}
            async for _, projects in listed(self.client, self._group_path(), params, None, None):
                for project in projects:
                    if not (isinstance(project.get("id"), int) and isinstance(project.get("path_with_namespace"), str)):
                        raise VendorError("GitLab sent a project without an id or path")
                    if wanted is None or project["path_with_namespace"] in wanted:
                        found.append(project)
            self.project_list = found
        return self.project_list

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        if stream == "projects":
            yield Page(stream, [dict(project) for project in await self._projects()], None)
            return

        async def read(
            project: dict[str, Any], since: str | None, resume: Mapping[str, Any] | None, etag: str | None
        ) -> AsyncIterator[RepoPage]:
            params: dict[str, Any] = {"order_by": "updated_at", "sort": "asc", "per_page": PER_PAGE}
            params |= {"merge_requests": {"state": "all"}, "issues": {"scope": "all"}}.get(stream, {})
            if stream == "deployments" and len(self.production) == 1:
                params["environment"] = next(iter(self.production))
            if since is not None:
                params["updated_after"] = since
            newest = resume.get("newest") if resume is not None else since
            first = resume is None
            async for answer, items in listed(
                self.client, f"{API}/projects/{project['id']}/{stream}", params, resumed_page(resume), etag
            ):
                for item in items:
                    updated = str(item.get("updated_at") or "")
                    newest = max(newest or updated, updated)
                records = [{**item, "_project_id": project["id"], "_project": _path(project)} for item in items]
                if stream == "merge_requests":  # with their reviews and first commit
                    records = list(await asyncio.gather(*(self._completed_merge_request(record) for record in records)))
                following = None if answer.next_url is None else relative(answer.next_url)
                yield RepoPage(records, following, newest, answer.headers.get("etag") if first else None)
                first = False

        async for page in per_repository(stream, await self._projects(), _path, cursor, read):
            yield page

    async def _completed_merge_request(self, record: dict[str, Any]) -> dict[str, Any]:
        """The merge request with its reviews (approvals and others' comments) and, once merged, its first commit."""
        base = f"{API}/projects/{record['_project_id']}/merge_requests/{record.get('iid')}"
        author = _username(record.get("author"))
        async with self.limit:
            reviews: list[dict[str, Any]] = []
            params = {"sort": "asc", "order_by": "created_at", "per_page": PER_PAGE}
            async for _, notes in listed(self.client, f"{base}/notes", params, None, None):
                for note in notes:
                    reviewer = _username(note.get("author"))
                    approval = bool(note.get("system")) and str(note.get("body", "")).startswith(APPROVAL_NOTE)
                    if reviewer and reviewer != author and (approval or not note.get("system")):
                        reviews.append(
                            {
                                "user": reviewer,
                                "state": "approved" if approval else "commented",
                                "submitted_at": note.get("created_at"),
                            }
                        )
            first_commit = None
            if record.get("merged_at"):
                dates: list[str] = []
                async for _, commits in listed(self.client, f"{base}/commits", {"per_page": PER_PAGE}, None, None):
                    dates.extend(str(commit.get("authored_date") or "") for commit in commits)
                known = {moment: date for date in dates if (moment := instant(date)) is not None}
                first_commit = known[min(known)] if known else None
        return {**record, "_reviews": reviews, "_first_commit_at": first_commit}

    def engineering(self, stream: str, records: list[dict[str, Any]]) -> EngineeringBatch:
        batch = EngineeringBatch()
        for record in records:
            if stream == "projects":
                batch.repositories.append(repository_of(record))
            elif stream == "merge_requests":
                batch.changes.append(change_of(record))
                batch.people.extend(_people(record))
            elif stream == "deployments" and self._production(record):
                batch.deployments.append(deployment_of(record))
            elif stream == "issues":
                labels = {str(label).lower() for label in record.get("labels") or []}
                if record.get("issue_type") == "incident" or labels & self.incident_labels:
                    batch.incidents.append(incident_of(record))
                else:
                    batch.work_items.append(work_item_of(record))
        return batch

    def _production(self, record: Mapping[str, Any]) -> bool:
        environment = record.get("environment")
        name = environment.get("name") if isinstance(environment, dict) else environment
        return isinstance(name, str) and name.lower() in self.production

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        """GitLab sends the secret token itself, not a signature of the body."""
        return Signature.VALID if hmac.compare_digest(signature.encode(), secret.encode()) else Signature.INVALID

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        delivery = headers.get("x-gitlab-event-uuid") or headers.get("x-gitlab-webhook-uuid")
        kind = payload.get("object_kind") if isinstance(payload, Mapping) else None
        if not delivery or not isinstance(kind, str) or len(delivery) > 255:
            raise ConnectorError("a GitLab delivery needs X-Gitlab-Event-UUID and an object_kind")
        return str(delivery), kind[:120]

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        project = payload.get("project")
        if not isinstance(project, dict) or not isinstance(project.get("id"), int):
            return None
        path = project.get("path_with_namespace") or ""
        found_attributes = payload.get("object_attributes")
        attributes: Mapping[str, Any] = found_attributes if isinstance(found_attributes, dict) else {}
        found: dict[str, Any] | None = None
        stream = ""
        if topic == "merge_request" and attributes.get("iid") is not None:
            stream, found = (
                "merge_requests",
                await self._one(f"{API}/projects/{project['id']}/merge_requests/{attributes['iid']}"),
            )
        elif topic == "deployment" and payload.get("deployment_id") is not None:
            stream, found = (
                "deployments",
                await self._one(f"{API}/projects/{project['id']}/deployments/{payload['deployment_id']}"),
            )
        elif topic in ("issue", "incident") and attributes.get("iid") is not None:
            stream, found = "issues", await self._one(f"{API}/projects/{project['id']}/issues/{attributes['iid']}")
        if found is None:
            return None
        record = {**found, "_project_id": project["id"], "_project": path}
        if stream == "merge_requests":
            record = await self._completed_merge_request(record)
        return stream, record

    async def _one(self, path: str) -> dict[str, Any]:
        answer = await self.client.request_answer("GET", path)
        if not isinstance(answer.body, dict):
            raise VendorError(f"GitLab sent {path} in a form that cannot be read")
        return answer.body


def repository_of(record: Mapping[str, Any]) -> Repository:
    return Repository(
        external_id=str(record["id"]),
        name=str(record["path_with_namespace"])[:255],
        url=record.get("web_url"),
        default_branch=record.get("default_branch"),
        archived=bool(record.get("archived")),
        created_at=instant(record.get("created_at")),
    )


def change_of(record: Mapping[str, Any]) -> Change:
    merged_at = instant(record.get("merged_at"))
    state: ChangeState = (
        "merged"
        if record.get("state") == "merged" or merged_at
        else ("closed" if record.get("state") == "closed" else "open")
    )
    reviews = tuple(
        Review(reviewer=str(review["user"]), state=str(review.get("state")), submitted_at=moment)
        for review in record.get("_reviews") or []
        if review.get("user") and (moment := instant(review.get("submitted_at"))) is not None
    )
    return Change(
        external_id=str(record["id"]),
        repository=str(record["_project_id"]),
        number=int(record["iid"]),
        title=str(record.get("title") or ""),
        state=state,
        created_at=required(record, "created_at", "merge request"),
        author=_username(record.get("author")),
        body=record.get("description") if isinstance(record.get("description"), str) else None,
        url=record.get("web_url"),
        first_commit_at=instant(record.get("_first_commit_at")),
        merged_at=merged_at,
        closed_at=instant(record.get("closed_at")) or merged_at,
        merge_sha=record.get("merge_commit_sha") or record.get("squash_commit_sha"),
        updated_at=instant(record.get("updated_at")),
        reviews=reviews,
    )


def _people(record: Mapping[str, Any]) -> list[Person]:
    users = [record.get("author"), *(record.get("reviewers") or [])]
    return [
        Person(external_id=str(user["id"]), login=str(user["username"])[:255], name=user.get("name"))
        for user in users
        if isinstance(user, dict) and user.get("id") is not None and user.get("username")
    ]


def deployment_of(record: Mapping[str, Any]) -> Deployment:
    status = FINAL.get(str(record.get("status")))
    environment = record.get("environment")
    name = environment.get("name") if isinstance(environment, dict) else environment
    finished = instant(record.get("finished_at")) or (instant(record.get("updated_at")) if status else None)
    return Deployment(
        external_id=str(record["id"]),
        repository=str(record["_project_id"]),
        environment=str(name or "")[:255],
        production=True,
        status="pending" if status is None else "success" if status == "success" else "failure",
        created_at=required(record, "created_at", "deployment"),
        finished_at=finished,
        sha=record.get("sha"),
        ref=str(record.get("ref"))[:255] if record.get("ref") else None,
    )


def incident_of(record: Mapping[str, Any]) -> Incident:
    return Incident(
        external_id=str(record["id"]),
        repository=str(record["_project_id"]),
        title=str(record.get("title") or ""),
        started_at=required(record, "created_at", "issue"),
        resolved_at=instant(record.get("closed_at")),
        url=record.get("web_url"),
    )


def work_item_of(record: Mapping[str, Any]) -> WorkItem:
    closed = record.get("state") == "closed"
    assigned = record.get("assignees") or record.get("assignee")
    status: WorkStatus = "done" if closed else "in_progress" if assigned else "todo"
    return WorkItem(
        external_id=str(record["id"]),
        key=f"{record['_project']}#{record['iid']}",
        title=str(record.get("title") or ""),
        status=status,
        created_at=required(record, "created_at", "issue"),
        body=record.get("description") if isinstance(record.get("description"), str) else None,
        url=record.get("web_url"),
        repository=str(record["_project_id"]),
        assignee=_username(record.get("assignee")),
        labels=tuple(str(label)[:100] for label in record.get("labels") or []),
        completed_at=instant(record.get("closed_at")) if closed else None,
        updated_at=instant(record.get("updated_at")),
    )
