"""The integrations API whatever the provider: validation, secrets that go in and never come out, pause/resume,
disconnect. Provider behaviour (requests, paging, webhooks) is tested per provider against its fake."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from northstar.core.security import auth_keys
from northstar.settings import get_settings
from tests.factories import Account, add_member

SECRET = "sk_test_" + uuid.uuid4().hex
WEBHOOK_SECRET = "whsec_" + uuid.uuid4().hex


async def _create(client: httpx.AsyncClient, account: Account, **changes: Any) -> httpx.Response:
    body = {
        "provider": "stripe",
        "name": "Billing",
        "credentials": {"apiKey": SECRET, "webhookSecret": WEBHOOK_SECRET},
        "config": {"requestsPerSecond": 10},
        "test": False,
        **changes,
    }
    return await client.post("/api/v1/integrations", headers=account.headers, json=body)


async def test_credentials_are_stored_encrypted_and_never_returned(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    created = await _create(client, founder)
    assert created.status_code == 201, created.text
    integration = created.json()["data"]
    assert integration["credentials"] == ["apiKey", "webhookSecret"]
    assert integration["config"] == {"requestsPerSecond": 10}
    assert integration["webhookPath"] == f"/api/v1/integrations/{integration['id']}/webhooks/stripe"
    listed = await client.get("/api/v1/integrations", headers=founder.headers)
    one = await client.get(f"/api/v1/integrations/{integration['id']}", headers=founder.headers)
    audit = await client.get("/api/v1/audit?action=integrations.", headers=founder.headers)
    for response in (created, listed, one, audit):
        assert SECRET not in response.text and WEBHOOK_SECRET not in response.text
    assert [event["action"] for event in audit.json()["data"]] == ["integrations.create"]

    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT credentials_encrypted FROM integrations.integrations WHERE id = %s", (integration["id"],)
        ).fetchone()
    assert found is not None
    token = str(found[0])
    assert SECRET not in token and token.split(":")[0] == auth_keys(get_settings()).cipher.current_key_id
    assert SECRET in auth_keys(get_settings()).cipher.decrypt(token, associated_data=integration["id"])


async def test_bad_connections_are_refused_with_the_field_named(client: httpx.AsyncClient, founder: Account) -> None:
    cases = [
        ({"provider": "salesforce"}, "body.provider"),
        ({"credentials": {"webhookSecret": "x"}}, "body.credentials.apiKey"),
        ({"credentials": {"apiKey": "x", "password": "y"}}, "body.credentials.password"),
        ({"config": {"baseUrl": "https://example.com", "shopDomain": "x"}}, "body.config.shopDomain"),
        ({"credentials": {"apiKey": ""}}, "body.credentials.apiKey"),
        ({"name": ""}, "body.name"),
    ]
    for changes, field in cases:
        response = await _create(client, founder, **changes)
        assert response.status_code == 422, (changes, response.text)
        error = response.json()["error"]
        assert field in [detail["field"] for detail in error["details"]], (changes, error)
    listed = await client.get("/api/v1/integrations", headers=founder.headers)
    assert listed.json()["data"] == []


async def test_an_unreachable_provider_is_a_clear_error(client: httpx.AsyncClient, founder: Account) -> None:
    """The credentials check runs unless ``test`` is false; here the base URL is a private address the outbound
    guard refuses (only the integrations tests' own fakes on loopback are allowed)."""
    response = await _create(client, founder, test=True, config={"baseUrl": "https://10.255.255.1"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "connection_failed"


async def test_update_pause_resume_and_disconnect(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    integration = (await _create(client, founder)).json()["data"]
    path = f"/api/v1/integrations/{integration['id']}"
    renamed = await client.patch(path, headers=founder.headers, json={"name": "Stripe (EU)"})
    assert renamed.status_code == 200 and renamed.json()["data"]["name"] == "Stripe (EU)"
    paused = await client.post(f"{path}/pause", headers=founder.headers)
    assert paused.json()["data"]["status"] == "paused"
    refused = await client.post(f"{path}/sync", headers=founder.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "integration_paused"
    resumed = await client.post(f"{path}/resume", headers=founder.headers)
    assert resumed.json()["data"]["status"] == "active"
    runs = await client.get(f"{path}/runs", headers=founder.headers)
    assert [run["trigger"] for run in runs.json()["data"]] == ["connect"]

    deleted = await client.delete(path, headers=founder.headers)
    assert deleted.status_code == 204
    assert (await client.get(path, headers=founder.headers)).status_code == 404
    with psycopg.connect(database_url) as connection:
        left = connection.execute(
            "SELECT count(*) FROM integrations.sync_runs WHERE integration_id = %s", (integration["id"],)
        ).fetchone()
    assert left == (0,)


async def test_members_read_and_only_admins_change(client: httpx.AsyncClient, founder: Account) -> None:
    integration = (await _create(client, founder)).json()["data"]
    member = await add_member(client, founder, "member")
    investor = await add_member(client, founder, "investor")
    path = f"/api/v1/integrations/{integration['id']}"
    assert (await client.get(path, headers=member.headers)).status_code == 200
    assert (await client.patch(path, headers=member.headers, json={"name": "x"})).status_code == 403
    assert (await client.get(path, headers=investor.headers)).status_code == 403
    assert (await _create(client, member)).status_code == 403


async def test_an_oversized_webhook_delivery_is_refused_before_it_is_read(
    client: httpx.AsyncClient, founder: Account
) -> None:
    integration = (await _create(client, founder)).json()["data"]
    response = await client.post(
        integration["webhookPath"], content=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
