"""Row-level security: every tenant table is protected, and no endpoint crosses tenants."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from northstar.alerts.service import inbox
from northstar.app import API_PREFIX
from northstar.core.db import Database
from northstar.modules import MANIFESTS
from northstar.webhooks import service as webhooks
from tests.factories import Account, add_member, create_project, invite, unique_email


async def test_every_table_with_org_id_has_forced_rls(database_url: str) -> None:
    # Temporary tables are left out: they are the private COPY staging of one connection (emptied at every
    # commit), invisible to every other session.
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        rows = await (
            await conn.execute("""
            SELECT n.nspname || '.' || c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
              AND EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped)
        """)
        ).fetchall()
    assert len(rows) >= 10
    unprotected = [name for name, enabled, forced, has_policy in rows if not (enabled and forced and has_policy)]
    assert unprotected == []


async def test_app_role_cannot_bypass_rls_and_owns_nothing(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        role = await (
            await conn.execute(
                "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'northstar_app'"
            )
        ).fetchone()
        owned = await (
            await conn.execute(
                "SELECT count(*) FROM pg_class"
                " WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = 'northstar_app')"
            )
        ).fetchone()
    assert role == (False, False, False)
    assert owned == (0,)


async def test_policies_fail_closed_without_a_tenant(database_url: str, founder: Account) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        tables = [
            row[0]
            for row in await (
                await conn.execute("""
            SELECT DISTINCT table_schema || '.' || table_name FROM information_schema.columns
            WHERE column_name = 'org_id' AND table_schema IN ('auth', 'core')""")
            ).fetchall()
        ]
        async with conn.transaction():
            await conn.execute("SET LOCAL ROLE northstar_app")
            for table in [*tables, "core.organizations"]:
                count = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()
                assert count == (0,), table
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with conn.transaction():
                    await conn.execute("INSERT INTO core.projects (org_id, name) VALUES (%s, 'x')", (founder.org_id,))


async def test_tenant_context_shows_only_that_tenant(
    database_url: str, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    await create_project(client, founder, "mine")
    await create_project(client, other_founder, "theirs")
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        await conn.execute("SET LOCAL ROLE northstar_app")
        await conn.execute("SELECT set_config('northstar.org_id', %s, true)", (str(founder.org_id),))
        orgs = {row[0] for row in await (await conn.execute("SELECT DISTINCT org_id FROM core.projects")).fetchall()}
        assert orgs == {founder.org_id}


async def _as_app_role(conn: psycopg.AsyncConnection[Any], org_id: uuid.UUID, statement: str) -> None:
    async with conn.transaction():
        await conn.execute("SET LOCAL ROLE northstar_app")
        await conn.execute("SELECT set_config('northstar.org_id', %s, true)", (str(org_id),))
        await conn.execute(statement)


async def test_app_role_cannot_rewrite_the_audit_trail(database_url: str, founder: Account) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for statement in (
            "UPDATE core.audit_events SET action = 'x'",
            "DELETE FROM core.audit_events",
            "UPDATE core.audit_chain_heads SET seq = 0",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                await _as_app_role(conn, founder.org_id, statement)


async def _objects_of(client: httpx.AsyncClient, database: Database, owner: Account) -> dict[str, str]:
    """One object of every kind in ``owner``'s org, by the path parameter that names it."""
    project = await create_project(client, owner, "secret project")
    team = (await client.post("/api/v1/teams", json={"name": "secret team"}, headers=owner.headers)).json()["data"]
    member = await add_member(client, owner, "member")
    invitation = await invite(client, owner, email=unique_email(), role="analyst")
    key = (await client.post("/api/v1/api-keys", json={"name": "k"}, headers=owner.headers)).json()["data"]
    upload = (
        await client.post("/api/v1/upload", files={"file": ("secret.csv", b"secret\n1\n")}, headers=owner.headers)
    ).json()["data"]
    job = (await client.get(f"/api/v1/status/{upload['jobId']}", headers=owner.headers)).json()["data"]
    site = (
        await client.post(
            "/api/v1/sites",
            headers=owner.headers,
            json={"name": "secret site", "domain": f"{secrets.token_hex(6)}.example"},
        )
    ).json()["data"]
    template = (
        await client.post(
            f"/api/v1/sites/{site['id']}/templates",
            headers=owner.headers,
            json={"name": "secret template", "message": "{{city}}"},
        )
    ).json()["data"]
    notification = (
        await client.post(
            f"/api/v1/sites/{site['id']}/notifications",
            headers=owner.headers,
            json={"name": "secret notification", "type": "announcement"},
        )
    ).json()["data"]
    ab_test = (
        await client.post(
            f"/api/v1/sites/{site['id']}/ab-tests",
            headers=owner.headers,
            json={
                "name": "secret test",
                "notificationId": notification["id"],
                "variants": CANDIDATE_FIELDS["variants"],
            },
        )
    ).json()["data"]
    field = (
        await client.post(
            "/api/v1/custom-fields", headers=owner.headers, json={"name": "secret", "key": "secret", "type": "text"}
        )
    ).json()["data"]
    backend = (
        await client.post(
            "/api/v1/api-keys", headers=owner.headers, json={"name": "backend", "scopes": ["events:create"]}
        )
    ).json()["data"]
    recorded = await client.post(
        f"/api/v1/sites/{site['id']}/events",
        headers={"X-API-Key": backend["key"]},
        json={"events": [{"type": "signup", "visitorId": "secret visitor", "custom": {"secret": "s"}}]},
    )
    assert recorded.status_code == 202, recorded.text
    profile = (await client.get(f"/api/v1/sites/{site['id']}/visitors", headers=owner.headers)).json()["data"][0]
    integration = (
        await client.post(
            "/api/v1/integrations",
            headers=owner.headers,
            json={
                "provider": "stripe",
                "name": "secret integration",
                "credentials": {"apiKey": "sk_test_secret"},
                "test": False,
            },
        )
    ).json()["data"]
    goal = (
        await client.post(
            "/api/v1/dashboard/goals",
            headers=owner.headers,
            json={"metric": "mrr", "target": 100000, "targetDate": "2030-01-01"},
        )
    ).json()["data"]
    rule = (
        await client.post(
            "/api/v1/notifications/rules",
            headers=owner.headers,
            json={"name": "secret rule", "condition": {"kind": "report"}},
        )
    ).json()["data"]
    channel = (
        await client.post(
            "/api/v1/notifications/channels",
            headers=owner.headers,
            json={"name": "secret channel", "kind": "slack_bot", "token": "xoxb-secret", "channel": "C0SECRET"},
        )
    ).json()["data"]
    report = (await client.post("/api/v1/reports", headers=owner.headers, json={"kind": "monthly_report"})).json()[
        "data"
    ]
    share = (
        await client.post(
            f"/api/v1/reports/{report['id']}/shares", headers=owner.headers, json={"label": "secret share"}
        )
    ).json()["data"]
    privacy_request = (
        await client.post(
            "/api/v1/privacy/requests",
            headers=owner.headers,
            json={"kind": "export", "subjectType": "visitor", "subject": "secret-customer"},
        )
    ).json()["data"]
    async with database.tenant_transaction(org_id=owner.org_id) as session:  # what a delivery writes
        message_id = await inbox.notify(
            session, org_id=owner.org_id, user_id=owner.user_id, kind="notice", title="secret message", body="b"
        )
    async with database.engine.begin() as connection:  # an archive holding the org's events, as the archiver records
        archive_id = await connection.scalar(
            text(
                "INSERT INTO socialproof.archives (month, object_key, status, schema_version, range_start, range_end,"
                " rows) VALUES ('2020-01-01', 'archives/secret.parquet', 'verified', 1, '2020-01-01', '2020-02-01', 1)"
                " RETURNING id"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO socialproof.archive_orgs (archive_id, org_id, rows, first_occurred_at, last_occurred_at)"
                " VALUES (:archive, :org, 1, '2020-01-02', '2020-01-02')"
            ),
            {"archive": archive_id, "org": owner.org_id},
        )
    restore = (await client.post(f"/api/v1/archives/{archive_id}/restore", headers=owner.headers, json={})).json()[
        "data"
    ]
    endpoint = (
        await client.post(
            "/api/v1/webhooks/endpoints",
            headers=owner.headers,
            json={"url": "https://hooks.example.com/secret", "eventTypes": ["quota.reached"]},
        )
    ).json()["data"]
    async with database.tenant_transaction(org_id=owner.org_id) as session:  # what an emitted event writes
        await webhooks.emit(session, org_id=owner.org_id, event_type="quota.reached", data={"secret": "quota"})
    [delivery] = (await client.get("/api/v1/webhooks/deliveries", headers=owner.headers)).json()["data"]
    hook = (
        await client.post(
            f"/api/v1/sites/{site['id']}/inbound-hooks",
            headers=owner.headers,
            json={"provider": "generic", "name": "secret hook"},
        )
    ).json()["data"]
    async with database.tenant_transaction(org_id=owner.org_id) as session:  # what a GitHub sync writes
        repository_id = await session.scalar(
            text(
                "INSERT INTO devbizops.repositories (org_id, integration_id, external_id, name, archived)"
                " VALUES (:org, :integration, '1', 'acme/secret', false) RETURNING id"
            ),
            {"org": owner.org_id, "integration": integration["id"]},
        )
        work_item_id = await session.scalar(
            text(
                "INSERT INTO devbizops.work_items (org_id, integration_id, external_id, key, title, labels, status,"
                " created_at) VALUES (:org, :integration, '1', 'ENG-1', 'secret', '{}', 'todo', now()) RETURNING id"
            ),
            {"org": owner.org_id, "integration": integration["id"]},
        )
        customer_id = await session.scalar(
            text(
                "INSERT INTO metrics.customers (org_id, integration_id, external_id, name) VALUES"
                " (:org, :integration, 'secret', 'secret') RETURNING id"
            ),
            {"org": owner.org_id, "integration": integration["id"]},
        )
        link_id = await session.scalar(
            text(
                "INSERT INTO devbizops.links (org_id, work_item_id, customer_id, source) VALUES"
                " (:org, :item, :customer, 'manual') RETURNING id"
            ),
            {"org": owner.org_id, "item": work_item_id, "customer": customer_id},
        )
        run_id = await session.scalar(
            text(
                "INSERT INTO devbizops.agent_runs (org_id, agent, status, mode, input) VALUES"
                " (:org, 'tech_translator', 'succeeded', 'deterministic', '{}') RETURNING id"
            ),
            {"org": owner.org_id},
        )
        proposal_id = await session.scalar(
            text(
                "INSERT INTO devbizops.proposals (org_id, run_id, position, kind, payload, status) VALUES"
                " (:org, :run, 1, 'create_ticket', '{}', 'proposed') RETURNING id"
            ),
            {"org": owner.org_id, "run": run_id},
        )
        item_id = await session.scalar(
            text(
                "INSERT INTO devbizops.roadmap_items (org_id, title, status, target_quarter, rank) VALUES"
                " (:org, 'secret plan', 'planned', '2027-Q1', 1) RETURNING id"
            ),
            {"org": owner.org_id},
        )
    return {
        "item_id": str(item_id),
        "run_id": str(run_id),
        "proposal_id": str(proposal_id),
        "work_item_id": str(work_item_id),
        "link_id": str(link_id),
        "repository_id": str(repository_id),
        "request_id": privacy_request["id"],
        "archive_id": str(archive_id),
        "restore_id": restore["id"],
        "report_id": report["id"],
        "share_id": share["id"],
        "kind": "html",
        "rule_id": rule["id"],
        "channel_id": channel["id"],
        "message_id": str(message_id),
        "site_id": site["id"],
        "template_id": template["id"],
        "notification_id": notification["id"],
        "test_id": ab_test["id"],
        "field_id": field["id"],
        "visitor_id": profile["visitorId"],
        "integration_id": integration["id"],
        "provider": "stripe",
        "goal_id": goal["id"],
        "project_id": project["id"],
        "team_id": team["id"],
        "user_id": str(member.user_id),
        "invitation_id": str(invitation["id"]),
        "key_id": key["id"],
        "job_id": upload["jobId"],
        "file_id": upload["fileId"],
        "dataset_id": job["result"]["datasetId"],
        "endpoint_id": endpoint["id"],
        "delivery_id": delivery["id"],
        "hook_id": hook["id"],
    }


# Addressed by id but authenticated by the provider's signature, not by a credential of ours: a caller without the
# secret gets 401 whatever the id (tests/integrations/test_webhooks.py).
SIGNED_ROUTES = {
    ("POST", f"{API_PREFIX}/integrations/{{integration_id}}/webhooks/{{provider}}"),
    ("GET", f"{API_PREFIX}/report-files/{{report_id}}/{{kind}}"),  # signed by us: tests/reports/test_reports.py
    ("POST", f"{API_PREFIX}/inbound-hooks/{{hook_id}}"),  # a store's delivery: tests/socialproof/test_hooks.py
}
# Addressed by a name within the caller's own org, not by another tenant's id (another org's OAuth trip is refused
# by its state: tests/integrations/test_oauth.py).
OWN_ORG_ROUTES = {
    ("PATCH", f"{API_PREFIX}/report-schedules/{{kind}}"),
    ("POST", f"{API_PREFIX}/integrations/oauth/{{provider}}/start"),
    ("POST", f"{API_PREFIX}/integrations/oauth/{{provider}}/finish"),
}


def _api_routes() -> list[tuple[str, str]]:
    routes = []
    for router in (router for manifest in MANIFESTS for router in manifest.api_routers):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            for method in route.methods:
                if (method, API_PREFIX + route.path) not in SIGNED_ROUTES | OWN_ORG_ROUTES:
                    routes.append((method, API_PREFIX + route.path))
    return routes


CANDIDATE_FIELDS = {
    "name": "hijack",
    "role": "member",
    "description": "x",
    "token": "inv_x_y",
    "message": "{{city}}",
    "type": "announcement",
    "events": [{"type": "signup"}],
    "label": "x",
    "notificationId": "00000000-0000-4000-8000-000000000000",
    "variants": [{"name": "A", "isControl": True, "weight": 50}, {"name": "B", "weight": 50}],
    "winnerVariantId": "00000000-0000-4000-8000-000000000000",
    "provider": "generic",
    "plan": "starter",
    "teamId": None,
    "customerId": "00000000-0000-4000-8000-000000000000",
    "targetQuarter": "2027-Q1",
}


def body_for(openapi: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    """A valid JSON body for the route, so a cross-tenant call fails on the object and not the body."""
    operation = openapi["paths"][path][method.lower()]
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    ref = content["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = openapi["components"]["schemas"][ref]["properties"]
    return {name: value for name, value in CANDIDATE_FIELDS.items() if name in properties}


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def test_no_endpoint_reaches_another_tenants_objects(
    client: httpx.AsyncClient, database: Database, founder: Account, other_founder: Account
) -> None:
    victims = await _objects_of(client, database, founder)
    randoms = {name: str(uuid.uuid4()) if name.endswith("_id") else value for name, value in victims.items()}
    openapi = (await client.get("/openapi.json")).json()
    checked = 0
    for method, path in _api_routes():
        if "{" not in path:
            continue
        body = body_for(openapi, method, path)
        foreign = await client.request(method, _fill(path, victims), headers=other_founder.headers, json=body)
        missing = await client.request(method, _fill(path, randoms), headers=other_founder.headers, json=body)
        assert foreign.status_code == missing.status_code == 404, (method, path, foreign.text)
        assert foreign.json() == missing.json(), (method, path)
        checked += 1
    assert checked >= 15
    # And the victim's objects are all still there, untouched.
    project = await client.get(f"/api/v1/projects/{victims['project_id']}", headers=founder.headers)
    assert project.json()["data"]["name"] == "secret project"


async def test_lists_never_show_another_tenants_rows(
    client: httpx.AsyncClient, database: Database, founder: Account, other_founder: Account
) -> None:
    await _objects_of(client, database, founder)
    for path in (
        "/api/v1/projects",
        "/api/v1/teams",
        "/api/v1/members",
        "/api/v1/invitations",
        "/api/v1/api-keys",
        "/api/v1/audit",
        "/api/v1/projects?q=secret",
        "/api/v1/jobs",
        "/api/v1/datasets",
        "/api/v1/queue",
        "/api/v1/sites",
        "/api/v1/sites?q=secret",
        "/api/v1/custom-fields",
        "/api/v1/notifications/rules",
        "/api/v1/notifications/channels",
        "/api/v1/notifications/history",
        "/api/v1/notifications/inbox",
        "/api/v1/privacy/requests",
        "/api/v1/privacy/consents",
        "/api/v1/archives",
        "/api/v1/archive-restores",
        "/api/v1/webhooks/endpoints",
        "/api/v1/webhooks/deliveries",
    ):
        response = await client.get(path, headers=other_founder.headers)
        assert response.status_code == 200, path
        text = response.text
        assert str(founder.org_id) not in text and str(founder.user_id) not in text, path
        assert "secret" not in text, path
    orgs = (await client.get("/api/v1/organizations", headers=other_founder.headers)).json()["data"]
    assert [org["id"] for org in orgs] == [str(other_founder.org_id)]


async def test_x_org_id_only_switches_to_orgs_you_belong_to(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    foreign = await client.get("/api/v1/projects", headers={**other_founder.headers, "X-Org-Id": str(founder.org_id)})
    assert foreign.status_code == 401
    assert foreign.json()["error"]["code"] == "not_a_member"
    created = await client.post("/api/v1/organizations", json={"name": "Second"}, headers=founder.headers)
    second = created.json()["data"]["id"]
    switched = await client.get("/api/v1/organization", headers={**founder.headers, "X-Org-Id": second})
    assert switched.json()["data"]["name"] == "Second"


async def test_malformed_x_org_id_is_a_client_error(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.get("/api/v1/projects", headers={**founder.headers, "X-Org-Id": "not-a-uuid"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_org_id"


async def test_a_savepoint_keeps_the_tenant_binding(database: Database, founder: Account) -> None:
    """Services wrapped in ``begin_nested()`` (a form that may fail) still read and write as the bound tenant."""
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        before = await session.scalar(text("SELECT current_setting('northstar.org_id', true)"))
        async with session.begin_nested():
            inside = await session.scalar(text("SELECT current_setting('northstar.org_id', true)"))
            await session.execute(
                text("INSERT INTO core.projects (org_id, name, description) VALUES (:org, 'savepoint', '')"),
                {"org": founder.org_id},
            )
        after = await session.scalar(text("SELECT current_setting('northstar.org_id', true)"))
    assert before == inside == after == str(founder.org_id)
