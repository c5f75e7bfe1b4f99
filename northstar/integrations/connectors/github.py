"""GitHub: an organization's repositories, pull requests with their reviews and first commit, deployments with their
statuses, releases and issues, through the REST API (``2022-11-28``), normalised into DevBizOps' engineering model.

Paging follows the ``Link`` header's ``rel="next"``, 100 items a page. Each repository's first page of a stream is a
conditional request (``If-None-Match`` with the ETag kept from the previous sync): a repository where nothing changed
answers 304, which GitHub does not count against the rate limit, and is skipped. GitHub states its budget on every
answer (``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``): once it is spent, requests wait for the reset, and a
refusal for a spent budget (403 or 429, with ``Retry-After`` for secondary limits) is waited out and retried; a reset
more than ``maxWaitSeconds`` away ends the sync, and the next one resumes from the cursor.

* **Repositories** (``GET /orgs/{owner}/repos``, or ``/users/{owner}/repos``), optionally only those named in
  ``repositories``; read whole at the start of every sync.
* **Pull requests** (``GET /repos/{repo}/pulls?state=all&sort=updated&direction=desc``): newest update first, read
  until one older than the repository's high-water mark, which becomes the newest update seen when the repository is
  done. A pull request's reviews (``/pulls/{n}/reviews``) and, once merged, its commits (``/pulls/{n}/commits``,
  oldest first: the first commit's author date starts its lead time) are read with it and kept in its record
  (``_reviews``, ``_first_commit_at``). The cursor names the repository and page a sync stopped at, so a killed sync
  resumes there; updates made during a sync move pull requests ahead of the page being read, never past it.
* **Deployments** (``GET /repos/{repo}/deployments``, newest first) down to the oldest one still unfinished at the
  last sync; each production deployment's statuses (``/deployments/{id}/statuses``) give its outcome: the latest
  ``success``, ``failure`` or ``error`` status (``inactive`` only follows a success), and when it came.
* **Releases** (``GET /repos/{repo}/releases``), kept as fetched; with ``releasesAsDeployments`` each published
  release counts as a successful production deployment (for teams that ship by tagging).
* **Issues** (``GET /repos/{repo}/issues?state=all&since=…&sort=updated&direction=asc``, pull requests left out):
  those labelled with one of ``incidentLabels`` are incidents (opened to closed), the others work items.

Webhooks carry ``X-Hub-Signature-256`` (``sha256=`` and the body's HMAC-SHA256 under the webhook secret) and
``X-GitHub-Delivery``; a pull request's, review's, deployment's, issue's or release's delivery is completed from
the API and applied like a synced record.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
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
    Answer,
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

BASE_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
PER_PAGE = 100
FINAL_STATES = {"success": "success", "failure": "failure", "error": "failure"}
SIGNATURE_PREFIX = "sha256="


class Settings(ForgeSettings):
    """The integration's ``config``, checked before any request."""

    base_url: str = BASE_URL
    owner: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$", description="the organization or user")
    owner_type: str = Field("org", pattern=r"^(org|user)$", description="whether the owner is an organization")
    repositories: list[str] | None = Field(
        None, max_length=1000, description="only these repositories (names without the owner); all when absent"
    )
    releases_as_deployments: bool = Field(False, description="count published releases as production deployments")


def _full_name(repo: dict[str, Any]) -> str:
    return str(repo["full_name"])


def _login(user: Any) -> str | None:
    return str(user["login"])[:255] if isinstance(user, dict) and user.get("login") else None


class GitHubConnector(ForgeConnector):
    provider = "github"
    title = "GitHub"
    streams = ("repositories", "pull_requests", "deployments", "releases", "issues")
    credential_fields = ("access_token", "webhook_secret")
    settings_model = Settings
    signature_header = "x-hub-signature-256"
    budget_headers = ("x-ratelimit-remaining", "x-ratelimit-reset")
    settings: Settings
    repos: list[dict[str, Any]] | None = None

    @classmethod
    def headers_of(cls, credentials: Mapping[str, str]) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {credentials.get('access_token', '')}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    def _owner_path(self) -> str:
        kind = "orgs" if self.settings.owner_type == "org" else "users"
        return f"/{kind}/{self.settings.owner}/repos"

    async def test(self) -> None:
        await self.client.request_answer("GET", self._owner_path(), params={"per_page": 1})

    def plan(self, state: Mapping[str, Any], now: dt.datetime) -> tuple[list[str], dict[str, Any]]:
        streams = [stream for stream in self.streams if stream != "releases" or self.settings.releases_as_deployments]
        return streams, dict(state)

    # -- reading ---------------------------------------------------------------------------------------------------

    async def _get(self, path: str, *, etag: str | None = None, **params: Any) -> Answer:
        return await self.client.request_answer("GET", path, etag=etag, params=params or None)

    async def _list(self, answer: Answer, what: str) -> list[dict[str, Any]]:
        if not isinstance(answer.body, list) or not all(isinstance(item, dict) for item in answer.body):
            raise VendorError(f"GitHub sent {what} that cannot be read")
        return answer.body

    async def _repositories(self) -> list[dict[str, Any]]:
        """Every repository of the owner (the configured ones only), by name; read once a sync."""
        if self.repos is None:
            wanted = set(self.settings.repositories) if self.settings.repositories is not None else None
            found: list[dict[str, Any]] = []
            answer = await self._get(self._owner_path(), type="all", per_page=PER_PAGE, sort="full_name")
            while True:
                for repo in await self._list(answer, "repositories"):
                    if not (isinstance(repo.get("id"), int) and isinstance(repo.get("full_name"), str)):
                        raise VendorError("GitHub sent a repository without an id or name")
                    if wanted is None or repo.get("name") in wanted:
                        found.append(repo)
                if answer.next_url is None:
                    break
                answer = await self._get(relative(answer.next_url))
            self.repos = sorted(found, key=lambda repo: str(repo["full_name"]))
        return self.repos

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        if stream == "repositories":
            yield Page(stream, [dict(repo) for repo in await self._repositories()], None)
            return
        read = {
            "pull_requests": self._pull_requests,
            "deployments": self._deployments,
            "releases": self._releases,
            "issues": self._issues,
        }[stream]
        async for page in per_repository(stream, await self._repositories(), _full_name, cursor, read):
            yield page

    async def _pull_requests(
        self, repo: dict[str, Any], since: str | None, resume: Mapping[str, Any] | None, etag: str | None
    ) -> AsyncIterator[RepoPage]:
        """Newest update first, down to the high-water mark; each page completed with reviews and commits."""
        name = repo["full_name"]
        params = {"state": "all", "sort": "updated", "direction": "desc", "per_page": PER_PAGE}
        first = resume is None
        newest: str | None = resume.get("newest") if resume is not None else None
        async for answer, pulls in listed(self.client, f"/repos/{name}/pulls", params, resumed_page(resume), etag):
            fresh = [pull for pull in pulls if since is None or str(pull.get("updated_at") or "") >= since]
            if first and pulls:
                newest = max(str(pull.get("updated_at") or "") for pull in pulls) or None
            records = list(await asyncio.gather(*(self._completed_pull(name, pull) for pull in fresh)))
            done = len(fresh) < len(pulls) or answer.next_url is None
            tag = answer.headers.get("etag") if first else None
            yield RepoPage(records, None if done else relative(answer.next_url or ""), newest or since, tag)
            first = False
            if done:
                return

    async def _completed_pull(self, repo_name: str, pull: dict[str, Any]) -> dict[str, Any]:
        """The pull request with its reviews and, when merged, its first commit's author date."""
        number = pull.get("number")
        if not isinstance(number, int):
            raise VendorError("GitHub sent a pull request without a number")
        async with self.limit:
            reviews: list[dict[str, Any]] = []
            async for _, page in listed(
                self.client, f"/repos/{repo_name}/pulls/{number}/reviews", {"per_page": 100}, None, None
            ):
                reviews.extend(
                    {
                        "id": review.get("id"),
                        "user": _login(review.get("user")),
                        "state": review.get("state"),
                        "submitted_at": review.get("submitted_at"),
                    }
                    for review in page
                )
            first_commit = None
            if pull.get("merged_at"):
                answer = await self._get(f"/repos/{repo_name}/pulls/{number}/commits", per_page=100)
                dates = [_commit_date(commit) for commit in await self._list(answer, "pull request commits")]
                known = [date for date in dates if date is not None]
                first_commit = min(known) if known else None
        return {**pull, "_reviews": reviews, "_first_commit_at": first_commit}

    async def _deployments(
        self, repo: dict[str, Any], since: str | None, resume: Mapping[str, Any] | None, etag: str | None
    ) -> AsyncIterator[RepoPage]:
        """Newest first, down to the oldest deployment unfinished at the last sync; production ones with outcome."""
        name = repo["full_name"]
        oldest_open: str | None = resume.get("newest") if isinstance(resume, dict) else None
        newest: str | None = None
        async for answer, deployments in listed(
            self.client, f"/repos/{name}/deployments", {"per_page": PER_PAGE}, resumed_page(resume), etag
        ):
            fresh = [item for item in deployments if since is None or str(item.get("created_at") or "") >= since]
            records = list(await asyncio.gather(*(self._completed_deployment(repo, item) for item in fresh)))
            for record in records:
                created = str(record.get("created_at") or "")
                newest = max(newest or created, created)
                if record.get("_production") and record.get("_outcome") is None:
                    oldest_open = min(oldest_open or created, created)
            done = len(fresh) < len(deployments) or answer.next_url is None
            mark = oldest_open or newest or since
            following = None if done else relative(answer.next_url or "")
            yield RepoPage(records, following, mark, answer.headers.get("etag") if resume is None else None)
            if done:
                return

    async def _completed_deployment(self, repo: dict[str, Any], deployment: dict[str, Any]) -> dict[str, Any]:
        environment = str(deployment.get("environment") or "")
        production = environment.lower() in self.production or deployment.get("production_environment") is True
        record = {**deployment, "_repository_id": repo["id"], "_production": production, "_outcome": None}
        if production:
            path = f"/repos/{repo['full_name']}/deployments/{deployment.get('id')}/statuses"
            async with self.limit:  # newest first: the first final status found is the outcome
                async for _, statuses in listed(self.client, path, {"per_page": PER_PAGE}, None, None):
                    final = next((status for status in statuses if status.get("state") in FINAL_STATES), None)
                    if final is not None:
                        record["_outcome"] = {"state": final["state"], "at": final.get("created_at")}
                        break
        return record

    async def _releases(
        self, repo: dict[str, Any], since: str | None, resume: Mapping[str, Any] | None, etag: str | None
    ) -> AsyncIterator[RepoPage]:
        name = repo["full_name"]
        async for answer, releases in listed(
            self.client, f"/repos/{name}/releases", {"per_page": PER_PAGE}, resumed_page(resume), etag
        ):
            records = [{**release, "_repository_id": repo["id"]} for release in releases]
            following = None if answer.next_url is None else relative(answer.next_url)
            yield RepoPage(records, following, None, answer.headers.get("etag") if resume is None else None)

    async def _issues(
        self, repo: dict[str, Any], since: str | None, resume: Mapping[str, Any] | None, etag: str | None
    ) -> AsyncIterator[RepoPage]:
        """Updated since the high-water mark, oldest update first; pull requests (which GitHub lists too) left out."""
        name = repo["full_name"]
        params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "asc", "per_page": PER_PAGE}
        if since is not None:
            params["since"] = since
        newest = resume.get("newest") if isinstance(resume, dict) else since
        async for answer, issues in listed(self.client, f"/repos/{name}/issues", params, resumed_page(resume), etag):
            records = [
                {**issue, "_repository_id": repo["id"], "_repository": name}
                for issue in issues
                if "pull_request" not in issue
            ]
            for issue in issues:
                updated = str(issue.get("updated_at") or "")
                newest = max(newest or updated, updated)
            following = None if answer.next_url is None else relative(answer.next_url)
            yield RepoPage(records, following, newest, answer.headers.get("etag") if resume is None else None)

    # -- normalising -----------------------------------------------------------------------------------------------

    def engineering(self, stream: str, records: list[dict[str, Any]]) -> EngineeringBatch:
        batch = EngineeringBatch()
        for record in records:
            if stream == "repositories":
                batch.repositories.append(repository_of(record))
            elif stream == "pull_requests":
                change = change_of(record)
                batch.changes.append(change)
                batch.people.extend(_people(record))
            elif stream == "deployments" and record.get("_production"):
                batch.deployments.append(deployment_of(record))
            elif stream == "releases" and self.settings.releases_as_deployments:
                release = release_deployment(record)
                if release is not None:
                    batch.deployments.append(release)
            elif stream == "issues":
                labels = {
                    str(label.get("name", "")).lower()
                    for label in record.get("labels") or []
                    if isinstance(label, dict)
                }
                if labels & self.incident_labels:
                    batch.incidents.append(incident_of(record))
                else:
                    batch.work_items.append(work_item_of(record))
        return batch

    # -- webhooks --------------------------------------------------------------------------------------------------

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        if not signature.startswith(SIGNATURE_PREFIX):
            return Signature.INVALID
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return (
            Signature.VALID
            if hmac.compare_digest(expected, signature.removeprefix(SIGNATURE_PREFIX))
            else Signature.INVALID
        )

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        delivery, event = headers.get("x-github-delivery"), headers.get("x-github-event")
        if not delivery or not event or len(delivery) > 255:
            raise ConnectorError("a GitHub delivery needs X-GitHub-Delivery and X-GitHub-Event headers")
        action = payload.get("action") if isinstance(payload, Mapping) else None
        topic = f"{event}.{action}" if isinstance(action, str) else str(event)
        return str(delivery), topic[:120]

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        event = topic.split(".", 1)[0]
        repo = payload.get("repository")
        if not isinstance(repo, dict) or not isinstance(repo.get("full_name"), str):
            return None
        if event == "repository":
            return "repositories", dict(repo)
        if event in ("pull_request", "pull_request_review"):
            number = (payload.get("pull_request") or {}).get("number")
            answer = await self._get(f"/repos/{repo['full_name']}/pulls/{number}")  # as it is now, not as sent
            if not isinstance(answer.body, dict):
                raise VendorError("GitHub sent a pull request that cannot be read")
            return "pull_requests", await self._completed_pull(repo["full_name"], answer.body)
        if event in ("deployment", "deployment_status") and isinstance(payload.get("deployment"), dict):
            return "deployments", await self._completed_deployment(repo, payload["deployment"])
        if event == "issues" and isinstance(payload.get("issue"), dict):
            return "issues", {**payload["issue"], "_repository_id": repo["id"], "_repository": repo["full_name"]}
        if event == "release" and isinstance(payload.get("release"), dict):
            return "releases", {**payload["release"], "_repository_id": repo["id"]}
        return None


def _commit_date(commit: Any) -> str | None:
    details = commit.get("commit") if isinstance(commit, dict) else None
    author = details.get("author") if isinstance(details, dict) else None
    date = author.get("date") if isinstance(author, dict) else None
    return date if isinstance(date, str) and instant(date) is not None else None


def repository_of(record: Mapping[str, Any]) -> Repository:
    return Repository(
        external_id=str(record["id"]),
        name=str(record["full_name"])[:255],
        url=record.get("html_url"),
        default_branch=record.get("default_branch"),
        archived=bool(record.get("archived")),
        created_at=instant(record.get("created_at")),
    )


def change_of(record: Mapping[str, Any]) -> Change:
    merged_at = instant(record.get("merged_at"))
    state: ChangeState = "merged" if merged_at else "closed" if record.get("state") == "closed" else "open"
    base = record.get("base") or {}
    repo = base.get("repo") if isinstance(base, dict) else None
    if not isinstance(repo, dict) or repo.get("id") is None:
        raise VendorError(f"GitHub sent pull request {record.get('id')} without its base repository")
    reviews = tuple(
        Review(reviewer=str(review["user"]), state=str(review.get("state") or "").lower(), submitted_at=moment)
        for review in record.get("_reviews") or []
        if review.get("user")
        and review.get("state") != "PENDING"
        and (moment := instant(review.get("submitted_at"))) is not None
    )
    return Change(
        external_id=str(record["id"]),
        repository=str(repo["id"]),
        number=int(record["number"]),
        title=str(record.get("title") or ""),
        state=state,
        created_at=required(record, "created_at", "pull request"),
        author=_login(record.get("user")),
        body=record.get("body") if isinstance(record.get("body"), str) else None,
        url=record.get("html_url"),
        first_commit_at=instant(record.get("_first_commit_at")),
        merged_at=merged_at,
        closed_at=instant(record.get("closed_at")),
        merge_sha=record.get("merge_commit_sha") if merged_at else None,
        additions=record.get("additions") if isinstance(record.get("additions"), int) else None,
        deletions=record.get("deletions") if isinstance(record.get("deletions"), int) else None,
        updated_at=instant(record.get("updated_at")),
        reviews=reviews,
    )


def _people(record: Mapping[str, Any]) -> list[Person]:
    users = [record.get("user"), *(record.get("requested_reviewers") or [])]
    return [
        Person(external_id=str(user["id"]), login=str(user["login"])[:255])
        for user in users
        if isinstance(user, dict) and user.get("id") is not None and user.get("login")
    ]


def deployment_of(record: Mapping[str, Any]) -> Deployment:
    outcome = record.get("_outcome")
    status = FINAL_STATES.get(str(outcome.get("state"))) if isinstance(outcome, dict) else None
    return Deployment(
        external_id=str(record["id"]),
        repository=str(record["_repository_id"]),
        environment=str(record.get("environment") or "")[:255],
        production=True,
        status="pending" if status is None else "success" if status == "success" else "failure",
        created_at=required(record, "created_at", "deployment"),
        finished_at=instant(outcome.get("at")) if isinstance(outcome, dict) else None,
        sha=record.get("sha"),
        ref=str(record.get("ref"))[:255] if record.get("ref") else None,
    )


def release_deployment(record: Mapping[str, Any]) -> Deployment | None:
    published = instant(record.get("published_at"))
    if record.get("draft") or published is None:
        return None
    return Deployment(
        external_id=f"release-{record['id']}",
        repository=str(record["_repository_id"]),
        environment="production",
        production=True,
        status="success",
        created_at=published,
        finished_at=published,
        ref=str(record.get("tag_name"))[:255] if record.get("tag_name") else None,
    )


def incident_of(record: Mapping[str, Any]) -> Incident:
    return Incident(
        external_id=str(record["id"]),
        repository=str(record["_repository_id"]),
        title=str(record.get("title") or ""),
        started_at=required(record, "created_at", "issue"),
        resolved_at=instant(record.get("closed_at")),
        url=record.get("html_url"),
    )


def work_item_of(record: Mapping[str, Any]) -> WorkItem:
    closed = record.get("state") == "closed"
    status: WorkStatus = (
        ("canceled" if record.get("state_reason") == "not_planned" else "done")
        if closed
        else "in_progress"
        if record.get("assignees") or record.get("assignee")
        else "todo"
    )
    labels = tuple(
        str(label.get("name"))[:100]
        for label in record.get("labels") or []
        if isinstance(label, dict) and label.get("name")
    )
    return WorkItem(
        external_id=str(record["id"]),
        key=f"{record['_repository']}#{record['number']}",
        title=str(record.get("title") or ""),
        status=status,
        created_at=required(record, "created_at", "issue"),
        body=record.get("body") if isinstance(record.get("body"), str) else None,
        url=record.get("html_url"),
        repository=str(record["_repository_id"]),
        assignee=_login(record.get("assignee")),
        labels=labels,
        completed_at=instant(record.get("closed_at")) if status == "done" else None,
        updated_at=instant(record.get("updated_at")),
    )
