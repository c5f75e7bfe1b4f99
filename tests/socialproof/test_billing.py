"""Billing: plans and their limits, usage from the visitor sketches, quota alerts at 80 and 100 % (once a period),
the silent widget over quota with events still stored, Stripe Billing against the fake Stripe, RBAC and tenancy."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.demo.stripe_account import DAY, Account
from northstar.demo.stripe_api import FakeStripe
from northstar.settings import BillingPlan, BillingSettings, Settings
from northstar.socialproof.service import billing
from tests.conftest import Mailbox, running
from tests.factories import Account as User
from tests.factories import add_member, signup
from tests.socialproof.conftest import WidgetSite, widget_event

WEBHOOK_SECRET = f"whsec_{uuid.uuid4().hex}"


# key: (name, monthly visitors, sites, notifications per site, price, the fake account's product for its Stripe price)
PLANS = {
    "free": ("Free", 10, 1, 2, 0, None),
    "starter": ("Starter", 100, 3, 5, 1900, "starter"),
    "growth": ("Growth", 1000, 5, 10, 4900, "pro"),
    "pro": ("Pro", None, 10, None, 12900, "business"),
}


def _plans(stripe: FakeStripe | None = None) -> dict[str, BillingPlan]:
    return {
        key: BillingPlan(
            name=name,
            monthly_visitors=visitors,
            max_sites=sites,
            max_notifications=notifications,
            price=price,
            stripe_price_id=str(stripe.account.price(product, "usd")["id"]) if stripe and product else "",
        )
        for key, (name, visitors, sites, notifications, price, product) in PLANS.items()
    }


def _configured(settings: Settings, **billing_fields: Any) -> Settings:
    config = BillingSettings(**billing_fields)
    return settings.model_copy(
        update={
            "socialproof": settings.socialproof.model_copy(
                update={"billing": config, "site_cache_seconds": 0.0, "feed_cache_seconds": 0.0}
            )
        }
    )


@pytest.fixture(scope="module")
async def manual_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(_configured(settings, plans=_plans()))
    async with running(app) as client:
        yield app, client


@pytest.fixture(scope="module")
async def fake_stripe() -> AsyncIterator[tuple[FakeStripe, str]]:
    now = int(time.time())
    fake = FakeStripe(Account(seed=7, start=now - 30 * DAY, until=now + DAY), requests_per_second=None)
    async with serving(fake.app) as url:
        yield fake, url


@pytest.fixture(scope="module")
async def stripe_app(
    settings: Settings, fake_stripe: tuple[FakeStripe, str]
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    fake, url = fake_stripe
    configured = _configured(
        settings,
        provider="stripe",
        plans=_plans(fake),
        default_plan="free",
        stripe_api_url=url,
        stripe_secret_key=fake.api_key,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )
    app = create_app(configured)
    async with running(app) as client:
        yield app, client


async def _site(client: httpx.AsyncClient, owner: User, database_url: str) -> WidgetSite:
    body = {"name": "Shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com"}
    response = await client.post("/api/v1/sites", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    return WidgetSite(client=client, account=owner, database_url=database_url, site=response.json()["data"])


async def _subscription(client: httpx.AsyncClient, owner: User, site: WidgetSite) -> dict[str, Any]:
    response = await client.get(f"/api/v1/sites/{site.id}/subscription", headers=owner.headers)
    assert response.status_code == 200, response.text
    return dict(response.json()["data"])


async def _choose(client: httpx.AsyncClient, owner: User, site: WidgetSite, plan: str) -> httpx.Response:
    return await client.post(f"/api/v1/sites/{site.id}/subscription", headers=owner.headers, json={"plan": plan})


async def _deliver(client: httpx.AsyncClient, fake: FakeStripe, *events: dict[str, Any]) -> None:
    """Stripe's webhook deliveries of ``events``, signed with the endpoint's secret, each acknowledged."""
    for event in events:
        body, headers = fake.signed(event, WEBHOOK_SECRET)
        delivered = await client.post("/api/v1/billing/stripe/webhook", content=body, headers=headers)
        assert delivered.status_code == 200, delivered.text


async def _check(app: FastAPI, org_id: uuid.UUID) -> list[int]:
    async with app.state.database.tenant_transaction(org_id=org_id) as session:
        return await billing.check_quota(session, org_id=org_id)


async def _visitors(site: WidgetSite, count: int) -> None:
    """``count`` new identified visitors, each with a purchase recorded by the merchant's backend."""
    await site.record(
        *({"type": "purchase", "visitorId": f"v-{uuid.uuid4().hex}", "firstName": "Anna"} for _ in range(count))
    )


async def test_a_new_org_has_no_plan_and_chooses_one(
    manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str
) -> None:
    _, client = manual_app
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    start = await _subscription(client, founder, site)
    assert start["plan"] is None and start["provider"] == "manual" and start["usage"]["quota"] is None
    assert [plan["key"] for plan in start["plans"]] == ["free", "starter", "growth", "pro"]
    assert start["plans"][1]["price"] == {"amount": 1900, "currency": "usd"}
    assert start["quota"]["state"] == "ok"

    chosen = await _choose(client, founder, site, "starter")
    assert chosen.status_code == 200, chosen.text
    data = chosen.json()["data"]
    assert data["plan"]["key"] == "starter" and data["checkoutUrl"] is None and data["status"] == "active"
    assert data["usage"] == {
        "visitors": 0,
        "siteVisitors": 0,
        "quota": 100,
        "percent": 0.0,
        "sites": 1,
        "siteNotifications": 0,
    }
    period_start = dt.datetime.fromisoformat(data["periodStart"])
    assert period_start.day == 1 and period_start.hour == 0
    assert (await _subscription(client, founder, site))["plan"]["key"] == "starter"


async def test_bad_input_is_a_clear_4xx(manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str) -> None:
    _, client = manual_app
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    path = f"/api/v1/sites/{site.id}/subscription"
    unknown = await client.post(path, headers=founder.headers, json={"plan": "platinum"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_plan"
    assert unknown.json()["error"]["details"][0]["field"] == "body.plan"
    for body in ({}, {"plan": ""}, {"plan": "free", "price": 0}, {"plan": 3}, {"plan": "x" * 41}):
        response = await client.post(path, headers=founder.headers, json=body)
        assert response.status_code == 422, (body, response.text)
    not_json = await client.post(path, headers={**founder.headers, "content-type": "application/json"}, content=b"{")
    assert not_json.status_code == 422
    assert (await client.get("/api/v1/sites/not-a-uuid/subscription", headers=founder.headers)).status_code == 422
    missing = await client.get(f"/api/v1/sites/{uuid.uuid4()}/subscription", headers=founder.headers)
    assert missing.status_code == 404
    portal = await client.post(f"{path}/portal", headers=founder.headers)
    assert portal.status_code == 409 and portal.json()["error"]["code"] == "no_billing_portal"
    webhook = await client.post("/api/v1/billing/stripe/webhook", content=b"{}")
    assert webhook.status_code == 404  # this install bills with the manual provider


async def test_plan_limits_on_sites_and_notifications(
    manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str
) -> None:
    _, client = manual_app
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    assert (await _choose(client, founder, site, "free")).status_code == 200
    second = await client.post(
        "/api/v1/sites", headers=founder.headers, json={"name": "Two", "domain": f"two-{uuid.uuid4().hex[:8]}.example"}
    )
    assert second.status_code == 402, second.text
    error = second.json()["error"]
    assert error["code"] == "plan_limit_reached" and error["details"] == {"limit": "sites", "max": 1, "plan": "free"}
    for _ in range(2):
        await site.notification(type="announcement")
    third = await client.post(
        f"/api/v1/sites/{site.id}/notifications",
        headers=founder.headers,
        json={"name": "Third", "type": "announcement"},
    )
    assert third.status_code == 402 and third.json()["error"]["details"]["limit"] == "notifications per site"

    assert (await _choose(client, founder, site, "starter")).status_code == 200  # more room: both work now
    other = await _site(client, founder, database_url)
    await site.notification(type="announcement")
    assert (await _subscription(client, founder, other))["usage"]["sites"] == 2
    down = await _choose(client, founder, site, "free")
    assert down.status_code == 409 and down.json()["error"]["code"] == "plan_too_small"
    assert {item["limit"] for item in down.json()["error"]["details"]} == {"sites", "notifications per site"}
    assert (await _subscription(client, founder, site))["plan"]["key"] == "starter"


async def test_quota_alerts_once_a_period_then_the_widget_is_silent_and_events_are_kept(
    manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str, mailbox: Mailbox
) -> None:
    app, client = manual_app
    founder = await signup(client)
    admin = await add_member(client, founder, "admin")
    member = await add_member(client, founder, "member")
    site = await _site(client, founder, database_url)
    assert (await _choose(client, founder, site, "free")).status_code == 200  # 10 visitors a month
    await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})
    await _visitors(site, 7)
    assert await _check(app, founder.org_id) == []
    assert mailbox.to(founder.email) == []

    await _visitors(site, 1)  # 8 of 10
    assert await _check(app, founder.org_id) == [80]
    assert await _check(app, founder.org_id) == []  # once a period
    [alert] = mailbox.to(founder.email)
    assert "80 %" in alert["Subject"] and "8 unique visitors" in alert.get_payload()
    assert len(mailbox.to(admin.email)) == 1 and mailbox.to(member.email) == []
    state = await _subscription(client, founder, site)
    assert state["usage"]["visitors"] == 8 and state["usage"]["percent"] == 80.0
    feed = (await site.feed()).json()["data"]
    assert feed["notifications"] and feed["notifications"][0]["items"]

    await _visitors(site, 3)  # 11 of 10
    assert await _check(app, founder.org_id) == [100]
    assert await _check(app, founder.org_id) == []
    assert [m["Subject"] for m in mailbox.to(founder.email)][1].startswith("Your sites reached")
    state = await _subscription(client, founder, site)
    assert state["quota"]["state"] == "silent" and state["quota"]["reachedAt"]
    reached = dt.datetime.fromisoformat(state["quota"]["reachedAt"])
    assert dt.datetime.fromisoformat(state["quota"]["collectUntil"]) == reached + dt.timedelta(days=7)
    assert state["quota"]["silentUntil"] == state["periodEnd"]

    silent = (await site.feed()).json()["data"]
    assert silent["notifications"] == [] and silent["live"] is False
    stored_before = len(site.stored())
    await _visitors(site, 2)  # still stored, server-side
    collected = await site.collect(widget_event("page_view", site.page("/shoes")))
    assert collected.status_code == 202 and collected.json()["data"]["accepted"] == 1
    assert len(site.stored()) == stored_before + 3

    # Seven days later the grace is over: nothing more is stored until the period ends or the plan grows.
    with psycopg.connect(database_url) as connection:
        connection.execute(
            "UPDATE socialproof.subscriptions SET quota_reached_at = quota_reached_at - interval '8 days'"
            " WHERE org_id = %s",
            (founder.org_id,),
        )
    assert (await _subscription(client, founder, site))["quota"]["state"] == "stopped"
    dropped = await site.collect(widget_event("page_view", site.page("/shoes")))
    assert dropped.status_code == 202 and dropped.json()["data"] == {"accepted": 0, "duplicates": 0, "dropped": 1}
    refused = await client.post(
        f"/api/v1/sites/{site.id}/events",
        headers=site.events_key,
        json={"events": [{"id": str(uuid.uuid4()), "type": "purchase"}]},
    )
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "quota_exceeded"
    assert len(site.stored()) == stored_before + 3

    # A larger plan lifts it at once: popups again, events stored, alerts measured against the new quota.
    assert (await _choose(client, founder, site, "starter")).status_code == 200
    assert (await site.feed()).json()["data"]["notifications"]
    await _visitors(site, 1)
    assert await _check(app, founder.org_id) == []


async def test_stripe_checkout_webhooks_portal_and_plan_changes(
    stripe_app: tuple[FastAPI, httpx.AsyncClient], fake_stripe: tuple[FakeStripe, str], database_url: str
) -> None:
    _, client = stripe_app
    fake, _ = fake_stripe
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    start = await _subscription(client, founder, site)
    assert start["plan"]["key"] == "free" and start["provider"] == "stripe"

    asked = await _choose(client, founder, site, "growth")
    assert asked.status_code == 200, asked.text
    data = asked.json()["data"]
    assert data["plan"]["key"] == "free" and data["pendingPlan"] == "growth"
    assert data["checkoutUrl"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    session = fake.checkout_sessions[data["checkoutUrl"].rsplit("/", 1)[1]]
    assert session["client_reference_id"] == str(founder.org_id)
    assert session["success_url"].endswith(f"/app/sites/{site.id}/billing?checkout=success")
    customer = fake.account.customers[session["customer"]]
    assert customer["email"] == founder.email and customer["metadata"] == {"org_id": str(founder.org_id)}

    first_event = len(fake.account.events)
    subscription = fake.complete_checkout(session["id"])
    events = [e for e in fake.account.events[first_event:] if e["type"].startswith("customer.subscription.")]
    assert [e["type"] for e in events][:1] == ["customer.subscription.created"]
    await _deliver(client, fake, *events)
    state = await _subscription(client, founder, site)
    assert state["plan"]["key"] == "growth" and state["status"] == "active" and state["pendingPlan"] is None
    start_at, end_at = fake.account.period_of(subscription["id"])
    assert dt.datetime.fromisoformat(state["periodStart"]).timestamp() == start_at
    assert dt.datetime.fromisoformat(state["periodEnd"]).timestamp() == end_at

    portal = await client.post(f"/api/v1/sites/{site.id}/subscription/portal", headers=founder.headers)
    assert portal.status_code == 200
    assert portal.json()["data"]["url"].startswith("https://billing.stripe.com/p/session/")
    assert list(fake.portal_sessions.values())[-1]["customer"] == session["customer"]

    # A running subscription changes price in place; Stripe's answer applies at once.
    pro = await _choose(client, founder, site, "pro")
    assert pro.status_code == 200 and pro.json()["data"]["plan"]["key"] == "pro"
    assert (
        fake.account.subscriptions[subscription["id"]]["items"]["data"][0]["price"]["id"]
        == (fake.account.price("business", "usd")["id"])
    )
    # An older event delivered late changes nothing.
    await _deliver(client, fake, events[0])
    assert (await _subscription(client, founder, site))["plan"]["key"] == "pro"

    # Cancelled in the portal: Stripe's deleted event brings the org back to the default plan.
    fake.cancel(subscription["id"], at_period_end=False, prorate=False)
    deleted = fake.account.events[-1]
    assert deleted["type"] == "customer.subscription.deleted"
    await _deliver(client, fake, {**deleted, "created": deleted["created"] + 1})
    final = await _subscription(client, founder, site)
    assert final["plan"]["key"] == "free" and final["status"] == "canceled"


async def test_stripe_downgrade_to_free_cancels_the_subscription(
    stripe_app: tuple[FastAPI, httpx.AsyncClient], fake_stripe: tuple[FakeStripe, str], database_url: str
) -> None:
    _, client = stripe_app
    fake, _ = fake_stripe
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    url = (await _choose(client, founder, site, "starter")).json()["data"]["checkoutUrl"]
    first_event = len(fake.account.events)
    subscription = fake.complete_checkout(url.rsplit("/", 1)[1])
    await _deliver(client, fake, *fake.account.events[first_event:])
    assert (await _subscription(client, founder, site))["plan"]["key"] == "starter"
    free = await _choose(client, founder, site, "free")
    assert free.status_code == 200 and free.json()["data"]["plan"]["key"] == "free"
    assert fake.account.subscriptions[subscription["id"]]["status"] == "canceled"


async def test_stripe_webhook_signatures(
    stripe_app: tuple[FastAPI, httpx.AsyncClient], fake_stripe: tuple[FakeStripe, str], database_url: str
) -> None:
    _, client = stripe_app
    fake, _ = fake_stripe
    founder = await signup(client)
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": int(time.time()),
        "data": {
            "object": {
                "id": "sub_x",
                "customer": "cus_x",
                "status": "active",
                "metadata": {"org_id": str(founder.org_id)},
                "items": {"data": [{"price": {"id": _plans(fake)["pro"].stripe_price_id}}]},
            }
        },
    }
    path = "/api/v1/billing/stripe/webhook"
    body, headers = fake.signed(event, "whsec_not_the_one")
    wrong = await client.post(path, content=body, headers=headers)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_signature"
    body, headers = fake.signed(event, WEBHOOK_SECRET, at=int(time.time()) - 3600)
    late = await client.post(path, content=body, headers=headers)
    assert late.status_code == 401 and late.json()["error"]["code"] == "signature_expired"
    unsigned = await client.post(path, content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    tampered = body.replace(b"sub_x", b"sub_y")
    assert (await client.post(path, content=tampered, headers=headers)).status_code == 401
    garbage, headers = fake.signed({"id": "evt_1"}, WEBHOOK_SECRET)
    unreadable = await client.post(path, content=garbage, headers=headers)
    assert unreadable.status_code == 400 and unreadable.json()["error"]["code"] == "invalid_delivery"
    other_type = {**event, "type": "invoice.paid"}
    body, headers = fake.signed(other_type, WEBHOOK_SECRET)
    ignored = await client.post(path, content=body, headers=headers)
    assert ignored.status_code == 200 and ignored.json()["data"] == {"result": "ignored"}
    # none of these changed the org's plan
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT plan FROM socialproof.subscriptions WHERE org_id = %s", (founder.org_id,)
        ).fetchone()
    assert row is None


async def test_every_billing_route_follows_roles_and_tenants(
    manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str
) -> None:
    _, client = manual_app
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    path = f"/api/v1/sites/{site.id}/subscription"
    expected = {
        "admin": (200, 200, 409),
        "member": (200, 403, 403),
        "analyst": (200, 403, 403),
        "investor": (403, 403, 403),
    }
    for role, (read, change, portal) in expected.items():
        account = await add_member(client, founder, role)
        assert (await client.get(path, headers=account.headers)).status_code == read, role
        assert (await client.post(path, headers=account.headers, json={"plan": "starter"})).status_code == change, role
        assert (await client.post(f"{path}/portal", headers=account.headers)).status_code == portal, role

    intruder = await signup(client)
    for method, url, body in (
        ("GET", path, None),
        ("POST", path, {"plan": "free"}),
        ("POST", f"{path}/portal", None),
    ):
        foreign = await client.request(method, url, headers=intruder.headers, json=body)
        missing = await client.request(
            method, url.replace(site.id, str(uuid.uuid4())), headers=intruder.headers, json=body
        )
        assert foreign.status_code == missing.status_code == 404, (method, url, foreign.text)
        assert foreign.json() == missing.json()
    assert (await _subscription(client, founder, site))["plan"]["key"] == "starter"  # the admin's change only


async def test_a_new_period_starts_the_quota_and_its_alerts_afresh(
    manual_app: tuple[FastAPI, httpx.AsyncClient], database_url: str, mailbox: Mailbox
) -> None:
    app, client = manual_app
    founder = await signup(client)
    site = await _site(client, founder, database_url)
    assert (await _choose(client, founder, site, "free")).status_code == 200
    await site.notification(type="recent_activity", source={"eventTypes": ["purchase"]})
    await _visitors(site, 12)
    assert await _check(app, founder.org_id) == [80, 100]  # both passed between two checks: one e-mail, for 100 %
    assert len(mailbox.to(founder.email)) == 1
    assert (await site.feed()).json()["data"]["notifications"] == []

    next_month = billing.month_of(dt.datetime.now(dt.UTC)).end + dt.timedelta(hours=1)
    async with app.state.database.tenant_transaction(org_id=founder.org_id) as session:
        assert await billing.check_quota(session, org_id=founder.org_id, now=next_month) == []
        row = await billing.subscription_of(session, org_id=founder.org_id)
        assert row is not None
        assert (row.usage_visitors, row.alerted_percent, row.quota_reached_at) == (0, 0, None)
    assert (await _subscription(client, founder, site))["quota"]["state"] == "ok"
    assert (await site.feed()).json()["data"]["notifications"]
