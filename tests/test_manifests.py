"""Each module declares itself in its manifest, completely: what a module has and does not declare fails here.

Every router, queue task, table, permission resource, export source, audit target and settings section of the
platform belongs to exactly one installed manifest. And a module that exists only through its manifest (the
fixture module under tests/) shows up in the app's routes, the queue's tasks and the role matrix once added.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import northstar
from northstar.app import API_PREFIX, create_app
from northstar.core.context import require
from northstar.core.db import Base
from northstar.core.permissions import RESOURCES, ROLE_PERMISSIONS, Role
from northstar.core.queue import queue_app
from northstar.datasets.exports import COLUMN_KINDS
from northstar.demo.loopback import serving
from northstar.modules import MANIFESTS
from northstar.settings import Settings
from tests.core.test_rbac import _walk, computed_matrix
from tests.factories import Account, add_member
from tests.fixture_module.manifest import MANIFEST as FIXTURE

PACKAGE = Path(northstar.__file__).parent
# Settings sections of the platform itself (core's mechanisms); every other section belongs to a module.
PLATFORM_SECTIONS = {"db", "http", "auth", "rate_limit", "queue", "smtp", "crypto", "outbound", "llm"}


def every_module() -> list[ModuleType]:
    """Every module of the package, imported: whatever registers itself on import (tasks, tables) has."""
    names = [
        info.name
        for info in pkgutil.walk_packages([str(PACKAGE)], "northstar.")
        if not info.name.startswith("northstar.migrations.") and not info.name.endswith("__main__")
    ]
    return [importlib.import_module(name) for name in names]


def owners(values: dict[str, list[str]]) -> dict[str, list[str]]:
    """The values claimed by no manifest or by more than one, with their claimants."""
    return {value: names for value, names in values.items() if len(names) != 1}


def claims(attribute: str) -> dict[object, list[str]]:
    claimed: dict[object, list[str]] = {}
    for manifest in MANIFESTS:
        for value in getattr(manifest, attribute):
            claimed.setdefault(value, []).append(manifest.name)
    return claimed


def test_every_router_is_declared_by_exactly_one_manifest() -> None:
    declared = Counter(
        id(router)
        for manifest in MANIFESTS
        for router in (*manifest.api_routers, *manifest.routers, *manifest.console_pages)
    )
    routers = {
        f"{module.__name__}.{name}": value
        for module in every_module()
        for name, value in vars(module).items()
        if isinstance(value, APIRouter) and value.routes
    }
    undeclared = sorted(name for name, router in routers.items() if declared[id(router)] == 0)
    assert undeclared == [], "routers no manifest mounts"
    assert [count for count in declared.values() if count > 1] == [], "a router in two manifests"


def test_route_names_are_unique_and_become_the_operation_ids() -> None:
    app = create_app(Settings())
    names = Counter(
        route.name
        for manifest in MANIFESTS
        for router in (*manifest.api_routers, *manifest.routers, *manifest.console_pages)
        for route in router.routes
        if isinstance(route, APIRoute)
    )
    assert [name for name, count in names.items() if count > 1] == []
    operations = [
        operation.get("operationId") for methods in app.openapi()["paths"].values() for operation in methods.values()
    ]
    assert None not in operations and len(operations) == len(set(operations))
    assert "projects_list" in operations


def test_every_task_is_in_a_declared_task_module() -> None:
    every_module()
    declared = claims("task_modules")
    tasks = {
        name: task.func.__module__
        for name, task in queue_app.tasks.items()
        if task.func.__module__.startswith("northstar.")
    }
    assert tasks, "no task registered"
    assert {name: module for name, module in tasks.items() if len(declared.get(module, [])) != 1} == {}
    assert [module for module in declared if module not in tasks.values()] == [], "a task module without tasks"


def test_every_table_belongs_to_exactly_one_manifest_and_its_models() -> None:
    every_module()
    claimed = claims("tables")
    assert owners({table: claimed.get(table, []) for table in Base.metadata.tables}) == {}
    assert [table for table in claimed if table not in Base.metadata.tables] == [], "declared, not defined"
    for manifest in MANIFESTS:
        defined = {
            table.fullname
            for module in manifest.model_modules
            for table in Base.metadata.tables.values()
            if any(table in (value, getattr(value, "__table__", None)) for value in vars(module).values())
        }
        assert defined == set(manifest.tables), manifest.name
        assert {table.split(".")[0] for table in manifest.tables} <= set(manifest.schemas), manifest.name


def test_every_gated_resource_is_declared_once() -> None:
    declared = Counter(resource.name for manifest in MANIFESTS for resource in manifest.resources)
    assert [name for name, count in declared.items() if count > 1] == []
    assert sorted(declared) == sorted(RESOURCES)
    gates = {
        call.permission[0]
        for manifest in MANIFESTS
        for router in (*manifest.api_routers, *manifest.routers)
        for route in router.routes
        if isinstance(route, APIRoute)
        for call in _walk(route.dependant)
        if isinstance(call, require)
    }
    assert gates - set(declared) == set()


def test_export_sources_topics_and_settings_name_what_exists() -> None:
    resources = {resource.name for manifest in MANIFESTS for resource in manifest.resources}
    for manifest in MANIFESTS:
        for name, source in manifest.export_sources.items():
            table = Base.metadata.tables[".".join(source.table)]
            assert ".".join(source.table) in manifest.tables, (manifest.name, name)
            assert set(source.columns) <= set(table.columns.keys()), (manifest.name, name)
            assert set(source.columns.values()) <= COLUMN_KINDS, (manifest.name, name)
            assert source.order_by in table.columns and source.resource in resources, (manifest.name, name)
        assert set(manifest.event_topics.values()) <= resources, manifest.name
    sections = {manifest.settings.field: manifest.settings.model for manifest in MANIFESTS if manifest.settings}
    module_fields = {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type)
        and field.annotation.__name__.endswith("Settings")
        and name not in PLATFORM_SECTIONS
    }
    assert module_fields == sections


def test_reactions_queue_tasks_of_their_own_module() -> None:
    """What a manifest queues when another module announces a signal is a task of its own task modules."""
    every_module()
    for manifest in MANIFESTS:
        for signal, tasks in manifest.reactions.items():
            modules = [queue_app.tasks[task].func.__module__ if task in queue_app.tasks else None for task in tasks]
            assert all(module in manifest.task_modules for module in modules), (manifest.name, signal, modules)


def _audit_targets(source: str) -> set[str]:
    """The target types a module's code names in its audit entries (``audit_target(request, "site", ...)``,
    ``target_type="site"``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name == "audit_target" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
            found.add(node.args[1].value)
        found |= {
            keyword.value.value
            for keyword in node.keywords
            if keyword.arg == "target_type" and isinstance(keyword.value, ast.Constant) and name == "record"
        }
    return found


def test_every_audit_target_is_declared() -> None:
    declared = {target for manifest in MANIFESTS for target in manifest.audit_targets}
    named = {
        path.relative_to(PACKAGE).as_posix(): _audit_targets(path.read_text())
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {path: sorted(targets - declared) for path, targets in named.items() if targets - declared} == {}
    assert set().union(*named.values()) == declared, "declared targets no code names"


def test_core_names_no_module() -> None:
    """Not in an import, not in a string: core works for whichever modules are installed."""
    modules = {manifest.name for manifest in MANIFESTS} - {"core"}
    named = {
        path.name: sorted(
            module for module in modules if f"northstar.{module}" in text or f"northstar/{module}" in text
        )
        for path in (PACKAGE / "core").rglob("*.py")
        if (text := path.read_text())
    }
    assert {name: found for name, found in named.items() if found} == {}


# A module added by its manifest alone.


def test_a_module_added_by_its_manifest_is_mounted_and_its_task_registered() -> None:
    plain = create_app(Settings())
    assert "/api/v1/fixture-notes" not in plain.openapi()["paths"]
    app = create_app(Settings(), manifests=(*MANIFESTS, FIXTURE))
    operation = app.openapi()["paths"]["/api/v1/fixture-notes"]["get"]
    assert operation["operationId"] == "fixture_notes_list"
    assert queue_app.tasks["fixture_notes.tidy"].func.__module__ == "tests.fixture_module.tasks"


def test_a_module_added_by_its_manifest_is_in_the_role_matrix() -> None:
    create_app(Settings(), manifests=(*MANIFESTS, FIXTURE))
    assert "fixture_notes" in RESOURCES
    rows = [row for row in computed_matrix((*MANIFESTS, FIXTURE)) if row["path"] == f"{API_PREFIX}/fixture-notes"]
    assert rows == [
        {
            "method": "GET",
            "path": "/api/v1/fixture-notes",
            "permission": "fixture_notes:read",
            "scope": "org",
            "founder": "allow",
            "admin": "allow",
            "member": "allow",
            "analyst": "allow",
            "investor": "deny",
        }
    ]
    assert any(p.resource == "fixture_notes" for p in ROLE_PERMISSIONS[Role.MEMBER])


@pytest.mark.parametrize(("role", "status"), [("member", 200), ("investor", 403)])
async def test_a_module_added_by_its_manifest_answers_by_its_grants(
    settings: Settings, client: httpx.AsyncClient, founder: Account, role: str, status: int
) -> None:
    caller = await add_member(client, founder, role)
    async with (
        serving(create_app(settings, manifests=(*MANIFESTS, FIXTURE))) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        response = await http.get("/api/v1/fixture-notes", headers=caller.headers)
        assert response.status_code == status, response.text
        if status == 200:
            assert uuid.UUID(response.json()["meta"]["orgId"]) == founder.org_id
    assert (await client.get("/api/v1/fixture-notes", headers=caller.headers)).status_code == 404
