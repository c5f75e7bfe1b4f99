"""A/B tests and outbound webhooks through the graph: the same objects, results and life cycle as REST, and
another organization's tests out of reach."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.factories import Account
from tests.graphapi.conftest import Graph, codes

TESTS = """query($site: UUID!) { abTests(siteId: $site, status: RUNNING) {
  total items { id status variants { id name isControl weight } results } } }"""
COMPLETE = """mutation($site: UUID!, $id: UUID!, $winner: UUID!) {
  completeAbTest(siteId: $site, id: $id, winnerVariantId: $winner) { status winnerVariantId } }"""


async def _running_test(client: httpx.AsyncClient, owner: Account) -> dict[str, Any]:
    """A site, a notification and a running two-variant test of it, made through REST."""
    site = await client.post(
        "/api/v1/sites", headers=owner.headers, json={"name": "Shop", "domain": f"s-{secrets.token_hex(4)}.example.com"}
    )
    site_id = site.json()["data"]["id"]
    notification = await client.post(
        f"/api/v1/sites/{site_id}/notifications", headers=owner.headers, json={"name": "N", "type": "announcement"}
    )
    variants = [
        {"name": "Plain", "isControl": True, "weight": 50},
        {"name": "Bold", "weight": 50, "message": "Hot right now"},
    ]
    created = await client.post(
        f"/api/v1/sites/{site_id}/ab-tests",
        headers=owner.headers,
        json={"name": "Wording", "notificationId": notification.json()["data"]["id"], "variants": variants},
    )
    assert created.status_code == 201, created.text
    test: dict[str, Any] = created.json()["data"]
    started = await client.post(f"/api/v1/sites/{site_id}/ab-tests/{test['id']}/start", headers=owner.headers)
    assert started.status_code == 200, started.text
    return test


async def test_tests_read_and_complete_as_on_rest(
    graph: Graph, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    test = await _running_test(client, founder)
    site = test["siteId"]
    [found] = (await graph.run(founder, TESTS, site=site))["abTests"]["items"]
    assert [(v["id"], v["name"], v["isControl"]) for v in found["variants"]] == [
        (v["id"], v["name"], v["isControl"]) for v in test["variants"]
    ]
    rest = await client.get(f"/api/v1/sites/{site}/ab-tests/{test['id']}/results", headers=founder.headers)
    assert found["results"] == rest.json()["data"]
    winner = test["variants"][1]["id"]
    done = await graph.run(founder, COMPLETE, site=site, id=test["id"], winner=winner)
    assert done["completeAbTest"] == {"status": "completed", "winnerVariantId": winner}
    again = await graph.errors(founder, COMPLETE, site=site, id=test["id"], winner=winner)
    refused = await client.post(
        f"/api/v1/sites/{site}/ab-tests/{test['id']}/complete",
        headers=founder.headers,
        json={"winnerVariantId": winner},
    )
    assert refused.status_code == 409 and codes(again) == [refused.json()["error"]["code"]]
    theirs = await _running_test(client, other_founder)
    missing = await graph.errors(
        founder, COMPLETE, site=theirs["siteId"], id=theirs["id"], winner=theirs["variants"][0]["id"]
    )
    assert codes(missing) == ["not_found"]
    assert codes(await graph.errors(founder, TESTS, site=theirs["siteId"])) == ["not_found"]
    still = await client.get(f"/api/v1/sites/{theirs['siteId']}/ab-tests/{theirs['id']}", headers=other_founder.headers)
    assert still.json()["data"]["status"] == "running"


async def test_webhook_endpoints_and_deliveries_are_the_orgs_own(
    graph: Graph, client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    created = await client.post(
        "/api/v1/webhooks/endpoints",
        headers=founder.headers,
        json={"url": "https://hooks.example.com/in", "eventTypes": ["notification.updated"]},
    )
    assert created.status_code == 201, created.text
    query = "{ webhookEndpoints { total items { id url eventTypes status } } webhookDeliveries { total } }"
    mine = await graph.run(founder, query)
    assert mine["webhookEndpoints"]["items"] == [
        {
            "id": created.json()["data"]["id"],
            "url": "https://hooks.example.com/in",
            "eventTypes": ["notification.updated"],
            "status": "active",
        }
    ]
    theirs = await graph.run(other_founder, query)
    assert theirs["webhookEndpoints"] == {"total": 0, "items": []} and theirs["webhookDeliveries"]["total"] == 0
