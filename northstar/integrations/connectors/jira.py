"""Jira Cloud: the issues of chosen projects with their changelog, found by JQL, and the projects' sprints,
normalised into DevBizOps' engineering model as work items and incidents.

* **Statuses** (``GET /rest/api/3/status``) are read first: a status's category (``new``, ``indeterminate``,
  ``done``) is what an issue's status and its changelog's transitions mean.
* **Issues**: ``POST /rest/api/3/search/jql`` with ``project in (…) AND updated >= "…" ORDER BY updated ASC``,
  ``expand=changelog`` and 100 a page, following ``nextPageToken`` until ``isLast``. JQL compares times to the
  minute in the Jira user's own time zone (``GET /rest/api/3/myself``), so the high-water mark is written in that
  zone and floored to the minute: the issues of that minute are read again, none missed. The cursor after each
  page is that mark, so a sync that stops starts its query again from there.
  An issue is **started** at its first transition into an ``indeterminate`` status and **completed** at its last
  transition into a ``done`` one (the resolution date when the changelog has none); done with a resolution in
  ``canceledResolutions`` is canceled. Issues of the ``incidentIssueTypes`` are incidents (created to resolved).
* **Sprints** (``GET /rest/agile/1.0/board?projectKeyOrId=…``, then each board's ``/sprint``, ``startAt`` paging)
  are kept as fetched.

Requests carry HTTP Basic credentials (the account's e-mail and an API token). Jira answers a rate-limited request
with 429 and ``Retry-After``, which is waited out. Webhooks registered with a secret carry ``X-Hub-Signature``
(``sha256=`` and the body's HMAC-SHA256) and ``X-Atlassian-Webhook-Identifier``; an issue's delivery is completed
from the API.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import zoneinfo
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import Field

from northstar.core.outbound import OutboundPolicy
from northstar.devbizops.inputs import EngineeringBatch, Incident, Person, Ticket, WorkItem, WorkStatus
from northstar.integrations.connectors.base import (
    Connector,
    ConnectorError,
    ConnectorSettings,
    Page,
    Signature,
    VendorClient,
    VendorError,
    paced_client,
    validated,
)
from northstar.integrations.connectors.forge import instant, required

SEARCH_PATH = "/rest/api/3/search/jql"
PAGE_SIZE = 100
FIELDS = (
    "summary",
    "description",
    "status",
    "issuetype",
    "assignee",
    "reporter",
    "labels",
    "created",
    "updated",
    "resolution",
    "resolutiondate",
    "project",
)
SIGNATURE_PREFIX = "sha256="


class Settings(ConnectorSettings):
    base_url: str = Field(pattern=r"^https?://\S+$", max_length=500, description="the site: https://acme.atlassian.net")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320, description="the account the API token is of")
    requests_per_second: float = Field(5.0, gt=0, le=100)
    projects: list[str] = Field(min_length=1, max_length=100, description="the project keys to read")
    incident_issue_types: list[str] = Field(default_factory=lambda: ["Incident"], max_length=20)
    canceled_resolutions: list[str] = Field(
        default_factory=lambda: ["Won't Do", "Won't Fix", "Duplicate", "Cannot Reproduce", "Declined"], max_length=50
    )
    ticket_project: str | None = Field(
        None,
        pattern=r"^[A-Z][A-Z0-9_]{1,9}$",
        description="where approved tickets are filed (default: the first project)",
    )
    ticket_issue_type: str = Field("Story", min_length=1, max_length=60, description="the issue type of those tickets")


def adf_document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: one paragraph a line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.splitlines() if line.strip()
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document Format value (Jira's rich text), paragraphs on their own lines."""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text") or "")
    parts = [adf_text(child) for child in node.get("content") or []]
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(part for part in parts if part)


class JiraConnector(Connector):
    provider = "jira"
    title = "Jira"
    streams = ("statuses", "issues", "sprints")
    credential_fields = ("api_token", "webhook_secret")
    settings_model = Settings
    signature_header = "x-hub-signature"
    engineering_source = True
    files_tickets = True

    def __init__(
        self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient, settings: Settings
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.settings = settings
        self.categories: dict[str, str] = {}  # status id -> category key
        self.zone: zoneinfo.ZoneInfo | None = None
        self.incident_types = {name.lower() for name in settings.incident_issue_types}
        self.canceled = {name.lower() for name in settings.canceled_resolutions}

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> JiraConnector:
        settings = validated(Settings, config)
        pair = f"{settings.email}:{credentials.get('api_token', '')}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode(), "Accept": "application/json"}
        client = paced_client(settings, policy, base_url=settings.base_url, headers=headers)
        return cls(credentials=credentials, config=config, client=client, settings=settings)

    async def test(self) -> None:
        await self._user_zone()

    async def _user_zone(self) -> zoneinfo.ZoneInfo:
        """The time zone JQL reads times in: the API user's."""
        if self.zone is None:
            me = await self.client.request_json("GET", "/rest/api/3/myself")
            name = me.get("timeZone") if isinstance(me, dict) else None
            try:
                self.zone = zoneinfo.ZoneInfo(name) if isinstance(name, str) else zoneinfo.ZoneInfo("UTC")
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.zone = zoneinfo.ZoneInfo("UTC")
        return self.zone

    async def _statuses(self) -> list[dict[str, Any]]:
        found = await self.client.request_json("GET", "/rest/api/3/status")
        if not isinstance(found, list) or not all(isinstance(item, dict) and item.get("id") for item in found):
            raise VendorError("Jira sent statuses that cannot be read")
        self.categories = {
            str(item["id"]): str((item.get("statusCategory") or {}).get("key") or "new") for item in found
        }
        return found

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        if stream == "statuses":
            yield Page(stream, await self._statuses(), None)
        elif stream == "issues":
            if not self.categories:
                await self._statuses()
            async for page in self._issues(cursor.get("since") if cursor else None):
                yield page
        else:
            async for page in self._sprints():
                yield page

    def _jql(self, since: str | None, zone: zoneinfo.ZoneInfo) -> str:
        keys = ", ".join(f'"{key}"' for key in self.settings.projects)
        clause = f"project in ({keys})"
        moment = instant(since)
        if moment is not None:
            clause += f' AND updated >= "{moment.astimezone(zone).strftime("%Y/%m/%d %H:%M")}"'
        return clause + " ORDER BY updated ASC"

    async def _issues(self, since: str | None) -> AsyncIterator[Page]:
        zone = await self._user_zone()
        body: dict[str, Any] = {
            "jql": self._jql(since, zone),
            "fields": list(FIELDS),
            "expand": "changelog",
            "maxResults": PAGE_SIZE,
        }
        newest = since
        while True:
            answer = await self.client.request_json("POST", SEARCH_PATH, json=body)
            issues = answer.get("issues") if isinstance(answer, dict) else None
            if not isinstance(issues, list) or not all(isinstance(issue, dict) and issue.get("id") for issue in issues):
                raise VendorError("Jira sent a search page that cannot be read")
            for issue in issues:
                updated = instant((issue.get("fields") or {}).get("updated"))
                if updated is not None:
                    floor = updated.replace(second=0, microsecond=0).astimezone(dt.UTC).isoformat()
                    newest = max(newest or floor, floor)
            token = answer.get("nextPageToken")
            yield Page("issues", issues, {"since": newest})
            if answer.get("isLast", True) or not isinstance(token, str) or not issues:
                return
            body["nextPageToken"] = token

    async def _sprints(self) -> AsyncIterator[Page]:
        for key in self.settings.projects:
            boards = await self._paged("/rest/agile/1.0/board", {"projectKeyOrId": key})
            for board in boards:
                sprints = await self._paged(f"/rest/agile/1.0/board/{board['id']}/sprint", {})
                yield Page("sprints", [{**sprint, "_board": board["id"], "_project": key} for sprint in sprints], None)

    async def _paged(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every value of an Agile API list (``startAt``, ``maxResults``, ``isLast``)."""
        found: list[dict[str, Any]] = []
        while True:
            answer = await self.client.request_json(
                "GET", path, params={**params, "startAt": len(found), "maxResults": 50}
            )
            values = answer.get("values") if isinstance(answer, dict) else None
            if not isinstance(values, list) or not all(isinstance(value, dict) and "id" in value for value in values):
                raise VendorError(f"Jira sent a page of {path} that cannot be read")
            found.extend(values)
            if answer.get("isLast", True) or not values:
                return found

    def engineering(self, stream: str, records: list[dict[str, Any]]) -> EngineeringBatch:
        batch = EngineeringBatch()
        if stream != "issues":
            return batch
        for record in records:
            fields = record.get("fields") or {}
            kind = str((fields.get("issuetype") or {}).get("name") or "").lower()
            if kind in self.incident_types:
                batch.incidents.append(self._incident(record))
            else:
                batch.work_items.append(self._work_item(record))
            for person in (fields.get("assignee"), fields.get("reporter")):
                if isinstance(person, dict) and person.get("accountId"):
                    login = str(person.get("displayName") or person["accountId"])[:255]
                    batch.people.append(Person(external_id=str(person["accountId"]), login=login, name=login))
        return batch

    def _category(self, status: Any) -> str:
        if not isinstance(status, dict):
            return "new"
        category = (status.get("statusCategory") or {}).get("key")
        return str(category or self.categories.get(str(status.get("id")), "new"))

    def _transitions(self, record: Mapping[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
        """(first move into an indeterminate status, last move into a done one), from the changelog."""
        started = completed = None
        histories = (record.get("changelog") or {}).get("histories") or []
        for history in sorted(histories, key=lambda item: str(item.get("created") or "")):
            moment = instant(history.get("created"))
            for item in history.get("items") or []:
                if item.get("field") != "status" or moment is None:
                    continue
                category = self.categories.get(str(item.get("to")))
                if category == "indeterminate" and started is None:
                    started = moment
                if category == "done":
                    completed = moment
        return started, completed

    def _work_item(self, record: Mapping[str, Any]) -> WorkItem:
        fields = record.get("fields") or {}
        category = self._category(fields.get("status"))
        resolution = str((fields.get("resolution") or {}).get("name") or "").lower()
        started, completed = self._transitions(record)
        status: WorkStatus = (
            ("canceled" if resolution in self.canceled else "done")
            if category == "done"
            else "in_progress"
            if category == "indeterminate"
            else "todo"
        )
        if status == "done" and completed is None:
            completed = instant(fields.get("resolutiondate")) or instant(fields.get("updated"))
        assignee = fields.get("assignee")
        return WorkItem(
            external_id=str(record["id"]),
            key=str(record.get("key") or record["id"])[:255],
            title=str(fields.get("summary") or ""),
            status=status,
            created_at=required(fields, "created", "issue"),
            body=adf_text(fields.get("description")) or None,
            url=f"{self.settings.base_url.rstrip('/')}/browse/{record.get('key')}",
            assignee=str(assignee.get("displayName"))[:255] if isinstance(assignee, dict) else None,
            labels=tuple(str(label)[:100] for label in fields.get("labels") or []),
            started_at=started if status != "todo" else None,
            completed_at=completed if status == "done" else None,
            updated_at=instant(fields.get("updated")),
        )

    def _incident(self, record: Mapping[str, Any]) -> Incident:
        fields = record.get("fields") or {}
        return Incident(
            external_id=str(record["id"]),
            title=str(fields.get("summary") or ""),
            started_at=required(fields, "created", "incident"),
            resolved_at=instant(fields.get("resolutiondate")),
            url=f"{self.settings.base_url.rstrip('/')}/browse/{record.get('key')}",
        )

    async def create_issue(self, ticket: Ticket) -> tuple[str, dict[str, Any]]:
        """``POST /rest/api/3/issue`` in the ticket project, then the issue as a sync reads it."""
        fields = {
            "project": {"key": self.settings.ticket_project or self.settings.projects[0]},
            "summary": ticket.title[:255],
            "description": adf_document(ticket.description),
            "issuetype": {"name": self.settings.ticket_issue_type},
            "labels": [*ticket.labels, f"priority-{ticket.priority}"],
        }
        made = await self.client.request_json("POST", "/rest/api/3/issue", json={"fields": fields})
        if not isinstance(made, dict) or not made.get("id"):
            raise VendorError("Jira did not say which issue it made")
        found = await self._issue(str(made["id"]))
        return "issues", found

    async def comment_issue(self, external_id: str, key: str, text: str) -> None:
        await self.client.request_json(
            "POST", f"/rest/api/3/issue/{external_id}/comment", json={"body": adf_document(text)}
        )

    async def _issue(self, issue_id: str) -> dict[str, Any]:
        if not self.categories:
            await self._statuses()
        found = await self.client.request_json(
            "GET", f"/rest/api/3/issue/{issue_id}", params={"expand": "changelog", "fields": ",".join(FIELDS)}
        )
        if not isinstance(found, dict) or not found.get("id"):
            raise VendorError("Jira sent an issue that cannot be read")
        return found

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        if not signature.startswith(SIGNATURE_PREFIX):
            return Signature.INVALID
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, signature.removeprefix(SIGNATURE_PREFIX))
        return Signature.VALID if valid else Signature.INVALID

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        delivery = headers.get("x-atlassian-webhook-identifier")
        event = payload.get("webhookEvent") if isinstance(payload, Mapping) else None
        if not delivery or not isinstance(event, str) or len(delivery) > 255:
            raise ConnectorError("a Jira delivery needs X-Atlassian-Webhook-Identifier and a webhookEvent")
        return str(delivery), event[:120]

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        issue = payload.get("issue")
        if not topic.startswith("jira:issue_") or topic == "jira:issue_deleted" or not isinstance(issue, dict):
            return None
        return "issues", await self._issue(str(issue.get("id")))
