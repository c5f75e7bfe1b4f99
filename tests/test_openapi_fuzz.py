"""Schemathesis fuzzing of every documented operation, driven by the app's own OpenAPI document.

For each operation Schemathesis sends the schema's examples, its coverage cases (boundaries, missing and wrong-typed
fields, unsupported methods) and up to ``MAX_EXAMPLES`` Hypothesis-generated requests, valid and invalid, as a real
founder (``Authorization: Bearer``). Every response must:

* not be a server error (``not_a_server_error``);
* use a documented status code (``status_code_conformance``);
* use a documented media type (``content_type_conformance``);
* carry the documented headers (``response_headers_conformance``);
* match the documented body schema (``response_schema_conformance``).

Every ``format: date`` and ``format: date-time`` value is drawn from our own strategies, which mix the edges of the
calendar (years 1 and 9999, the days around the API's bounds) and offsets up to ±23:59 into ordinary values.

Two probes of our own add what Schemathesis cannot infer from this schema:

* auth is enforced: once per operation that declares ``security``, the first 2xx request is re-sent with no
  credentials, with a bogus bearer token and with a bogus API key, and must get a 401. (Schemathesis' own
  ``ignored_auth`` check does nothing here: it only models the ``X-API-Key`` scheme, not the OAuth2 bearer.)
* tenants are isolated: path ids point, for about half the valid-UUID cases, at real objects in the founder's org;
  those requests are first sent as the founder of another org, which must not get a 2xx.

The app runs in-process through Schemathesis' ASGI transport. That transport runs the application and its lifespan
(database engine, rate limiter) on its own event-loop thread, so the fuzzed app is a fresh ``create_app`` over the same
test database, not the session ``app`` fixture whose engine is bound to pytest's event loop. Test data is created
through the session ``client`` fixture, as in the rest of the suite.

Deeper local run: ``NORTHSTAR_FUZZ_MAX_EXAMPLES=200 pytest tests/test_openapi_fuzz.py``.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, configuration, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from northstar.app import create_app
from northstar.settings import Settings
from tests.factories import PASSWORD, Account, add_member, create_project, invite, signup, unique_email

MAX_EXAMPLES = int(os.environ.get("NORTHSTAR_FUZZ_MAX_EXAMPLES", "30"))

# No example database (``database=None`` below), and Hypothesis' other caches (unicode tables, mined constants) go to
# a temporary directory instead of ``.hypothesis/`` in the working tree. Set at import: Schemathesis already draws
# the coverage-phase examples while the tests are collected.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="northstar-hypothesis-")
    configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
    atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)

# Dates at the edges of the calendar (year 1, year 9999, just outside what the API accepts) and date-times with the
# widest offsets Python allows, among ordinary ones: what a month or eight weeks before, or an offset applied, can
# push past what Python or PostgreSQL can hold. Registered before the schema is parametrized below.
EDGE_DAYS = [
    dt.date(1, 1, 1),
    dt.date(9999, 12, 31),
    dt.date(1899, 12, 31),
    dt.date(1900, 1, 1),
    dt.date(2999, 12, 31),
    dt.date(3000, 1, 1),
    dt.date(1970, 1, 1),
    dt.date(2024, 2, 29),
]
EDGE_OFFSETS = [
    dt.timedelta(hours=14),
    -dt.timedelta(hours=23, minutes=59),
    dt.timedelta(hours=23, minutes=59),
    dt.timedelta(hours=-12),
    dt.timedelta(0),
]
days = st.one_of(st.sampled_from(EDGE_DAYS), st.dates())
offsets = st.one_of(
    st.sampled_from(EDGE_OFFSETS), st.integers(-1439, 1439).map(lambda minutes: dt.timedelta(minutes=minutes))
)
schemathesis.openapi.format("date", days.map(dt.date.isoformat))
schemathesis.openapi.format(
    "date-time",
    st.builds(
        lambda day, moment, offset: dt.datetime.combine(day, moment, dt.timezone(offset)).isoformat(),
        days,
        st.sampled_from([dt.time(), dt.time.max, dt.time(12, 30)]) | st.times(),
        offsets,
    ),
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

# The document FastAPI serves at /openapi.json (``test_fuzzed_document_is_the_served_one`` keeps it honest). It is
# built at import because ``schema.parametrize()`` makes one test per operation at collection time; building it
# needs no database. (``schemathesis.pytest.from_fixture`` would defer the loading, but its wrapper fails on pytest
# 9, which no longer has ``Node._nodeid``.)
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    # Both end the founder's session that every other case runs as: logout revokes its refresh-token family, and a
    # successful password change revokes every session of the account. Fuzzing them would leave the rest of the run
    # testing nothing but the 401 path. (The MFA routes stay: enrolling only stores a pending secret, and confirm,
    # disable and recovery-codes need a valid TOTP code, so none of them can end the session.)
    # The event stream never ends, so an in-process client would wait forever; tests/datasets/test_events.py covers it
    # over a real socket.
    path=["/api/v1/auth/logout", "/api/v1/auth/password", "/events/stream"],
)
# Credentials come from the real founder below, not from generated X-API-Key values.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(scope="module")
def fuzzed_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    # Schemathesis started the lifespan on its own thread; end it before the session drops the test database.
    schemathesis_asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
async def fuzz_founder(client: httpx.AsyncClient) -> Account:
    """The founder every case runs as. Shared by the operations: no fuzzed route can end its session."""
    return await signup(client, org_name="Fuzzed Org")


@pytest.fixture(scope="module")
async def outsider(client: httpx.AsyncClient) -> Account:
    """The founder of another organization, who must never reach the fuzzed founder's objects."""
    return await signup(client, org_name="Outsider Org")


@dataclass
class Targets:
    founder: Account
    ids: dict[str, str]


@pytest.fixture
async def targets(request: pytest.FixtureRequest, client: httpx.AsyncClient, fuzz_founder: Account) -> Targets:
    """Fresh objects for this operation's path parameters, so e.g. a DELETE meets a real object once."""
    label = str(getattr(request.node, "operation_label", "") or "")
    founder = fuzz_founder
    suffix = uuid.uuid4().hex[:8]
    project = await create_project(client, founder, name=f"Fuzz project {suffix}")
    ids = {"project_id": str(project["id"]), "projectId": str(project["id"]), "actorId": str(founder.user_id)}
    if "{team_id}" in label:
        response = await client.post(
            "/api/v1/teams", json={"name": f"Fuzz team {suffix}", "projectId": project["id"]}, headers=founder.headers
        )
        assert response.status_code == 201, response.text
        ids["team_id"] = str(response.json()["data"]["id"])
    if "{invitation_id}" in label:
        ids["invitation_id"] = str((await invite(client, founder, email=unique_email(), role="member"))["id"])
    if "{key_id}" in label:
        response = await client.post("/api/v1/api-keys", json={"name": f"Fuzz key {suffix}"}, headers=founder.headers)
        assert response.status_code == 201, response.text
        ids["key_id"] = str(response.json()["data"]["id"])
    if "{user_id}" in label:
        member = await add_member(client, founder, "member")
        ids["user_id"] = str(member.user_id)
        for scope in ("project", "team"):
            if f"{{{scope}_id}}" in label:  # so that removing the member's project/team role can succeed
                response = await client.put(
                    f"/api/v1/{scope}s/{ids[f'{scope}_id']}/members/{member.user_id}",
                    json={"role": "member"},
                    headers=founder.headers,
                )
                assert response.status_code == 200, response.text
    return Targets(founder=founder, ids=ids)


def _aim_at_targets(container: Any, ids: dict[str, str]) -> bool:
    """Swap about half the valid generated UUIDs for real ids (decided by the value, so replays are stable)."""
    aimed = False
    if isinstance(container, dict):
        for key, value in list(container.items()):
            if key in ids and isinstance(value, str) and _uuid_int(value) % 2 == 0:
                container[key] = ids[key]
                aimed = True
    return aimed


def _uuid_int(value: str) -> int:
    try:
        return uuid.UUID(value).int
    except ValueError:
        return 1


def _send(case: schemathesis.Case[Any], app: FastAPI, headers: dict[str, str]) -> Response:
    """One request, checked against the schema and the checks above."""
    response = case.call(app=app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs={"app": app})
    return response


AUTH_VERIFIED: set[str] = set()
BAD_CREDENTIALS: tuple[dict[str, str], ...] = (
    {},
    {"Authorization": "Bearer not-a-real-token"},
    {"X-API-Key": "ns_live_notakey.notasecret"},
)


def _check_auth_enforced(case: schemathesis.Case[Any], response: Response, app: FastAPI) -> None:
    label = case.operation.label
    if label in AUTH_VERIFIED or not case.operation.definition.raw.get("security"):
        return
    if not 200 <= response.status_code < 300:
        return
    AUTH_VERIFIED.add(label)
    for credentials in BAD_CREDENTIALS:
        probe = _send(case, app, credentials)
        assert probe.status_code == 401, (
            f"{label} answered {probe.status_code} (not 401) to credentials {credentials or 'none'}: {probe.text}"
        )


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_openapi_conformance(
    case: schemathesis.Case[Any], fuzzed_app: FastAPI, targets: Targets, outsider: Account
) -> None:
    aimed = _aim_at_targets(case.path_parameters, targets.ids)
    _aim_at_targets(case.query, targets.ids)
    _aim_at_targets(case.body, targets.ids)
    if aimed:
        foreign = _send(case, fuzzed_app, outsider.headers)
        assert not 200 <= foreign.status_code < 300, (
            f"another org's founder reached {case.formatted_path}: {foreign.status_code} {foreign.text}"
        )
    response = _send(case, fuzzed_app, targets.founder.headers)
    _check_auth_enforced(case, response, fuzzed_app)


async def test_fuzzed_document_is_the_served_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(schema.raw_schema))


# Text with a NUL byte cannot be stored by PostgreSQL: every text input that reaches the database answers 422.
NUL = "nul\x00byte"
NUL_BYTE_REQUESTS = [
    pytest.param(
        "POST",
        "/api/v1/auth/signup",
        {"json": {"email": "{email}", "password": PASSWORD, "name": NUL}},
        id="signup-name",
    ),
    pytest.param(
        "POST",
        "/api/v1/auth/signup",
        {"json": {"email": "{email}", "password": PASSWORD, "organizationName": NUL}},
        id="signup-organizationName",
    ),
    pytest.param(
        "POST",
        "/api/v1/auth/signup",
        {"json": {"email": "{email}", "password": PASSWORD, "invitationToken": NUL}},
        id="signup-invitation",
    ),
    pytest.param("POST", "/api/v1/auth/login", {"json": {"email": "{email}", "password": NUL}}, id="login-password"),
    pytest.param("POST", "/api/v1/auth/token", {"data": {"username": NUL, "password": PASSWORD}}, id="token-username"),
    pytest.param("POST", "/api/v1/auth/refresh", {"json": {"refreshToken": NUL}}, id="refresh-token"),
    pytest.param("POST", "/api/v1/auth/mfa/verify", {"json": {"mfaToken": NUL, "code": "123456"}}, id="mfa-verify"),
    pytest.param("PATCH", "/api/v1/users/me", {"json": {"name": NUL}}, id="me-name"),
    pytest.param("POST", "/api/v1/organizations", {"json": {"name": NUL}}, id="create-org-name"),
    pytest.param("PATCH", "/api/v1/organization", {"json": {"name": NUL}}, id="org-name"),
    pytest.param("POST", "/api/v1/invitations/accept", {"json": {"token": NUL}}, id="accept-token"),
    pytest.param("GET", "/api/v1/projects", {"params": {"q": NUL}}, id="projects-q"),
    pytest.param("POST", "/api/v1/projects", {"json": {"name": NUL}}, id="project-name"),
    pytest.param("POST", "/api/v1/projects", {"json": {"name": "ok", "description": NUL}}, id="project-description"),
    pytest.param("PATCH", "/api/v1/projects/{project_id}", {"json": {"name": NUL}}, id="project-rename"),
    pytest.param("PATCH", "/api/v1/projects/{project_id}", {"json": {"description": NUL}}, id="project-redescribe"),
    pytest.param("POST", "/api/v1/teams", {"json": {"name": NUL}}, id="team-name"),
    pytest.param("POST", "/api/v1/teams", {"json": {"name": "ok", "description": NUL}}, id="team-description"),
    pytest.param("PATCH", "/api/v1/teams/{team_id}", {"json": {"name": NUL}}, id="team-rename"),
    pytest.param("PATCH", "/api/v1/teams/{team_id}", {"json": {"description": NUL}}, id="team-redescribe"),
    pytest.param("POST", "/api/v1/api-keys", {"json": {"name": NUL}}, id="api-key-name"),
    pytest.param("POST", "/api/v1/api-keys", {"json": {"name": "ok", "scopes": [NUL]}}, id="api-key-scope"),
    pytest.param("GET", "/api/v1/audit", {"params": {"action": NUL}}, id="audit-action"),
    pytest.param("GET", "/api/v1/audit", {"params": {"targetType": NUL}}, id="audit-targetType"),
    pytest.param("GET", "/api/v1/audit", {"params": {"targetId": NUL}}, id="audit-targetId"),
]


@pytest.mark.parametrize(("method", "path", "request_kwargs"), NUL_BYTE_REQUESTS)
async def test_text_with_nul_byte_is_rejected(
    client: httpx.AsyncClient, fuzz_founder: Account, method: str, path: str, request_kwargs: dict[str, Any]
) -> None:
    founder = fuzz_founder
    if "{project_id}" in path:
        project = await create_project(client, founder, name=f"Project {uuid.uuid4().hex[:8]}")
        path = path.format(project_id=project["id"])
    if "{team_id}" in path:
        team = await client.post(
            "/api/v1/teams", json={"name": f"Team {uuid.uuid4().hex[:8]}"}, headers=founder.headers
        )
        path = path.format(team_id=team.json()["data"]["id"])
    kwargs = json.loads(json.dumps(request_kwargs).replace("{email}", unique_email("nul")))
    response = await client.request(method, path, headers=founder.headers, **kwargs)
    assert response.status_code == 422, f"{method} {path} {kwargs!r}: {response.status_code} {response.text}"
