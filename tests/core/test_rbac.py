"""The role x route matrix (``northstar/rbac_matrix.csv``) is the contract; these tests hold code to it.

Regenerate the file after a deliberate change with ``NORTHSTAR_WRITE_RBAC_MATRIX=1 make test``
and review the diff.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from northstar.app import API_PREFIX, create_app
from northstar.core.console.pages import CONSOLE_PREFIX, console_principal
from northstar.core.context import current_principal, require
from northstar.core.manifest import Manifest
from northstar.core.permissions import (
    ACTIONS,
    RESOURCES,
    ROLE_PERMISSIONS,
    SCOPE_RESOURCES,
    Principal,
    Role,
    all_scopes_of,
    capped_key_grant,
    role_allows,
)
from northstar.demo.loopback import serving
from northstar.modules import MANIFESTS
from northstar.settings import Settings
from tests.clients import sse_events
from tests.core.test_tenancy import body_for
from tests.factories import Account, add_member, create_project, signup

MATRIX = Path(__file__).resolve().parents[2] / "northstar" / "rbac_matrix.csv"


def api_rows() -> list[dict[str, str]]:
    """The matrix rows of API routes (console pages are checked with console sessions, in tests/console)."""
    return [row for row in csv.DictReader(MATRIX.open()) if row["path"].startswith(API_PREFIX)]


ROLES = [role.value for role in Role]


def _walk(dependant: Dependant) -> list[Any]:
    calls = [dependant.call]
    for sub in dependant.dependencies:
        calls.extend(_walk(sub))
    return calls


def cell(role: str, permission: str) -> str:
    """What ``role`` may do under ``resource:action``: allow, own (a conditional grant) or deny."""
    resource, action = permission.split(":")
    grants = [p for p in ROLE_PERMISSIONS[Role(role)] if p.action == action and p.resource in (resource, "*")]
    return "deny" if not grants else "allow" if any(not p.conditions for p in grants) else "own"


def route_rule(route: APIRoute) -> tuple[str, str, dict[str, str]]:
    """The route's gate, its scope (org, project or team) and, per role, allow / own / deny."""
    calls = _walk(route.dependant)
    gates = [call for call in calls if isinstance(call, require)]
    if gates:
        resource, action = gates[0].permission
        return f"{resource}:{action}", gates[0].scope, {role: cell(role, f"{resource}:{action}") for role in ROLES}
    kind = "authenticated" if current_principal in calls or console_principal in calls else "public"
    return kind, "-", dict.fromkeys(ROLES, "allow")


def computed_matrix(manifests: tuple[Manifest, ...] = MANIFESTS) -> list[dict[str, str]]:
    """The matrix rows of every route under /api/v1 and every console page under /app of the given modules."""
    rows = []
    routers = [
        *((API_PREFIX, router) for manifest in manifests for router in manifest.api_routers),
        *((CONSOLE_PREFIX, router) for manifest in manifests for router in manifest.console_pages),
    ]
    for prefix, router in routers:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            permission, scope, cells = route_rule(route)
            for method in sorted(route.methods):
                rows.append(
                    {
                        "method": method,
                        "path": prefix + route.path,
                        "permission": permission,
                        "scope": scope,
                        **cells,
                    }
                )
    return sorted(rows, key=lambda row: (row["path"], row["method"]))


def _render(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["method", "path", "permission", "scope", *ROLES], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def test_matrix_file_matches_the_code() -> None:
    expected = _render(computed_matrix())
    if os.environ.get("NORTHSTAR_WRITE_RBAC_MATRIX"):
        MATRIX.write_text(expected)
    checked_in = MATRIX.read_text()
    assert checked_in == expected, "routes or grants changed: regenerate the matrix and review the diff"


def test_every_route_is_in_the_matrix() -> None:
    listed = {(row["method"], row["path"]) for row in csv.DictReader(MATRIX.open())}
    routes = {(row["method"], row["path"]) for row in computed_matrix()}
    assert routes - listed == set()
    assert listed - routes == set()


def test_investors_only_read_dashboards_reports_and_their_org_and_analysts_change_no_settings() -> None:
    for row in csv.DictReader(MATRIX.open()):
        permission = row["permission"]
        if ":" not in permission:
            continue
        resource, action = permission.split(":")
        if resource == "privacy_self":  # everyone's own data-subject rights (export, erasure of their account)
            continue
        if row["investor"] != "deny":
            assert action == "read" and resource in ("dashboards", "investor_dashboards", "reports", "organization"), (
                row
            )
        if row["analyst"] != "deny" and action != "read":
            assert resource == "exports", row


@pytest.fixture
async def team_of_every_role(client: httpx.AsyncClient, founder: Account) -> dict[str, Account]:
    team = {"founder": founder}
    for role in ROLES[1:]:
        team[role] = await add_member(client, founder, role)
    return team


async def test_live_requests_follow_the_matrix(
    client: httpx.AsyncClient, team_of_every_role: dict[str, Account]
) -> None:
    """Every gated route, called by every role: 403 exactly where the matrix says deny."""
    openapi = (await client.get("/openapi.json")).json()
    ids = {
        name: str(uuid.uuid4())
        for name in (
            "project_id",
            "team_id",
            "user_id",
            "invitation_id",
            "key_id",
            "job_id",
            "dataset_id",
            "file_id",
            "site_id",
            "template_id",
            "notification_id",
            "test_id",
            "field_id",
            "visitor_id",
            "integration_id",
            "goal_id",
            "rule_id",
            "channel_id",
            "message_id",
            "report_id",
            "share_id",
            "request_id",
            "archive_id",
            "restore_id",
            "endpoint_id",
            "delivery_id",
            "hook_id",
            "repository_id",
            "work_item_id",
            "link_id",
            "run_id",
            "proposal_id",
            "item_id",
        )
    } | {
        "kind": "weekly_digest",  # a report kind (a report file's kind answers 422 where allowed: not 403)
        "provider": "hubspot",  # an integration provider (without an OAuth client, 404 where allowed: not 403)
    }
    for row in api_rows():
        if ":" not in row["permission"]:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], row["path"])
        body = body_for(openapi, row["method"], row["path"])
        for role in reversed(ROLES):
            response = await client.request(row["method"], path, json=body, headers=team_of_every_role[role].headers)
            denied = response.status_code == 403
            assert denied == (row[role] == "deny"), (role, row["method"], row["path"], response.text)


# A role granted on one project or team, on top of an org role: investors (who may see no project or team) and
# members (who see them all but manage none), each given every role on one project (team).
SCOPED_CASES = [*(("investor", granted) for granted in ROLES), ("member", "admin"), ("analyst", "admin")]
STRENGTH = {"deny": 0, "own": 1, "allow": 2}


@dataclass
class ScopedWorld:
    """An org where ``holder`` has an org role and a role on project (team) A, and none on B."""

    holder: Account
    ids: dict[str, dict[str, str]]  # "granted" / "other" -> path parameter -> id

    def path(self, row: dict[str, str], target: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.ids[target].get(m.group(1)) or str(uuid.uuid4()), row["path"])


async def _scoped_world(client: httpx.AsyncClient, base: str, granted: str, scope: str) -> ScopedWorld:
    founder = await signup(client)
    holder = await add_member(client, founder, base)
    bystander = await add_member(client, founder, "analyst")
    ids: dict[str, dict[str, str]] = {"granted": {}, "other": {}}
    for target in ids:
        project = await create_project(client, founder, f"{target} project")
        team = await client.post("/api/v1/teams", json={"name": f"{target} team"}, headers=founder.headers)
        ids[target] = {
            "project_id": str(project["id"]),
            "team_id": team.json()["data"]["id"],
            "user_id": str(bystander.user_id),
        }
        for kind in ("project", "team"):  # the bystander's grant, for the routes that change or remove one
            response = await client.put(
                f"/api/v1/{kind}s/{ids[target][f'{kind}_id']}/members/{bystander.user_id}",
                json={"role": "analyst"},
                headers=founder.headers,
            )
            assert response.status_code == 200, response.text
    grant = await client.put(
        f"/api/v1/{scope}s/{ids['granted'][f'{scope}_id']}/members/{holder.user_id}",
        json={"role": granted},
        headers=founder.headers,
    )
    assert grant.status_code == 200, grant.text
    return ScopedWorld(holder, ids)


def scoped_expectation(row: dict[str, str], *, base: str, granted: str, scope: str, target: str) -> str:
    """What ``holder`` gets: "allow" (a 2xx), "deny" (403), or "missing" (the 404 of an object that is not there).

    Org-level routes (called with made-up ids: anything but 403 where the org role allows), and the routes of the
    other scope, follow the org role alone. On the granted project (team) the stronger of the two roles counts.
    Projects and teams here are real, made by the founder: a conditional grant ("own") refuses them.
    Elsewhere, a grant that only the scoped role gives answers like a missing object to whoever may not see it.
    """
    if row["scope"] not in ("project", "team"):
        return "deny" if row[base] == "deny" else "any"  # called with made-up ids
    if row["scope"] != scope:
        return "allow" if row[base] == "allow" else "deny"
    has_id = f"{{{scope}_id}}" in row["path"]
    best = max(row[base], row[granted], key=STRENGTH.__getitem__)
    if not has_id:
        return "deny" if best == "deny" else "allow"
    if target == "granted" or row[base] != "deny":
        effective = best if target == "granted" else row[base]
        return "allow" if effective == "allow" else "deny"
    if row[granted] == "deny":
        return "deny"
    return "deny" if cell(base, f"{SCOPE_RESOURCES[scope]}:read") != "deny" else "missing"


def _call_order(row: dict[str, str]) -> tuple[bool, int, str, str]:
    """Deletions last, the longest paths first among them: a grant goes before its project."""
    deleting = row["method"] == "DELETE"
    return deleting, -len(row["path"]) if deleting else 0, row["path"], row["method"]


@pytest.mark.parametrize("scope", ["project", "team"])
@pytest.mark.parametrize(("base", "granted"), SCOPED_CASES)
async def test_scoped_grants_follow_the_matrix(client: httpx.AsyncClient, scope: str, base: str, granted: str) -> None:
    """Every gated route, called by someone with an org role and another role on one project (team) A: on A the
    stronger role counts; on project (team) B, and on every org-level route, only the org role does."""
    world = await _scoped_world(client, base, granted, scope)
    openapi = (await client.get("/openapi.json")).json()
    rows = sorted((row for row in api_rows() if ":" in row["permission"]), key=_call_order)
    for row in rows:
        body = body_for(openapi, row["method"], row["path"])
        targets = ("other", "granted") if row["scope"] == scope and "{" in row["path"] else ("granted",)
        for target in targets:
            expected = scoped_expectation(row, base=base, granted=granted, scope=scope, target=target)
            response = await client.request(
                row["method"], world.path(row, target), json=body, headers=world.holder.headers
            )
            context = (base, granted, target, row["method"], row["path"], response.text)
            if expected == "deny":
                assert response.status_code == 403, context
            elif expected == "allow":
                assert response.status_code < 300, context
            elif expected == "missing":
                nowhere = await client.request(
                    row["method"],
                    re.sub(r"\{(\w+)\}", str(uuid.uuid4()), row["path"]),
                    json=body,
                    headers=world.holder.headers,
                )
                assert response.status_code == 404 and response.json() == nowhere.json(), context
            else:
                assert response.status_code != 403, context


async def test_a_project_grant_opens_no_org_level_route(client: httpx.AsyncClient, founder: Account) -> None:
    """An investor and a member made admin of one project still get 403 on everything org-wide."""
    project = await create_project(client, founder, "shared")
    org_level = [
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/api-keys"),
        ("GET", "/api/v1/invitations"),
        ("GET", "/api/v1/queue"),
        ("PATCH", "/api/v1/organization"),
        ("POST", "/api/v1/integrations"),
        ("PATCH", "/api/v1/metrics/settings"),
        ("GET", "/api/v1/members"),
    ]
    openapi = (await client.get("/openapi.json")).json()
    for base in ("investor", "member"):
        holder = await add_member(client, founder, base)
        granted = await client.put(
            f"/api/v1/projects/{project['id']}/members/{holder.user_id}",
            json={"role": "admin"},
            headers=founder.headers,
        )
        assert granted.status_code == 200
        refused = org_level + (
            [("GET", "/api/v1/datasets"), ("POST", "/api/v1/generate")] if base == "investor" else []
        )
        for method, path in refused:
            if base == "member" and path == "/api/v1/members":
                continue  # members read the member list anyway
            response = await client.request(method, path, headers=holder.headers, json=body_for(openapi, method, path))
            assert response.status_code == 403, (base, method, path, response.text)
        # What the grant is for: the project itself.
        renamed = await client.patch(
            f"/api/v1/projects/{project['id']}", json={"name": "renamed"}, headers=holder.headers
        )
        assert renamed.status_code == 200


async def test_lists_show_only_the_granted_projects_and_teams(client: httpx.AsyncClient, founder: Account) -> None:
    investor = await add_member(client, founder, "investor")
    shown = await create_project(client, founder, "shown")
    await create_project(client, founder, "hidden")
    team = (await client.post("/api/v1/teams", json={"name": "shown team"}, headers=founder.headers)).json()["data"]
    await client.post("/api/v1/teams", json={"name": "hidden team"}, headers=founder.headers)
    assert (await client.get("/api/v1/projects", headers=investor.headers)).status_code == 403
    for path, body in (
        (f"/api/v1/projects/{shown['id']}/members/{investor.user_id}", {"role": "analyst"}),
        (f"/api/v1/teams/{team['id']}/members/{investor.user_id}", {"role": "analyst"}),
    ):
        assert (await client.put(path, json=body, headers=founder.headers)).status_code == 200
    projects = (await client.get("/api/v1/projects", headers=investor.headers)).json()
    assert [p["name"] for p in projects["data"]] == ["shown"] and projects["meta"]["total"] == 1
    teams = (await client.get("/api/v1/teams", headers=investor.headers)).json()
    assert [t["name"] for t in teams["data"]] == ["shown team"] and teams["meta"]["total"] == 1
    analyst = await add_member(client, founder, "analyst")
    assert (await client.get("/api/v1/projects", headers=analyst.headers)).json()["meta"]["total"] == 2


@pytest.mark.parametrize("ceiling", list(Role))
def test_a_capped_key_does_nothing_its_creators_role_cannot(ceiling: Role) -> None:
    """Whatever a key's role and scopes, capped to its creator's role it allows nothing that role does not, and
    keeps everything both allow."""
    for role in Role:
        for scopes in (None, sorted(all_scopes_of(role))[::2], [f"{resource}:*" for resource in RESOURCES[::3]]):
            capped = capped_key_grant(role, scopes, ceiling)
            new_role, new_scopes = capped if capped else (role, scopes)
            before = Principal(
                org_id=uuid.uuid4(), role=role, api_key_scopes=None if scopes is None else frozenset(scopes)
            )
            after = Principal(
                org_id=uuid.uuid4(), role=new_role, api_key_scopes=None if new_scopes is None else frozenset(new_scopes)
            )
            for resource in RESOURCES:
                for action in ACTIONS:
                    both = before.can(action, resource) and role_allows(ceiling, action, resource)
                    assert after.can(action, resource) == both, (role, scopes, ceiling, action, resource)


async def test_the_event_stream_carries_only_what_the_role_may_read(
    settings: Settings, client: httpx.AsyncClient, founder: Account
) -> None:
    """Jobs go to those who read data, site changes to those who read sites: an investor gets neither."""
    analyst = await add_member(client, founder, "analyst")
    investor = await add_member(client, founder, "investor")
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        site = await http.post(
            "/api/v1/sites",
            headers=founder.headers,
            json={"name": "Shop", "domain": f"{uuid.uuid4().hex[:12]}.example"},
        )
        async with http.stream(
            "GET", f"/events/stream?siteId={site.json()['data']['id']}", headers=investor.headers
        ) as probe:
            assert probe.status_code == 403
        async with (
            http.stream("GET", "/events/stream", headers=analyst.headers) as allowed,
            http.stream("GET", "/events/stream", headers=investor.headers) as refused,
        ):
            analyst_events, investor_events = sse_events(allowed), sse_events(refused)
            assert (await anext(analyst_events))[0] == "ready" and (await anext(investor_events))[0] == "ready"
            job = await http.post(
                "/api/v1/generate", headers=founder.headers, json={"rows": 1, "columns": [{"name": "n", "type": "int"}]}
            )
            assert job.status_code == 202
            await http.patch(
                f"/api/v1/sites/{site.json()['data']['id']}", headers=founder.headers, json={"name": "Renamed"}
            )
            seen: set[str] = set()
            async with asyncio.timeout(30):
                async for topic, _ in analyst_events:
                    seen.add(topic)
                    if {"job.status", "socialproof.changed"} <= seen:
                        break
            # Both were delivered to the org by now; the investor's stream stayed silent.
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await anext(investor_events)
