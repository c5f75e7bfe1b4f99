"""The webhooks API: endpoints and their secrets, roles, other organizations' objects, and bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from northstar.core.db import Database
from northstar.webhooks import service as webhooks
from tests.factories import Account, add_member
from tests.webhooks.conftest import Receiver, Run, deliveries_of, make_endpoint

ENDPOINTS = "/api/v1/webhooks/endpoints"


async def test_endpoints_are_created_listed_changed_and_deleted(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver
) -> None:
    created = await make_endpoint(client, founder, receiver.address(), ["event.received", "event.received"])
    assert created["eventTypes"] == ["event.received"] and created["description"] == ""
    listed = (await client.get(ENDPOINTS, headers=founder.headers)).json()
    assert [item["id"] for item in listed["data"]] == [created["id"]] and listed["meta"]["total"] == 1
    assert "secret" not in listed["data"][0]  # shown once, on creation
    changed = await client.patch(
        f"{ENDPOINTS}/{created['id']}",
        json={"eventTypes": ["quota.reached", "notification.updated"], "enabled": False, "description": "ops"},
        headers=founder.headers,
    )
    body = changed.json()["data"]
    assert (body["eventTypes"], body["status"], body["description"]) == (
        ["notification.updated", "quota.reached"],
        "disabled",
        "ops",
    )
    assert (await client.delete(f"{ENDPOINTS}/{created['id']}", headers=founder.headers)).status_code == 204
    assert (await client.get(f"{ENDPOINTS}/{created['id']}", headers=founder.headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "eventTypes": ["quota.reached"]}, None),
        ({"url": "https://example.com/hook", "eventTypes": ["order.paid"]}, "body.eventTypes.0"),
        ({"url": "https://example.com/hook", "eventTypes": []}, "body.eventTypes"),
        ({"url": "https://user:pw@example.com/hook", "eventTypes": ["quota.reached"]}, None),
        ({"url": "https://example.com/hook", "eventTypes": ["quota.reached"], "secret": "mine"}, "body.secret"),
    ],
)
async def test_bad_endpoints_are_refused_with_a_clear_error(
    client: httpx.AsyncClient, founder: Account, body: dict[str, object], field: str | None
) -> None:
    response = await client.post(ENDPOINTS, json=body, headers=founder.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    if field is not None:
        assert field in [detail["field"] for detail in error["details"]]
    assert (await client.get(ENDPOINTS, headers=founder.headers)).json()["meta"]["total"] == 0  # nothing half-made


async def test_private_addresses_are_refused_under_the_default_guard(app: object, founder: Account) -> None:
    """The platform as configured by default (not this package's loopback-open one)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as default:
        for url in ("http://hooks.example.com/in", "https://10.0.0.8/in", "https://[::1]/in"):
            response = await default.post(
                ENDPOINTS, json={"url": url, "eventTypes": ["quota.reached"]}, headers=founder.headers
            )
            assert response.status_code == 422 and response.json()["error"]["code"] == "blocked_destination", url


async def test_members_and_analysts_read_but_only_admins_manage(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver
) -> None:
    endpoint = await make_endpoint(client, founder, receiver.address(), ["quota.reached"])
    admin = await add_member(client, founder, "admin")
    for role in ("member", "analyst"):
        account = await add_member(client, founder, role)
        assert (await client.get(ENDPOINTS, headers=account.headers)).status_code == 200
        assert (await client.get("/api/v1/webhooks/deliveries", headers=account.headers)).status_code == 200
        refused = [
            await client.post(
                ENDPOINTS, json={"url": receiver.address(), "eventTypes": ["quota.reached"]}, headers=account.headers
            ),
            await client.patch(f"{ENDPOINTS}/{endpoint['id']}", json={"enabled": False}, headers=account.headers),
            await client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=account.headers),
            await client.delete(f"{ENDPOINTS}/{endpoint['id']}", headers=account.headers),
        ]
        assert [response.status_code for response in refused] == [403] * 4, role
    rotated = await client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=admin.headers)
    assert rotated.status_code == 200 and rotated.json()["data"]["secret"].startswith("whsec_")


async def test_another_organizations_endpoints_and_deliveries_are_missing(
    client: httpx.AsyncClient,
    founder: Account,
    other_founder: Account,
    receiver: Receiver,
    worker_database: Database,
    work: Run,
) -> None:
    endpoint = await make_endpoint(client, founder, receiver.address(), ["quota.reached"])
    async with worker_database.tenant_transaction(org_id=founder.org_id) as session:
        await webhooks.emit(session, org_id=founder.org_id, event_type="quota.reached", data={"percent": 80})
    await work()
    [mine] = await deliveries_of(client, founder)
    theirs = other_founder.headers
    one = f"{ENDPOINTS}/{endpoint['id']}"
    answers = [
        await client.get(one, headers=theirs),
        await client.patch(one, json={"enabled": False}, headers=theirs),
        await client.post(f"{one}/rotate-secret", headers=theirs),
        await client.delete(one, headers=theirs),
        await client.get(f"/api/v1/webhooks/deliveries/{mine['id']}", headers=theirs),
        await client.post(f"/api/v1/webhooks/deliveries/{mine['id']}/replay", headers=theirs),
        await client.get(f"/api/v1/webhooks/deliveries/{uuid.uuid4()}", headers=founder.headers),
    ]
    assert [response.status_code for response in answers] == [404] * 7
    assert await deliveries_of(client, other_founder) == []
    assert await deliveries_of(client, other_founder, endpointId=endpoint["id"]) == []
    assert (await client.get(ENDPOINTS, headers=theirs)).json()["meta"]["total"] == 0
    assert (await client.get(one, headers=founder.headers)).json()["data"]["status"] == "active"


async def test_the_delivery_log_filters(client: httpx.AsyncClient, founder: Account) -> None:
    bad = await client.get("/api/v1/webhooks/deliveries", params={"status": "lost"}, headers=founder.headers)
    assert bad.status_code == 422
    bad = await client.get("/api/v1/webhooks/deliveries", params={"endpointId": "nope"}, headers=founder.headers)
    assert bad.status_code == 422
