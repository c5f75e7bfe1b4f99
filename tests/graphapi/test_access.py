"""Who may ask what: every query field and mutation, called by every role, is refused (``forbidden``) exactly where
REST's gate for the same thing refuses; API keys are held to their scopes; another organization's objects answer
``not_found`` and stay as they were; no credentials is a 401 before anything runs."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
import pytest

from northstar.core.permissions import Role
from tests.core.test_rbac import cell
from tests.factories import Account, add_member
from tests.graphapi.conftest import Graph, codes

ROLES = [role.value for role in Role]
USER = "user"  # fields about the caller as a person: every role, never an API key


def _random() -> str:
    return str(uuid.uuid4())


# (field, permission of the REST route doing the same, operation); $site, $template, $notification, $random, $domain
# are filled in by the test: the founder's real objects for reads, random ids for changes (so nothing is changed
# for a role let through, and the service's own checks never answer instead of the gate).
OPERATIONS: list[tuple[str, str, str]] = [
    ("me", USER, "{ me { id email role } }"),
    ("organizations", USER, "{ organizations { id role } }"),
    ("organization", "organization:read", "{ organization { id name } }"),
    ("dashboard", "dashboards:read", "{ dashboard { currency cards { metric } } }"),
    ("reports", "reports:read", "{ reports { total items { id } } }"),
    ("report", "reports:read", "query($random: UUID!) { report(id: $random) { id } }"),
    ("sites", "sites:read", "{ sites { total items { id notifications { id } templates { id } } } }"),
    (
        "site",
        "sites:read",
        "query($site: UUID!) { site(id: $site) { id notifications { id site { id } } templates { id } "
        "analytics { totals { impressions } } } }",
    ),
    (
        "notification",
        "sites:read",
        "query($site: UUID!, $notification: UUID!) { notification(siteId: $site, id: $notification) { id } }",
    ),
    (
        "template",
        "sites:read",
        "query($site: UUID!, $template: UUID!) { template(siteId: $site, id: $template) { id } }",
    ),
    ("updateMe", USER, 'mutation { updateMe(input: {name: "Renamed"}) { id } }'),
    ("updateOrganization", "organization:update", 'mutation { updateOrganization(input: {name: "Org"}) { id } }'),
    (
        "createSite",
        "sites:create",
        'mutation($domain: String!) { createSite(input: {name: "S", domain: $domain}) { id } }',
    ),
    ("updateSite", "sites:update", 'mutation($random: UUID!) { updateSite(id: $random, input: {name: "N"}) { id } }'),
    ("verifySite", "sites:update", "mutation($random: UUID!) { verifySite(id: $random) { id } }"),
    ("deleteSite", "sites:delete", "mutation($random: UUID!) { deleteSite(id: $random) }"),
    (
        "createTemplate",
        "sites:update",
        'mutation($random: UUID!) { createTemplate(siteId: $random, input: {name: "T", message: "Hi"}) { id } }',
    ),
    (
        "updateTemplate",
        "sites:update",
        'mutation($random: UUID!) { updateTemplate(siteId: $random, id: $random, input: {name: "T"}) { id } }',
    ),
    ("deleteTemplate", "sites:update", "mutation($random: UUID!) { deleteTemplate(siteId: $random, id: $random) }"),
    (
        "createNotification",
        "sites:update",
        'mutation($random: UUID!) { createNotification(siteId: $random, input: {name: "N", type: "announcement"}) '
        "{ id } }",
    ),
    (
        "updateNotification",
        "sites:update",
        "mutation($random: UUID!) { updateNotification(siteId: $random, id: $random, input: {status: PAUSED}) { id } }",
    ),
    (
        "deleteNotification",
        "sites:update",
        "mutation($random: UUID!) { deleteNotification(siteId: $random, id: $random) }",
    ),
    ("abTests", "sites:read", "query($site: UUID!) { abTests(siteId: $site) { total items { id variants { id } } } }"),
    ("abTest", "sites:read", "query($site: UUID!, $random: UUID!) { abTest(siteId: $site, id: $random) { id } }"),
    ("startAbTest", "sites:update", "mutation($random: UUID!) { startAbTest(siteId: $random, id: $random) { id } }"),
    ("stopAbTest", "sites:update", "mutation($random: UUID!) { stopAbTest(siteId: $random, id: $random) { id } }"),
    (
        "completeAbTest",
        "sites:update",
        "mutation($random: UUID!) { completeAbTest(siteId: $random, id: $random, winnerVariantId: $random) { id } }",
    ),
    ("webhookEndpoints", "webhooks:read", "{ webhookEndpoints { total items { id eventTypes } } }"),
    ("webhookDeliveries", "webhooks:read", "{ webhookDeliveries { total items { id status } } }"),
    (
        "replayWebhookDelivery",
        "webhooks:update",
        "mutation($random: UUID!) { replayWebhookDelivery(id: $random) { id } }",
    ),
]


def test_every_query_field_and_mutation_is_in_the_table(graph: Graph) -> None:
    from northstar.graphapi.schema import SCHEMA

    schema = SCHEMA._schema
    assert schema.query_type is not None and schema.mutation_type is not None
    fields = {*schema.query_type.fields, *schema.mutation_type.fields}
    assert fields == {name for name, _, _ in OPERATIONS}


async def _objects(client: httpx.AsyncClient, owner: Account) -> dict[str, str]:
    """A site of ``owner`` with a template and a notification, made through REST."""
    site = await client.post(
        "/api/v1/sites",
        headers=owner.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert site.status_code == 201, site.text
    site_id = site.json()["data"]["id"]
    template = await client.post(
        f"/api/v1/sites/{site_id}/templates", headers=owner.headers, json={"name": "T", "message": "Hello"}
    )
    notification = await client.post(
        f"/api/v1/sites/{site_id}/notifications",
        headers=owner.headers,
        json={"name": "N", "type": "announcement", "templateId": template.json()["data"]["id"]},
    )
    assert notification.status_code == 201, notification.text
    return {
        "site": site_id,
        "template": template.json()["data"]["id"],
        "notification": notification.json()["data"]["id"],
    }


def _variables(query: str, objects: dict[str, str]) -> dict[str, Any]:
    values = {**objects, "random": _random(), "domain": f"new-{secrets.token_hex(4)}.example.com"}
    return {name: value for name, value in values.items() if f"${name}" in query}


async def _outcome(graph: Graph, headers: dict[str, str], query: str, objects: dict[str, str]) -> list[str]:
    response = await graph.post({"query": query, "variables": _variables(query, objects)}, headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "internal_error" not in codes(body.get("errors", [])), body
    return codes(body.get("errors", []))


def _expected(permission: str, role: str) -> bool:
    """Whether the role is refused (``forbidden``) by the gate."""
    return permission != USER and cell(role, permission) == "deny"


@pytest.fixture
async def team(client: httpx.AsyncClient, founder: Account) -> dict[str, Account]:
    members = {"founder": founder}
    for role in ROLES[1:]:
        members[role] = await add_member(client, founder, role)
    return members


async def test_every_role_is_refused_exactly_where_rest_refuses(
    graph: Graph, client: httpx.AsyncClient, team: dict[str, Account]
) -> None:
    objects = await _objects(client, team["founder"])
    for name, permission, query in OPERATIONS:
        for role in reversed(ROLES):
            found = await _outcome(graph, team[role].headers, query, objects)
            refused = "forbidden" in found
            assert refused == _expected(permission, role), (name, role, found)
            if not refused and name in ("site", "notification", "template", "sites", "organization", "me"):
                assert found == [], (name, role, found)  # a read let through answers in full, nested fields included


async def test_api_keys_are_held_to_their_scopes_and_are_not_users(
    graph: Graph, client: httpx.AsyncClient, founder: Account
) -> None:
    objects = await _objects(client, founder)
    created = await client.post(
        "/api/v1/api-keys",
        headers=founder.headers,
        json={"name": "reader", "role": "admin", "scopes": ["sites:read"]},
    )
    assert created.status_code == 201, created.text
    key = {"X-API-Key": created.json()["data"]["key"]}
    assert await _outcome(graph, key, dict((n, q) for n, _, q in OPERATIONS)["site"], objects) == []
    for name, permission, query in OPERATIONS:
        found = await _outcome(graph, key, query, objects)
        if permission == USER:
            assert found == ["user_required"], (name, found)
        elif permission != "sites:read":
            assert found == ["forbidden"], (name, found)
        else:
            assert "forbidden" not in found, (name, found)


async def test_another_organizations_objects_are_not_found_and_stay_as_they_were(
    graph: Graph, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    theirs = await _objects(client, other_founder)
    report = await client.post("/api/v1/reports", headers=other_founder.headers, json={"kind": "weekly_digest"})
    assert report.status_code == 202, report.text
    theirs["report"] = report.json()["data"]["id"]
    site, template, notification = theirs["site"], theirs["template"], theirs["notification"]
    operations = [
        f'{{ site(id: "{site}") {{ id }} }}',
        f'{{ notification(siteId: "{site}", id: "{notification}") {{ id }} }}',
        f'{{ template(siteId: "{site}", id: "{template}") {{ id }} }}',
        f'{{ report(id: "{theirs["report"]}") {{ id }} }}',
        f'mutation {{ updateSite(id: "{site}", input: {{name: "Mine"}}) {{ id }} }}',
        f'mutation {{ verifySite(id: "{site}") {{ id }} }}',
        f'mutation {{ deleteSite(id: "{site}") }}',
        f'mutation {{ createTemplate(siteId: "{site}", input: {{name: "T", message: "Hi"}}) {{ id }} }}',
        f'mutation {{ updateTemplate(siteId: "{site}", id: "{template}", input: {{name: "Mine"}}) {{ id }} }}',
        f'mutation {{ deleteTemplate(siteId: "{site}", id: "{template}") }}',
        f'mutation {{ createNotification(siteId: "{site}", input: {{name: "N", type: "announcement"}}) {{ id }} }}',
        f'mutation {{ updateNotification(siteId: "{site}", id: "{notification}", input: {{name: "Mine"}}) {{ id }} }}',
        f'mutation {{ deleteNotification(siteId: "{site}", id: "{notification}") }}',
    ]
    for query in operations:
        assert codes(await graph.errors(founder, query)) == ["not_found"], query
    listed = await graph.run(founder, "{ sites { total items { id } } }")
    assert listed["sites"] == {"total": 0, "items": []}
    own = await graph.run(
        other_founder, f'{{ site(id: "{site}") {{ name notifications {{ name }} templates {{ name }} }} }}'
    )
    assert own["site"] == {"name": "Shop", "notifications": [{"name": "N"}], "templates": [{"name": "T"}]}


async def test_no_or_bad_credentials_are_refused_before_anything_runs_as_rest_refuses_them(
    graph: Graph, client: httpx.AsyncClient
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "ns_live_bogus"}):
        response = await graph.post({"query": "{ me { id } }"}, headers)
        rest = await client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == rest.status_code == 401, response.text
        error = rest.json()["error"]
        assert response.json() == {"errors": [{"message": error["message"], "extensions": {"code": error["code"]}}]}
        assert response.headers.get("www-authenticate") == rest.headers.get("www-authenticate")
