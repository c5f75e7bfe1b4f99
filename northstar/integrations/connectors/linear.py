"""Linear: a workspace's issues, cycles and projects through its GraphQL API, normalised into DevBizOps' engineering
model as work items and incidents.

Every list is a connection read with cursor paging (``first: 100``, ``after``, ``pageInfo { hasNextPage endCursor
}``). Issues are filtered by last update (``filter: { updatedAt: { gte: … } }``) from the high-water mark, the
newest update of the previous sync, and the cursor after each page keeps the connection's ``endCursor``, so a sync
that stops resumes at the next page of the same query. An issue's workflow state type gives its status
(``triage``, ``backlog``, ``unstarted``: to do; ``started``: in progress; ``completed``: done; ``canceled``), and its
``startedAt`` and ``completedAt`` its times; issues labelled with one of ``incidentLabels`` are incidents. Cycles and
projects are kept as fetched.

Linear states its budget as ``X-RateLimit-Requests-Remaining`` and ``-Reset`` (epoch milliseconds); requests are
counted against it and wait for the reset, and a refusal (``RATELIMITED``) is waited out. Webhooks carry
``Linear-Signature`` (the body's HMAC-SHA256, hex) and ``webhookTimestamp``; a delivery more than a minute old is
refused as a replay. An issue's delivery is read again from the API.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
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
from northstar.integrations.connectors.forge import budget_reader, instant, required

BASE_URL = "https://api.linear.app"
GRAPHQL_PATH = "/graphql"
PAGE_SIZE = 100
EPOCH_START = "1970-01-01T00:00:00.000Z"
WEBHOOK_TOLERANCE_MS = 60_000
ISSUE_FIELDS = """id identifier title description url priority estimate createdAt updatedAt startedAt completedAt
    canceledAt state { type name } assignee { id name displayName } team { id key } project { id name }
    cycle { id number } labels { nodes { name } }"""
QUERIES = {
    "issues": f"""query Issues($first: Int!, $after: String, $since: DateTimeOrDuration!) {{
  issues(first: $first, after: $after, filter: {{ updatedAt: {{ gte: $since }} }}) {{
    nodes {{ {ISSUE_FIELDS} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""",
    "cycles": """query Cycles($first: Int!, $after: String) {
  cycles(first: $first, after: $after) {
    nodes { id number name startsAt endsAt completedAt team { id key } }
    pageInfo { hasNextPage endCursor }
  }
}""",
    "projects": """query Projects($first: Int!, $after: String) {
  projects(first: $first, after: $after) {
    nodes { id name state targetDate startedAt completedAt }
    pageInfo { hasNextPage endCursor }
  }
}""",
}
ISSUE_QUERY = f"query Issue($id: String!) {{ issue(id: $id) {{ {ISSUE_FIELDS} }} }}"
TEAMS_QUERY = "query Teams { teams(first: 100) { nodes { id key } } }"
ISSUE_CREATE = f"""mutation IssueCreate($input: IssueCreateInput!) {{
  issueCreate(input: $input) {{ success issue {{ {ISSUE_FIELDS} }} }}
}}"""
COMMENT_CREATE = "mutation CommentCreate($input: CommentCreateInput!) { commentCreate(input: $input) { success } }"
PRIORITIES = {"high": 2, "medium": 3, "low": 4}  # Linear: 1 urgent, 2 high, 3 medium, 4 low
VIEWER_QUERY = "query { viewer { id } }"
STATUSES: dict[str, WorkStatus] = {
    "triage": "todo",
    "backlog": "todo",
    "unstarted": "todo",
    "started": "in_progress",
    "completed": "done",
    "canceled": "canceled",
}


class Settings(ConnectorSettings):
    base_url: str = BASE_URL
    requests_per_second: float = Field(5.0, gt=0, le=100)
    incident_labels: list[str] = Field(default_factory=lambda: ["incident"], max_length=50)
    max_wait_seconds: float = Field(60.0, ge=0, le=3600)
    ticket_team: str | None = Field(
        None, pattern=r"^[A-Za-z0-9]{1,10}$", description="the team key approved tickets go to (default: the first)"
    )


class LinearConnector(Connector):
    provider = "linear"
    title = "Linear"
    streams = ("issues", "cycles", "projects")
    credential_fields = ("api_key", "webhook_secret")
    settings_model = Settings
    signature_header = "linear-signature"
    engineering_source = True
    files_tickets = True

    def __init__(
        self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient, settings: Settings
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.settings = settings
        self.incident_labels = {name.lower() for name in settings.incident_labels}

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> LinearConnector:
        settings = validated(Settings, config)
        client = paced_client(
            settings,
            policy,
            base_url=settings.base_url,
            headers={"Authorization": credentials.get("api_key", ""), "Content-Type": "application/json"},
            stated=budget_reader("x-ratelimit-requests-remaining", "x-ratelimit-requests-reset", reset_unit=0.001),
            max_wait_seconds=settings.max_wait_seconds,
        )
        return cls(credentials=credentials, config=config, client=client, settings=settings)

    async def _query(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        answer = await self.client.request_json(
            "POST", GRAPHQL_PATH, json={"query": query, "variables": dict(variables)}
        )
        if not isinstance(answer, dict):
            raise VendorError("Linear sent an answer that cannot be read")
        errors = answer.get("errors")
        if errors:
            message = errors[0].get("message") if isinstance(errors, list) and isinstance(errors[0], dict) else None
            raise VendorError(f"Linear refused the query: {str(message or errors)[:300]}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise VendorError("Linear sent an answer without data")
        return data

    async def test(self) -> None:
        await self._query(VIEWER_QUERY, {})

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        state = dict(cursor or {})
        since = str(state.get("since") or EPOCH_START)
        newest = str(state.get("newest") or since)
        after = state.get("after")
        variables: dict[str, Any] = {"first": PAGE_SIZE}
        if stream == "issues":
            variables["since"] = since
        while True:
            found = (await self._query(QUERIES[stream], {**variables, "after": after})).get(stream)
            nodes = found.get("nodes") if isinstance(found, dict) else None
            info = found.get("pageInfo") if isinstance(found, dict) else None
            if (
                not isinstance(nodes, list)
                or not isinstance(info, dict)
                or not all(isinstance(node, dict) and node.get("id") for node in nodes)
            ):
                raise VendorError(f"Linear sent a page of {stream} that cannot be read")
            newest = max([newest, *(str(node.get("updatedAt") or "") for node in nodes)])
            after = info.get("endCursor") if info.get("hasNextPage") else None
            if stream != "issues":
                yield Page(stream, nodes, None)
            elif after is None:
                yield Page(stream, nodes, {"since": newest})
            else:
                yield Page(stream, nodes, {"since": since, "after": after, "newest": newest})
            if after is None:
                return

    def engineering(self, stream: str, records: list[dict[str, Any]]) -> EngineeringBatch:
        batch = EngineeringBatch()
        if stream != "issues":
            return batch
        for record in records:
            labels = tuple(
                str(label.get("name"))[:100]
                for label in (record.get("labels") or {}).get("nodes") or []
                if isinstance(label, dict) and label.get("name")
            )
            if {label.lower() for label in labels} & self.incident_labels:
                batch.incidents.append(incident_of(record))
            else:
                batch.work_items.append(work_item_of(record, labels))
            assignee = record.get("assignee")
            if isinstance(assignee, dict) and assignee.get("id"):
                login = str(assignee.get("displayName") or assignee.get("name") or assignee["id"])[:255]
                batch.people.append(Person(external_id=str(assignee["id"]), login=login, name=assignee.get("name")))
        return batch

    async def create_issue(self, ticket: Ticket) -> tuple[str, dict[str, Any]]:
        """``issueCreate`` in the ticket team; the issue as a sync reads it."""
        teams = ((await self._query(TEAMS_QUERY, {})).get("teams") or {}).get("nodes") or []
        wanted = (self.settings.ticket_team or "").lower()
        team = next((found for found in teams if not wanted or str(found.get("key", "")).lower() == wanted), None)
        if team is None:
            raise ConnectorError(f"Linear has no team {self.settings.ticket_team or ''} to file the ticket in".strip())
        created = (
            await self._query(
                ISSUE_CREATE,
                {
                    "input": {
                        "teamId": team["id"],
                        "title": ticket.title,
                        "description": ticket.description,
                        "priority": PRIORITIES.get(ticket.priority, 0),
                    }
                },
            )
        ).get("issueCreate")
        issue = created.get("issue") if isinstance(created, dict) and created.get("success") else None
        if not isinstance(issue, dict) or not issue.get("id"):
            raise VendorError("Linear did not make the issue")
        return "issues", issue

    async def comment_issue(self, external_id: str, key: str, text: str) -> None:
        done = (await self._query(COMMENT_CREATE, {"input": {"issueId": external_id, "body": text}})).get(
            "commentCreate"
        )
        if not isinstance(done, dict) or not done.get("success"):
            raise VendorError("Linear did not add the comment")

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.strip().lower()):
            return Signature.INVALID
        try:
            sent = orjson.loads(body).get("webhookTimestamp")
        except (orjson.JSONDecodeError, AttributeError):
            return Signature.INVALID
        if not isinstance(sent, int) or abs(time.time() * 1000 - sent) > WEBHOOK_TOLERANCE_MS:
            return Signature.EXPIRED
        return Signature.VALID

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        delivery = headers.get("linear-delivery")
        kind, action = payload.get("type"), payload.get("action")
        if not delivery or not isinstance(kind, str) or len(delivery) > 255:
            raise ConnectorError("a Linear delivery needs Linear-Delivery and a type")
        return str(delivery), f"{kind}.{action}"[:120]

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        data = payload.get("data")
        if not isinstance(data, dict) or not data.get("id") or topic.endswith(".remove"):
            return None
        if topic.startswith("Issue."):
            issue = (await self._query(ISSUE_QUERY, {"id": data["id"]})).get("issue")
            if not isinstance(issue, dict) or not issue.get("id"):
                raise VendorError("Linear sent an issue that cannot be read")
            return "issues", issue
        if topic.startswith("Cycle."):
            return "cycles", dict(data)
        if topic.startswith("Project."):
            return "projects", dict(data)
        return None


def work_item_of(record: Mapping[str, Any], labels: tuple[str, ...]) -> WorkItem:
    state_type = str((record.get("state") or {}).get("type") or "")
    status = STATUSES.get(state_type, "todo")
    assignee = record.get("assignee")
    return WorkItem(
        external_id=str(record["id"]),
        key=str(record.get("identifier") or record["id"])[:255],
        title=str(record.get("title") or ""),
        status=status,
        created_at=required(record, "createdAt", "issue"),
        body=record.get("description") if isinstance(record.get("description"), str) else None,
        url=record.get("url"),
        assignee=str(assignee.get("displayName") or assignee.get("name"))[:255] if isinstance(assignee, dict) else None,
        labels=labels,
        started_at=instant(record.get("startedAt")),
        completed_at=instant(record.get("completedAt")) if status == "done" else None,
        updated_at=instant(record.get("updatedAt")),
    )


def incident_of(record: Mapping[str, Any]) -> Incident:
    return Incident(
        external_id=str(record["id"]),
        title=str(record.get("title") or ""),
        started_at=required(record, "createdAt", "incident"),
        resolved_at=instant(record.get("completedAt")) or instant(record.get("canceledAt")),
        url=record.get("url"),
    )
