"""Deliveries end to end: emitted in a transaction, signed per Standard Webhooks (checked with the spec's own
library), posted to a real receiver on loopback, retried on its schedule, replayed, and the endpoint turned off
after three days of failures with the admins told in-app and by e-mail."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from standardwebhooks import Webhook, WebhookVerificationError

from northstar.core.db import Database
from northstar.settings import Settings, WebhooksSettings
from northstar.webhooks import service as webhooks
from northstar.webhooks.service import delivery as deliveries
from northstar.webhooks.service.emission import cached_subscriptions
from northstar.webhooks.signing import new_secret
from tests.conftest import Mailbox
from tests.factories import Account
from tests.webhooks.conftest import Receiver, Run, deliveries_of, delivery, make_endpoint


async def emit(database: Database, account: Account, event_type: str, data: Any) -> int:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        return await webhooks.emit(session, org_id=account.org_id, event_type=event_type, data=data)


async def test_a_delivery_is_signed_per_standard_webhooks(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, worker_database: Database, work: Run
) -> None:
    address = receiver.address()
    endpoint = await make_endpoint(client, founder, address, ["quota.reached"], description="billing bot")
    assert endpoint["secret"].startswith("whsec_") and endpoint["status"] == "active"
    assert await emit(worker_database, founder, "quota.reached", {"siteId": str(uuid.uuid4()), "percent": 80}) == 1
    assert await emit(worker_database, founder, "conversion.created", {"ignored": True}) == 0  # not subscribed
    await work()
    [arrived] = receiver.at(address)
    payload = Webhook(endpoint["secret"]).verify(arrived.body, arrived.headers)
    assert payload["type"] == "quota.reached" and payload["data"]["percent"] == 80
    assert arrived.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):  # another secret does not verify it
        Webhook(new_secret()).verify(arrived.body, arrived.headers)
    [listed] = await deliveries_of(client, founder)
    assert listed["messageId"] == arrived.headers["webhook-id"] and listed["status"] == "succeeded"
    found = await delivery(client, founder, listed["id"])
    assert (found["attemptCount"], found["lastResponseCode"], found["lastResponseBody"]) == (1, 200, "ok")
    assert found["payload"] == orjson.loads(arrived.body)
    [attempt] = found["attempts"]
    assert attempt["responseCode"] == 200 and attempt["responseMs"] >= 0 and attempt["manual"] is False


async def test_a_rotation_signs_with_both_secrets_until_its_grace_period_ends(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, worker_database: Database, work: Run
) -> None:
    address = receiver.address()
    endpoint = await make_endpoint(client, founder, address, ["subscription.changed"])
    rotated = await client.post(f"/api/v1/webhooks/endpoints/{endpoint['id']}/rotate-secret", headers=founder.headers)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["data"]
    assert new["secret"] != endpoint["secret"] and new["previousSecretExpiresAt"] is not None
    await emit(worker_database, founder, "subscription.changed", {"plan": "growth"})
    await work()
    [during] = receiver.at(address)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new["secret"]):  # receivers on either secret accept it
        assert Webhook(secret).verify(during.body, during.headers)["data"] == {"plan": "growth"}
    async with worker_database.tenant_transaction(org_id=founder.org_id) as session:  # the grace period ends
        await session.execute(
            text(
                "UPDATE webhooks.endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": endpoint["id"]},
        )
    await emit(worker_database, founder, "subscription.changed", {"plan": "pro"})
    await work()
    after = receiver.at(address)[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new["secret"]).verify(after.body, after.headers)["data"] == {"plan": "pro"}
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(after.body, after.headers)


async def test_failures_are_retried_seven_times_then_replayed(
    client: httpx.AsyncClient, founder: Account, receiver: Receiver, worker_database: Database, work: Run
) -> None:
    address = receiver.address()
    receiver.answers[httpx.URL(address).path] = (503, "maintenance " + "x" * 5000)
    await make_endpoint(client, founder, address, ["ab_test.completed"])
    await emit(worker_database, founder, "ab_test.completed", {"testId": "t1"})
    await work()  # the waits are zero here: every attempt runs now
    arrived = receiver.at(address)
    assert len(arrived) == 7 and len({item.headers["webhook-id"] for item in arrived}) == 1  # one message id
    [listed] = await deliveries_of(client, founder, status="failed")
    found = await delivery(client, founder, listed["id"])
    assert (found["attemptCount"], found["lastResponseCode"], found["nextAttemptAt"]) == (7, 503, None)
    assert found["lastResponseBody"].startswith("maintenance") and len(found["lastResponseBody"]) == 1024
    assert [attempt["number"] for attempt in found["attempts"]] == list(range(1, 8))
    receiver.answers.pop(httpx.URL(address).path)
    replayed = await client.post(f"/api/v1/webhooks/deliveries/{listed['id']}/replay", headers=founder.headers)
    assert replayed.status_code == 202 and replayed.json()["data"]["status"] == "pending"
    again = await client.post(f"/api/v1/webhooks/deliveries/{listed['id']}/replay", headers=founder.headers)
    assert again.status_code == 409  # still waiting for its replay
    await work()
    found = await delivery(client, founder, listed["id"])
    assert (found["status"], found["attemptCount"], found["attempts"][-1]["manual"]) == ("succeeded", 8, True)
    assert receiver.at(address)[-1].headers["webhook-id"] == arrived[0].headers["webhook-id"]


def test_the_default_schedule_spreads_seven_attempts_over_about_a_day_and_a_half() -> None:
    config = WebhooksSettings()
    assert deliveries.max_attempts(config) == 7
    for _ in range(200):
        waits = [deliveries.retry_delay(config, attempt) for attempt in range(1, 7)]
        total = sum(waits, dt.timedelta())
        assert dt.timedelta(days=1.1) < total < dt.timedelta(days=1.75)
        for wait, base in zip(waits, config.retry_delays_seconds, strict=True):
            assert base * 0.8 <= wait.total_seconds() <= base * 1.2
    spread = {deliveries.retry_delay(config, 3).total_seconds() for _ in range(50)}
    assert len(spread) > 40  # jitter: endpoints that failed together come back at different times


async def test_an_endpoint_failing_for_three_days_is_turned_off_and_admins_told(
    client: httpx.AsyncClient,
    founder: Account,
    receiver: Receiver,
    worker_database: Database,
    work: Run,
    mailbox: Mailbox,
) -> None:
    address = receiver.address()
    receiver.answers[httpx.URL(address).path] = (500, "down")
    endpoint = await make_endpoint(client, founder, address, ["quota.reached"])
    await emit(worker_database, founder, "quota.reached", {"percent": 100})
    await work()  # failing since now: not turned off yet
    current = (await client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=founder.headers)).json()
    assert current["data"]["status"] == "active" and current["data"]["failingSince"] is not None
    async with worker_database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(
            text("UPDATE webhooks.endpoints SET failing_since = now() - interval '73 hours' WHERE id = :id"),
            {"id": endpoint["id"]},
        )
    await emit(worker_database, founder, "quota.reached", {"percent": 100})
    await work()
    current = (await client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=founder.headers)).json()
    assert current["data"]["status"] == "disabled" and "failing since" in current["data"]["disabledReason"]
    newest = (await deliveries_of(client, founder))[0]
    assert newest["status"] == "failed" and newest["attemptCount"] == 1  # no retries to a turned-off endpoint
    inbox = (await client.get("/api/v1/notifications/inbox", headers=founder.headers)).json()["data"]
    assert any(address in message["title"] for message in inbox)
    [mail] = [message for message in mailbox.to(founder.email) if address in message["Subject"]]
    assert "turned off" in mail["Subject"]
    assert await emit(worker_database, founder, "quota.reached", {"percent": 100}) == 0  # nothing to a turned-off one
    replay = await client.post(f"/api/v1/webhooks/deliveries/{newest['id']}/replay", headers=founder.headers)
    assert replay.status_code == 409 and replay.json()["error"]["code"] == "disabled"
    turned_on = await client.patch(
        f"/api/v1/webhooks/endpoints/{endpoint['id']}", json={"enabled": True}, headers=founder.headers
    )
    assert turned_on.json()["data"]["status"] == "active" and turned_on.json()["data"]["failingSince"] is None


async def test_emitting_with_no_subscriber_is_answered_from_the_cache(
    founder: Account, worker_database: Database
) -> None:
    assert await emit(worker_database, founder, "event.received", {"id": "e1"}) == 0
    assert cached_subscriptions(founder.org_id) == {}  # the next emit of this org needs no round trip
    with pytest.raises(ValueError, match="unknown webhook event type"):
        await emit(worker_database, founder, "order.paid", {})


async def test_the_outbound_guard_refuses_private_addresses_at_every_attempt(
    settings: Settings, receiver: Receiver
) -> None:
    """Under the default policy (https only, no private networks), the loopback receiver is never reached."""
    request = deliveries.Outgoing(url=receiver.address(), body=b"{}", keys=[b"k" * 24], message_id="msg_1")
    outcome = await deliveries.send(settings, request)
    assert outcome.code is None and outcome.error is not None and outcome.error.startswith("blocked")
    https = deliveries.Outgoing(url="https://127.0.0.1:1/x", body=b"{}", keys=[b"k" * 24], message_id="msg_2")
    outcome = await deliveries.send(settings, https)
    assert outcome.code is None and outcome.error is not None and "private" in outcome.error
    assert receiver.at(request.url) == []


def _outgoing(url: str) -> deliveries.Outgoing:
    return deliveries.Outgoing(url=url, body=b'{"type":"event.received"}', keys=[b"k" * 24], message_id="msg_x")


async def test_a_receiver_named_by_host_is_reached_and_its_answer_kept_up_to_the_limit(
    webhook_settings: Settings, receiver: Receiver
) -> None:
    """A host name goes through the guarded resolver (loopback allowed here); the answer is kept to
    ``response_bytes``; the same name under the default guard is refused before any connection."""
    named = receiver.address().replace("127.0.0.1", "localhost")
    receiver.answers[httpx.URL(named).path] = (202, "x" * 5000)
    outcome = await deliveries.send(webhook_settings, _outgoing(named))
    assert outcome.code == 202 and outcome.error is None
    assert outcome.body == "x" * webhook_settings.webhooks.response_bytes
    [received] = receiver.at(named)
    assert (
        received.headers["host"] == httpx.URL(named).netloc.decode() and received.body == b'{"type":"event.received"}'
    )
    guarded = webhook_settings.model_copy(
        update={"outbound": webhook_settings.outbound.model_copy(update={"allow_private_networks": False})}
    )
    refused = await deliveries.send(guarded, _outgoing(receiver.address().replace("127.0.0.1", "localhost")))
    assert (
        refused.code is None
        and refused.error is not None
        and refused.error.startswith("blocked")
        and "private" in refused.error
    )


async def test_a_refused_connection_and_a_slow_receiver_are_failures_with_their_reason(
    webhook_settings: Settings, receiver: Receiver
) -> None:
    closed = await deliveries.send(webhook_settings, _outgoing("http://127.0.0.1:9/hooks/closed"))
    assert closed.code is None and closed.error is not None and closed.error.startswith("ClientConnectorError")
    slow = receiver.address()
    receiver.delays[httpx.URL(slow).path] = 2.0
    impatient = webhook_settings.model_copy(
        update={"webhooks": webhook_settings.webhooks.model_copy(update={"timeout_seconds": 0.3})}
    )
    outcome = await deliveries.send(impatient, _outgoing(slow))
    assert outcome.code is None and outcome.error == "timed out after 0.3 s"
