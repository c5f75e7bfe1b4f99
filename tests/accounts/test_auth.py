"""Sign-up, login, tokens, refresh rotation, logout, passwords."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from northstar.core.security import auth_keys
from northstar.settings import get_settings
from tests.factories import PASSWORD, Account, login, refresh, signup, unique_email


async def test_signup_makes_the_user_founder_of_a_new_org(client: httpx.AsyncClient) -> None:
    account = await signup(client, org_name="Rocket Labs")
    me = (await client.get("/api/v1/users/me", headers=account.headers)).json()["data"]
    assert me["email"] == account.email
    assert me["role"] == "founder"
    assert me["orgId"] == str(account.org_id)
    org = (await client.get("/api/v1/organization", headers=account.headers)).json()["data"]
    assert org["name"] == "Rocket Labs"


async def test_signup_rejects_duplicate_email_weak_and_common_passwords(client: httpx.AsyncClient) -> None:
    account = await signup(client)
    duplicate = await client.post("/api/v1/auth/signup", json={"email": account.email.upper(), "password": PASSWORD})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "email_taken"
    for password in ("short", "password123", "x" * 129):
        response = await client.post("/api/v1/auth/signup", json={"email": unique_email(), "password": password})
        assert response.status_code == 422, password
        assert response.json()["error"]["code"] == "weak_password"


async def test_login_returns_short_lived_access_and_opaque_refresh(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": PASSWORD})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["mfaRequired"] is False
    tokens = data["tokens"]
    claims = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] <= 900
    assert {claims["typ"], claims["iss"], claims["aud"]} == {"access", "northstar", "northstar-api"}
    assert tokens["refreshToken"].startswith("rt_")
    assert tokens["refreshToken"].count(".") == 0


async def test_unknown_user_and_wrong_password_get_the_same_answer(client: httpx.AsyncClient, founder: Account) -> None:
    wrong = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": "Wrong-passw0rd!"})
    unknown = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "Wrong-passw0rd!"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def _forge(claims: dict[str, object], *, key: str | None = None, alg: str = "HS256") -> str:
    return jwt.encode(claims, key or auth_keys(get_settings()).signer.secret, algorithm=alg)


def _valid_claims(account: Account) -> dict[str, object]:
    return dict(jwt.decode(account.access_token, options={"verify_signature": False}))


def _unsigned(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_untampered_token_is_accepted(client: httpx.AsyncClient, founder: Account) -> None:
    token = _forge(_valid_claims(founder))
    assert (await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        "alg_none",
        "wrong_key",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "refresh_type",
        "mfa_type",
        "missing_typ",
        "garbage",
    ],
)
async def test_bad_access_tokens_are_401(client: httpx.AsyncClient, founder: Account, tamper: str) -> None:
    claims = _valid_claims(founder)
    token = {
        "alg_none": lambda: _unsigned(claims),
        "wrong_key": lambda: _forge(claims, key="not-the-key-" * 4),
        "expired": lambda: _forge({**claims, "exp": int(time.time()) - 10}),
        "wrong_audience": lambda: _forge({**claims, "aud": "someone-else"}),
        "wrong_issuer": lambda: _forge({**claims, "iss": "evil"}),
        "refresh_type": lambda: _forge({**claims, "typ": "refresh"}),
        "mfa_type": lambda: _forge({**claims, "typ": "mfa"}),
        "missing_typ": lambda: _forge({k: v for k, v in claims.items() if k != "typ"}),
        "garbage": lambda: "not.a.jwt",
    }[tamper]()
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("invalid_token", "unauthorized")


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {founder.refresh_token}"})
    assert response.status_code == 401
    access_as_refresh = await client.post("/api/v1/auth/refresh", json={"refreshToken": founder.access_token})
    assert access_as_refresh.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(client: httpx.AsyncClient, founder: Account) -> None:
    rotated = await refresh(client, founder)
    assert rotated.refresh_token != founder.refresh_token
    latest = await refresh(client, rotated)

    replay = await client.post("/api/v1/auth/refresh", json={"refreshToken": founder.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "invalid_refresh_token"
    # The whole family is gone: the newest refresh token and the access tokens of the session.
    assert (await client.post("/api/v1/auth/refresh", json={"refreshToken": latest.refresh_token})).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=latest.headers)).status_code == 401
    audit = await client.get("/api/v1/audit?action=auth.refresh_reuse", headers=(await login(client, founder)).headers)
    assert audit.json()["meta"]["total"] >= 1


async def test_every_route_that_issues_tokens_answers_them_at_data_tokens(client: httpx.AsyncClient) -> None:
    email = unique_email()
    signed_up = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    logged_in = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refreshToken": signed_up.json()["data"]["tokens"]["refreshToken"]}
    )
    shape = {"accessToken", "refreshToken", "tokenType", "expiresIn", "orgId"}
    for response in (signed_up, logged_in, refreshed):
        assert set(response.json()["data"]["tokens"]) == shape, response.text
    assert set(signed_up.json()["data"]) == set(refreshed.json()["data"]) == {"tokens"}
    assert set(logged_in.json()["data"]) == {"mfaRequired", "mfaToken", "tokens"}


@pytest.mark.parametrize("token", ["", "rt_", "rt_nothex_secret", f"rt_{uuid.UUID(int=7).hex}_wrong", "x" * 300])
async def test_malformed_refresh_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refreshToken": token})
    assert response.status_code in (401, 422)
    assert "error" in response.json()


async def test_logout_ends_the_session_at_once(client: httpx.AsyncClient, founder: Account) -> None:
    assert (await client.post("/api/v1/auth/logout", headers=founder.headers)).status_code == 204
    assert (await client.get("/api/v1/users/me", headers=founder.headers)).status_code == 401
    refresh = await client.post("/api/v1/auth/refresh", json={"refreshToken": founder.refresh_token})
    assert refresh.status_code == 401
    # Said as it is: the session ended; not "invalid", and not a reuse (which would be audited as an attack).
    assert refresh.json()["error"]["code"] == "session_revoked"
    assert "session has ended" in refresh.json()["error"]["message"]
    reuse = await client.get("/api/v1/audit?action=auth.refresh_reuse", headers=(await login(client, founder)).headers)
    assert reuse.json()["meta"]["total"] == 0


async def test_password_change_revokes_every_session(client: httpx.AsyncClient, founder: Account) -> None:
    other_session = await login(client, founder)
    new_password = "Another-long-passphrase-77"
    wrong = await client.post(
        "/api/v1/auth/password",
        headers=founder.headers,
        json={"currentPassword": "nope-nope-nope", "newPassword": new_password},
    )
    assert wrong.status_code == 400
    changed = await client.post(
        "/api/v1/auth/password",
        headers=founder.headers,
        json={"currentPassword": PASSWORD, "newPassword": new_password},
    )
    assert changed.status_code == 204
    for session in (founder, other_session):
        assert (await client.get("/api/v1/users/me", headers=session.headers)).status_code == 401
    old = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": PASSWORD})
    assert old.status_code == 401
    new = await client.post("/api/v1/auth/login", json={"email": founder.email, "password": new_password})
    assert new.status_code == 200


async def test_oauth2_password_flow_for_openapi_authorize(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.post("/api/v1/auth/token", data={"username": founder.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    schemes = (await client.get("/openapi.json")).json()["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


async def test_profile_update(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.patch("/api/v1/users/me", headers=founder.headers, json={"name": "Ada"})
    assert response.json()["data"]["name"] == "Ada"
    unknown_field = await client.patch("/api/v1/users/me", headers=founder.headers, json={"name": "A", "role": "x"})
    assert unknown_field.status_code == 422


def _first_steps() -> str:
    """The shell block of the README's "First steps"."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## First steps", 1)[1]
    return section.split("```bash", 1)[1].split("```", 1)[0]


def _jq(document: Any, path: str) -> Any:
    for key in path.strip(".").split("."):
        document = document[key]
    return document


async def test_the_readme_reads_tokens_where_the_api_answers_them(client: httpx.AsyncClient) -> None:
    """The README's curl | jq lines, replayed: every token they read is where sign-up, refresh and login put it."""
    block = _first_steps()
    paths = set(re.findall(r"jq -r (\.[\w.]+)", block))
    assert paths == {".data.tokens.accessToken", ".data.tokens.refreshToken"}
    calls = re.findall(r"/api/v1/auth/(\w+) (?:(?!/api/v1/).)*?-d '(\{.*?\})'", block, re.S)
    documented = {route: json.loads(body) for route, body in calls}
    assert set(documented) == {"signup", "login"}
    email = unique_email()
    signed_up = await client.post("/api/v1/auth/signup", json={**documented["signup"], "email": email})
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refreshToken": _jq(signed_up.json(), ".data.tokens.refreshToken")}
    )
    logged_in = await client.post("/api/v1/auth/login", json={**documented["login"], "email": email})
    for answer in (signed_up, refreshed, logged_in):
        assert answer.status_code in (200, 201), answer.text
        for path in paths:
            token = _jq(answer.json(), path)
            assert isinstance(token, str) and token, (answer.url, path)
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {_jq(refreshed.json(), '.data.tokens.accessToken')}"}
    )
    assert me.status_code == 200
