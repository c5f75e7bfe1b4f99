"""Members change only what they created; founders and admins change anything in their org.

Every resource with a creator is here: projects, sites (with the templates and notifications inside them), data
jobs (cancel, retry), datasets, dashboard goals, alert rules; and integrations and API keys, which members cannot
change at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.factories import Account, add_member, create_project


@dataclass
class Org:
    client: httpx.AsyncClient
    founder: Account
    admin: Account
    member: Account
    run_jobs: Callable[[], Awaitable[None]]

    async def post(self, account: Account, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=account.headers)
        assert response.status_code in (201, 202), response.text
        return dict(response.json()["data"])


@pytest.fixture
async def org(client: httpx.AsyncClient, founder: Account, run_jobs: Callable[[], Awaitable[None]]) -> Org:
    return Org(
        client,
        founder,
        await add_member(client, founder, "admin"),
        await add_member(client, founder, "member"),
        run_jobs,
    )


async def _project(org: Org, owner: Account) -> str:
    return f"/api/v1/projects/{(await create_project(org.client, owner))['id']}"


async def _site(org: Org, owner: Account) -> str:
    site = await org.post(owner, "/api/v1/sites", {"name": "Shop", "domain": f"{secrets.token_hex(6)}.example"})
    return f"/api/v1/sites/{site['id']}"


async def _template(org: Org, owner: Account) -> str:
    site = await _site(org, owner)
    template = await org.post(owner, f"{site}/templates", {"name": "T", "message": "{{city}}"})
    return f"{site}/templates/{template['id']}"


async def _notification(org: Org, owner: Account) -> str:
    site = await _site(org, owner)
    notification = await org.post(owner, f"{site}/notifications", {"name": "N", "type": "announcement"})
    return f"{site}/notifications/{notification['id']}"


async def _pending_job(org: Org, owner: Account) -> str:
    job = await org.post(owner, "/api/v1/generate", {"rows": 5, "columns": [{"name": "n", "type": "int"}]})
    return f"/api/v1/jobs/{job['jobId']}"


async def _cancelled_job(org: Org, owner: Account) -> str:
    job = await _pending_job(org, owner)
    await org.post(owner, f"{job}/cancel")
    return job


async def _dataset(org: Org, owner: Account) -> str:
    job = await org.post(owner, "/api/v1/generate", {"rows": 5, "columns": [{"name": "n", "type": "int"}]})
    await org.run_jobs()
    status = (await org.client.get(f"/api/v1/status/{job['jobId']}", headers=owner.headers)).json()["data"]
    assert status["status"] == "completed", status
    return f"/api/v1/datasets/{status['result']['datasetId']}"


async def _goal(org: Org, owner: Account) -> str:
    goal = await org.post(
        owner, "/api/v1/dashboard/goals", {"metric": "mrr", "target": 1000, "targetDate": "2030-01-01"}
    )
    return f"/api/v1/dashboard/goals/{goal['id']}"


async def _integration(org: Org, owner: Account) -> str:
    integration = await org.post(
        owner,
        "/api/v1/integrations",
        {"provider": "stripe", "name": "Billing", "credentials": {"apiKey": "sk_test_x"}, "test": False},
    )
    return f"/api/v1/integrations/{integration['id']}"


async def _alert_rule(org: Org, owner: Account) -> str:
    condition = {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 1000}
    rule = await org.post(owner, "/api/v1/notifications/rules", {"name": "MRR floor", "condition": condition})
    return f"/api/v1/notifications/rules/{rule['id']}"


async def _api_key(org: Org, owner: Account) -> str:
    return f"/api/v1/api-keys/{(await org.post(owner, '/api/v1/api-keys', {'name': 'ci'}))['id']}"


Make = Callable[[Org, Account], Awaitable[str]]
# (what, how to make one, the change: method, path suffix, body; whether members may make one at all)
CHANGES: list[tuple[str, Make, str, str, dict[str, Any] | None, bool]] = [
    ("project", _project, "PATCH", "", {"description": "changed"}, True),
    ("project", _project, "DELETE", "", None, True),
    ("site", _site, "PATCH", "", {"name": "changed"}, True),
    ("site", _site, "DELETE", "", None, True),
    ("site", _site, "POST", "/templates", {"name": "T2", "message": "{{city}}"}, True),
    ("template", _template, "PATCH", "", {"name": "changed"}, True),
    ("template", _template, "DELETE", "", None, True),
    ("notification", _notification, "PATCH", "", {"name": "changed"}, True),
    ("notification", _notification, "DELETE", "", None, True),
    ("job", _pending_job, "POST", "/cancel", None, True),
    ("job", _cancelled_job, "POST", "/retry", None, True),
    ("dataset", _dataset, "DELETE", "", None, True),
    ("goal", _goal, "PATCH", "", {"target": 2000}, True),
    ("goal", _goal, "DELETE", "", None, True),
    ("alert rule", _alert_rule, "PATCH", "", {"cooldownMinutes": 60}, True),
    ("alert rule", _alert_rule, "DELETE", "", None, True),
    ("integration", _integration, "PATCH", "", {"name": "changed"}, False),
    ("api key", _api_key, "DELETE", "", None, False),
]


@pytest.mark.parametrize(
    ("what", "make", "method", "suffix", "body", "members_make"),
    CHANGES,
    ids=[f"{what}-{method}{suffix}" for what, _, method, suffix, _, _ in CHANGES],
)
async def test_members_change_only_what_they_created(
    org: Org, what: str, make: Make, method: str, suffix: str, body: dict[str, Any] | None, members_make: bool
) -> None:
    async def change(account: Account, path: str) -> httpx.Response:
        return await org.client.request(method, path + suffix, json=body, headers=account.headers)

    founders = await make(org, org.founder)
    refused = await change(org.member, founders)
    assert refused.status_code == 403, refused.text
    by_admin = await change(org.admin, founders)
    assert by_admin.status_code < 300, by_admin.text
    if members_make:
        mine = await make(org, org.member)
        assert (await change(org.member, mine)).status_code < 300
        by_founder = await change(org.founder, await make(org, org.member))
        assert by_founder.status_code < 300, by_founder.text
