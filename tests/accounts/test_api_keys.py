"""API keys: shown once, stored as HMAC, scoped, rotated with a grace period, revoked at once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from tests.factories import Account, add_member, create_project


async def _create_key(client: httpx.AsyncClient, owner: Account, **body: object) -> dict[str, object]:
    response = await client.post("/api/v1/api-keys", json={"name": "ci", **body}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def _key_headers(key: dict[str, object], header: str = "authorization") -> dict[str, str]:
    secret = str(key["key"])
    return {"Authorization": f"Bearer {secret}"} if header == "authorization" else {"X-API-Key": secret}


async def test_key_format_and_secret_shown_once(client: httpx.AsyncClient, founder: Account, database_url: str) -> None:
    key = await _create_key(client, founder)
    secret = str(key["key"])
    assert re.fullmatch(r"ns_live_[0-9a-f]{32}_[A-Za-z0-9_-]{32,}", secret)
    assert len(secret.split("_", 3)[3]) * 6 >= 128  # base64url: 6 bits a character
    listed = (await client.get("/api/v1/api-keys", headers=founder.headers)).json()["data"]
    assert "key" not in listed[0]
    assert secret.startswith(listed[0]["prefix"] + "_")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        stored = await (
            await conn.execute("SELECT secret_hash FROM core.api_keys WHERE id = %s", (key["id"],))
        ).fetchone()
    assert stored is not None and secret.split("_", 3)[3] not in stored[0] and len(stored[0]) == 64


async def test_key_acts_in_its_org_with_its_role(client: httpx.AsyncClient, founder: Account) -> None:
    await create_project(client, founder, "visible")
    key = await _create_key(client, founder, role="analyst", environment="test")
    assert str(key["key"]).startswith("ns_test_")
    for header in ("authorization", "x-api-key"):
        listed = await client.get("/api/v1/projects", headers=_key_headers(key, header))
        assert listed.status_code == 200
        assert [p["name"] for p in listed.json()["data"]] == ["visible"]
    denied = await client.post("/api/v1/projects", json={"name": "no"}, headers=_key_headers(key))
    assert denied.status_code == 403
    me = await client.get("/api/v1/users/me", headers=_key_headers(key))
    assert me.status_code == 403 and me.json()["error"]["code"] == "user_required"


async def test_scopes_narrow_the_role(client: httpx.AsyncClient, founder: Account) -> None:
    key = await _create_key(client, founder, role="admin", scopes=["projects:read"])
    assert (await client.get("/api/v1/projects", headers=_key_headers(key))).status_code == 200
    assert (await client.get("/api/v1/teams", headers=_key_headers(key))).status_code == 403
    bad = await client.post(
        "/api/v1/api-keys", json={"name": "x", "scopes": ["nonsense:read"]}, headers=founder.headers
    )
    assert bad.status_code == 422
    beyond = await client.post(
        "/api/v1/api-keys", json={"name": "x", "role": "investor", "scopes": ["projects:read"]}, headers=founder.headers
    )
    assert beyond.status_code == 403


async def test_admin_cannot_mint_founder_keys(client: httpx.AsyncClient, founder: Account) -> None:
    admin = await add_member(client, founder, "admin")
    response = await client.post("/api/v1/api-keys", json={"name": "x", "role": "founder"}, headers=admin.headers)
    assert response.status_code == 403


async def test_rotation_keeps_the_old_key_for_the_grace_period(client: httpx.AsyncClient, founder: Account) -> None:
    old = await _create_key(client, founder)
    rotated = await client.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=founder.headers)
    assert rotated.status_code == 201
    new = rotated.json()["data"]
    assert new["key"] != old["key"]
    assert (await client.get("/api/v1/projects", headers=_key_headers(new))).status_code == 200
    assert (await client.get("/api/v1/projects", headers=_key_headers(old))).status_code == 200
    listed = {k["id"]: k for k in (await client.get("/api/v1/api-keys", headers=founder.headers)).json()["data"]}
    grace_end = datetime.fromisoformat(listed[str(old["id"])]["expiresAt"])
    assert timedelta(hours=23) < grace_end - datetime.now(UTC) <= timedelta(hours=24)
    again = await client.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=founder.headers)
    assert again.status_code == 409


async def test_expired_and_revoked_keys_stop_on_the_next_request(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    key = await _create_key(client, founder)
    assert (await client.get("/api/v1/projects", headers=_key_headers(key))).status_code == 200
    revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=founder.headers)
    assert revoked.json()["data"]["revokedAt"] is not None
    after = await client.get("/api/v1/projects", headers=_key_headers(key))
    assert after.status_code == 401 and after.json()["error"]["code"] == "invalid_api_key"

    expiring = await _create_key(client, founder)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "UPDATE core.api_keys SET expires_at = now() - interval '1 second' WHERE id = %s", (expiring["id"],)
        )
        await conn.commit()
    assert (await client.get("/api/v1/projects", headers=_key_headers(expiring))).status_code == 401


async def test_tampered_keys_are_rejected(client: httpx.AsyncClient, founder: Account) -> None:
    key = str((await _create_key(client, founder))["key"])
    for bad in (key[:-2] + "xx", key.replace("ns_live_", "ns_test_"), "ns_live_zz_yy", "ns_live_", key + "_"):
        response = await client.get("/api/v1/projects", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad


async def test_key_use_is_audited_at_most_once_a_minute(client: httpx.AsyncClient, founder: Account) -> None:
    key = await _create_key(client, founder)
    for _ in range(3):
        await client.get("/api/v1/projects", headers=_key_headers(key))
    used = await client.get("/api/v1/audit?action=api_key.used", headers=founder.headers)
    assert used.json()["meta"]["total"] == 1


async def _status(
    client: httpx.AsyncClient, key: dict[str, object], method: str, path: str, body: dict[str, object] | None = None
) -> int:
    return (await client.request(method, path, json=body, headers=_key_headers(key))).status_code


async def test_removing_a_member_revokes_the_keys_they_made(client: httpx.AsyncClient, founder: Account) -> None:
    admin = await add_member(client, founder, "admin")
    theirs = [await _create_key(client, admin, role="admin"), await _create_key(client, admin, role="analyst")]
    made_by_their_key = await _create_key_with(client, theirs[0], role="member")
    founders = await _create_key(client, founder, role="admin")
    for key in (*theirs, made_by_their_key):
        assert await _status(client, key, "GET", "/api/v1/projects") == 200

    removed = await client.delete(f"/api/v1/members/{admin.user_id}", headers=founder.headers)
    assert removed.status_code == 200, removed.text
    revoked = removed.json()["data"]["apiKeysRevoked"]
    assert {k["id"] for k in revoked} == {k["id"] for k in (*theirs, made_by_their_key)}
    assert all(k["revokedAt"] is not None for k in revoked)
    for key in (*theirs, made_by_their_key):
        response = await client.get("/api/v1/projects", headers=_key_headers(key))
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert await _status(client, founders, "GET", "/api/v1/audit") == 200

    audit = (await client.get("/api/v1/audit?action=api_key.revoked", headers=founder.headers)).json()["data"]
    assert {entry["targetId"] for entry in audit} == {k["id"] for k in revoked}
    assert all(entry["details"]["reason"] == "creator_removed" for entry in audit)
    removal = (await client.get("/api/v1/audit?action=members.remove", headers=founder.headers)).json()["data"]
    assert set(removal[0]["details"]["apiKeysRevoked"]) == {k["id"] for k in revoked}


async def _create_key_with(client: httpx.AsyncClient, key: dict[str, object], **body: object) -> dict[str, object]:
    response = await client.post("/api/v1/api-keys", json={"name": "made by a key", **body}, headers=_key_headers(key))
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def test_a_role_change_caps_the_keys_they_made(client: httpx.AsyncClient, founder: Account) -> None:
    admin = await add_member(client, founder, "admin")
    full = await _create_key(client, admin, role="admin")
    analyst = await _create_key(client, admin, role="analyst")
    narrow = await _create_key(client, admin, role="admin", scopes=["audit:read", "projects:read"])
    within = await _create_key(client, admin, role="investor")
    assert await _status(client, full, "GET", "/api/v1/audit") == 200
    assert await _status(client, narrow, "GET", "/api/v1/audit") == 200

    changed = await client.patch(f"/api/v1/members/{admin.user_id}", json={"role": "member"}, headers=founder.headers)
    assert changed.status_code == 200, changed.text
    capped = {k["id"]: k for k in changed.json()["data"]["apiKeysCapped"]}
    assert set(capped) == {full["id"], analyst["id"], narrow["id"]}  # an investor key does nothing a member cannot
    assert (capped[full["id"]]["role"], capped[full["id"]]["scopes"]) == ("member", None)
    assert capped[narrow["id"]]["scopes"] == ["projects:read"]
    assert capped[analyst["id"]]["role"] == "member" and "events:read" not in capped[analyst["id"]]["scopes"]

    # On the very next request each key does at most what a member may.
    assert await _status(client, full, "GET", "/api/v1/audit") == 403
    assert await _status(client, full, "POST", "/api/v1/api-keys", {"name": "escape"}) == 403
    assert await _status(client, full, "GET", "/api/v1/projects") == 200
    assert await _status(client, narrow, "GET", "/api/v1/audit") == 403
    assert await _status(client, narrow, "GET", "/api/v1/projects") == 200
    assert await _status(client, analyst, "GET", "/api/v1/projects") == 200
    assert await _status(client, analyst, "POST", "/api/v1/projects", {"name": "no"}) == 403
    assert await _status(client, within, "GET", "/api/v1/dashboard") == 200
    listed = {k["id"]: k for k in (await client.get("/api/v1/api-keys", headers=founder.headers)).json()["data"]}
    assert listed[full["id"]]["role"] == "member" and listed[within["id"]]["role"] == "investor"

    audit = (await client.get("/api/v1/audit?action=api_key.capped", headers=founder.headers)).json()["data"]
    by_key = {entry["targetId"]: entry["details"] for entry in audit}
    assert set(by_key) == set(capped)
    assert by_key[full["id"]]["previous"] == {"role": "admin", "scopes": None}
    assert by_key[full["id"]]["role"] == "member"
    change = (await client.get("/api/v1/audit?action=members.change_role", headers=founder.headers)).json()["data"]
    assert set(change[0]["details"]["apiKeysCapped"]) == set(capped)

    promoted = await client.patch(f"/api/v1/members/{admin.user_id}", json={"role": "admin"}, headers=founder.headers)
    assert promoted.json()["data"]["apiKeysCapped"] == []
    assert await _status(client, full, "GET", "/api/v1/audit") == 403, "a promotion gives no key its power back"


async def test_a_key_never_makes_a_key_beyond_its_creators_role(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    """Even a key that was not capped (its creator's role changed behind the API's back) cannot mint more power."""
    admin = await add_member(client, founder, "admin")
    key = await _create_key(client, admin, role="admin")
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("UPDATE core.memberships SET role = 'member' WHERE user_id = %s", (admin.user_id,))
        await conn.commit()
    response = await client.post("/api/v1/api-keys", json={"name": "x", "role": "admin"}, headers=_key_headers(key))
    assert response.status_code == 403 and response.json()["error"]["code"] == "beyond_creator"
    within = await client.post("/api/v1/api-keys", json={"name": "x", "role": "member"}, headers=_key_headers(key))
    assert within.status_code == 201, within.text


async def test_an_expiry_outside_the_calendar_or_in_the_past_is_a_422(
    client: httpx.AsyncClient, founder: Account
) -> None:
    """Year 10000 once its offset is applied was stored, and every later list of the org's keys was a 500."""
    for expires_at in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z", "2001-01-01T00:00:00Z"):
        response = await client.post(
            "/api/v1/api-keys", json={"name": "far", "expiresAt": expires_at}, headers=founder.headers
        )
        assert response.status_code == 422, (expires_at, response.text)
        assert response.json()["error"]["details"][0]["field"] == "body.expiresAt"
    listed = await client.get("/api/v1/api-keys", headers=founder.headers)
    assert listed.status_code == 200, listed.text
