"""The role x route matrix (``northstar/rbac_matrix.csv``) is the contract; these tests hold code to it.

Regenerate the file after a deliberate change with ``NORTHSTAR_WRITE_RBAC_MATRIX=1 make test``
and review the diff.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from northstar.app import API_MODULES, API_PREFIX
from northstar.core.context import current_principal, require
from northstar.core.permissions import ROLE_PERMISSIONS, Role
from tests.core.test_tenancy import body_for
from tests.factories import Account, add_member

MATRIX = Path(__file__).resolve().parents[2] / "northstar" / "rbac_matrix.csv"
ROLES = [role.value for role in Role]


def _walk(dependant: Dependant) -> list[Any]:
    calls = [dependant.call]
    for sub in dependant.dependencies:
        calls.extend(_walk(sub))
    return calls


def route_rule(route: APIRoute) -> tuple[str, dict[str, str]]:
    """The route's gate and, per role, allow / own (conditional grant) / deny."""
    calls = _walk(route.dependant)
    gates = [call for call in calls if isinstance(call, require)]
    if gates:
        resource, action = gates[0].permission
        cells = {}
        for role in Role:
            grants = [p for p in ROLE_PERMISSIONS[role] if p.action == action and p.resource in (resource, "*")]
            cells[role.value] = "deny" if not grants else "allow" if any(not p.conditions for p in grants) else "own"
        return f"{resource}:{action}", cells
    kind = "authenticated" if current_principal in calls else "public"
    return kind, dict.fromkeys(ROLES, "allow")


def computed_matrix() -> list[dict[str, str]]:
    rows = []
    for module in API_MODULES:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            permission, cells = route_rule(route)
            for method in sorted(route.methods):
                rows.append({"method": method, "path": API_PREFIX + route.path, "permission": permission, **cells})
    return sorted(rows, key=lambda row: (row["path"], row["method"]))


def _render(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["method", "path", "permission", *ROLES], lineterminator="\n")
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


def test_investors_only_read_dashboards_and_reports_and_analysts_change_no_settings() -> None:
    for row in csv.DictReader(MATRIX.open()):
        permission = row["permission"]
        if ":" not in permission:
            continue
        resource, action = permission.split(":")
        if row["investor"] != "deny":
            assert action == "read" and resource in ("dashboards", "reports", "organization"), row
        if row["analyst"] != "deny" and action != "read":
            assert resource == "exports", row


@pytest.fixture
async def team_of_every_role(client: httpx.AsyncClient, founder: Account) -> dict[str, Account]:
    team = {"founder": founder}
    for role in ROLES[1:]:
        team[role] = await add_member(client, founder, role)
    return team


async def test_live_requests_follow_the_matrix(client: httpx.AsyncClient,
                                               team_of_every_role: dict[str, Account]) -> None:
    """Every gated route, called by every role: 403 exactly where the matrix says deny."""
    openapi = (await client.get("/openapi.json")).json()
    ids = {name: str(uuid.uuid4()) for name in ("project_id", "team_id", "user_id", "invitation_id", "key_id",
                                                "job_id", "dataset_id", "file_id", "site_id", "template_id",
                                                "notification_id", "integration_id", "goal_id")}
    for row in csv.DictReader(MATRIX.open()):
        if ":" not in row["permission"]:
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], row["path"])
        body = body_for(openapi, row["method"], row["path"])
        for role in reversed(ROLES):
            response = await client.request(row["method"], path, json=body,
                                            headers=team_of_every_role[role].headers)
            denied = response.status_code == 403
            assert denied == (row[role] == "deny"), (role, row["method"], row["path"], response.text)
