"""Social proof's events reach merchants' endpoints: ``event.received`` and ``conversion.created`` from the event
writer's own transaction, ``notification.updated`` from the notification's change."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from tests.factories import Account
from tests.socialproof.conftest import CHROME_UA, WidgetSite, widget_event
from tests.webhooks.conftest import Receiver, Run, make_endpoint


async def _site(client: httpx.AsyncClient, founder: Account, database_url: str) -> WidgetSite:
    body = {"name": "Trail shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com"}
    response = await client.post("/api/v1/sites", headers=founder.headers, json=body)
    assert response.status_code == 201, response.text
    return WidgetSite(client=client, account=founder, database_url=database_url, site=response.json()["data"])


def _messages(receiver: Receiver, address: str, secret: str) -> list[dict[str, Any]]:
    return [Webhook(secret).verify(item.body, item.headers) for item in receiver.at(address)]


async def test_stored_events_conversions_and_notification_changes_are_sent(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, database_url: str, work: Run
) -> None:
    site = await _site(client, founder, database_url)
    notification = await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})
    address = receiver.address()
    types = ["event.received", "conversion.created", "notification.updated"]
    secret = (await make_endpoint(client, founder, address, types))["secret"]
    [recorded] = await site.record(
        {"type": "purchase", "firstName": "Ada", "city": "Leeds", "product": "Boots", "visitorId": "customer-7"}
    )
    click = widget_event("click", site.page("/boots"), notificationId=notification["id"])
    purchase = widget_event("purchase", site.page("/thanks"), details={"firstName": "Bo"})
    for event in (click, purchase):  # the same browser: the same visitor, who clicked and then bought
        response = await site.collect(event, headers=site.browser(user_agent=CHROME_UA))
        assert response.status_code == 202, response.text
    again = await site.client.post(  # a retry of a stored event is not sent again
        f"/api/v1/sites/{site.id}/events",
        headers=site.events_key,
        json={"events": [{"id": recorded, "type": "purchase"}]},
    )
    assert again.json()["data"]["duplicates"] == 1
    await site.change_notification(notification["id"], name="Recent buyers")
    await work()
    messages = _messages(receiver, address, secret)
    received = [message["data"] for message in messages if message["type"] == "event.received"]
    assert [event["id"] for event in received] == [recorded, click["id"], purchase["id"]]
    first = received[0]
    assert first["siteId"] == site.id and first["type"] == "purchase"
    assert first["details"] == {"firstName": "Ada", "city": "Leeds", "product": "Boots"}
    assert "customer-7" not in orjson.dumps(messages).decode() and "tag" not in first["details"]
    [conversion] = [message["data"] for message in messages if message["type"] == "conversion.created"]
    assert (conversion["eventId"], conversion["notificationId"]) == (purchase["id"], notification["id"])
    [updated] = [message["data"] for message in messages if message["type"] == "notification.updated"]
    assert updated["id"] == notification["id"] and updated["name"] == "Recent buyers"


async def test_nothing_is_sent_for_an_org_with_no_endpoint(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, database_url: str, work: Run
) -> None:
    site = await _site(client, founder, database_url)
    before = len(receiver.received)
    await site.record({"type": "signup", "firstName": "Cy"})
    await work()
    deliveries = (await client.get("/api/v1/webhooks/deliveries", headers=founder.headers)).json()
    assert deliveries["meta"]["total"] == 0 and len(receiver.received) == before


async def test_completed_ab_tests_and_plan_changes_are_sent(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, database_url: str, work: Run
) -> None:
    site = await _site(client, founder, database_url)
    notification = await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})
    address = receiver.address()
    secret = (await make_endpoint(client, founder, address, ["ab_test.completed", "subscription.changed"]))["secret"]
    variants = [
        {"name": "Variant A", "isControl": True, "weight": 50, "message": "Someone bought"},
        {"name": "Variant B", "isControl": False, "weight": 50, "message": "A shopper just bought"},
    ]
    tests = f"/api/v1/sites/{site.id}/ab-tests"
    created = await client.post(
        tests,
        headers=founder.headers,
        json={"name": "Wording", "notificationId": notification["id"], "variants": variants},
    )
    assert created.status_code == 201, created.text
    test = created.json()["data"]
    assert (await client.post(f"{tests}/{test['id']}/start", headers=founder.headers)).status_code == 200
    winner = test["variants"][1]["id"]
    completed = await client.post(
        f"{tests}/{test['id']}/complete", headers=founder.headers, json={"winnerVariantId": winner}
    )
    assert completed.status_code == 200, completed.text
    plan = await client.post(f"/api/v1/sites/{site.id}/subscription", headers=founder.headers, json={"plan": "growth"})
    assert plan.status_code == 200, plan.text
    await work()
    sent = {message["type"]: message["data"] for message in _messages(receiver, address, secret)}
    assert sent["ab_test.completed"]["id"] == test["id"]
    assert sent["ab_test.completed"]["winnerVariantId"] == winner
    assert (sent["subscription.changed"]["plan"], sent["subscription.changed"]["provider"]) == ("growth", "manual")
