"""Inbound hooks: Shopify, WooCommerce and generic (Zapier) deliveries in each vendor's documented format become
events, verified by their signatures, deduplicated by the source's id, and anonymised to a first name and a city
unless the site opts in."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from typing import Any

import httpx
import orjson
import pytest
import structlog
from standardwebhooks import Webhook

from tests.factories import Account, add_member
from tests.socialproof.conftest import SiteFactory, WidgetSite

SHOPIFY_SECRET = "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"
WOO_SECRET = "q7!Lz@c0mmerce-webhook-secret"


def _shopify_order(order_id: int) -> dict[str, Any]:
    """An ``orders/create`` body as Shopify documents it (trimmed to the fields a store always sends)."""
    address = {
        "first_name": "Steve",
        "last_name": "Shipper",
        "address1": "123 Shipping Street",
        "phone": "555-555-SHIP",
        "city": "Shippington",
        "zip": "40003",
        "province": "Kentucky",
        "country": "United States",
        "country_code": "US",
        "name": "Steve Shipper",
    }
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "email": "jon@example.com",
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "currency": "USD",
        "total_price": "398.00",
        "financial_status": "paid",
        "name": "#9999",
        "line_items": [
            {
                "id": 866550311766439020,
                "product_id": 788032119674292922,
                "title": "Aviator sunglasses",
                "name": "Aviator sunglasses",
                "price": "199.00",
                "quantity": 2,
            }
        ],
        "billing_address": address,
        "shipping_address": address,
        "customer": {
            "id": 115310627314723954,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
            "phone": None,
        },
    }


def _woo_order(order_id: int) -> dict[str, Any]:
    """An ``order.created`` body as the WooCommerce REST API v3 documents an order."""
    billing = {
        "first_name": "Marie Claire",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
        "email": "marie.doe@example.com",
        "phone": "(555) 555-5555",
    }
    return {
        "id": order_id,
        "parent_id": 0,
        "number": str(order_id),
        "order_key": "wc_order_58d2d042d1d",
        "created_via": "checkout",
        "status": "processing",
        "currency": "EUR",
        "date_created": "2026-12-06T16:28:02",
        "date_created_gmt": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        "total": "29.35",
        "customer_id": 0,
        "billing": billing,
        "shipping": {key: value for key, value in billing.items() if key not in ("email", "phone")},
        "payment_method": "bacs",
        "line_items": [{"id": 315, "name": "Woo Single #1", "product_id": 93, "quantity": 2, "total": "6.00"}],
    }


def _hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def _hook(site: WidgetSite, **fields: Any) -> dict[str, Any]:
    response = await site.client.post(
        f"/api/v1/sites/{site.id}/inbound-hooks", json={"name": "Store", **fields}, headers=site.account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def _post(
    client: httpx.AsyncClient, hook: dict[str, Any], body: bytes, headers: dict[str, str]
) -> httpx.Response:
    path = httpx.URL(hook["receiveUrl"]).path
    return await client.post(path, content=body, headers={"content-type": "application/json", **headers})


def _shopify_headers(body: bytes, secret: str = SHOPIFY_SECRET, topic: str = "orders/create") -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": _hmac(secret, body),
        "X-Shopify-Shop-Domain": "trail-shop.myshopify.com",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-API-Version": "2024-10",
    }


async def test_a_shopify_order_becomes_an_anonymised_purchase_once(site: WidgetSite) -> None:
    hook = await _hook(site, provider="shopify", secret=SHOPIFY_SECRET)
    assert hook["secret"] == SHOPIFY_SECRET and hook["receiveUrl"].endswith(f"/api/v1/inbound-hooks/{hook['id']}")
    body = orjson.dumps(_shopify_order(820982911946154508))
    first = await _post(site.client, hook, body, _shopify_headers(body))
    assert first.status_code == 200, first.text
    assert first.json()["data"] == {"accepted": 1, "duplicates": 0, "ignored": 0}
    retried = await _post(site.client, hook, body, _shopify_headers(body))  # Shopify retries until it gets a 200
    assert retried.json()["data"] == {"accepted": 0, "duplicates": 1, "ignored": 0}
    [stored] = site.stored()
    assert stored.event_type == "purchase" and stored.payload == {"firstName": "John", "city": "Shippington"}
    text = " ".join(site.stored_rows_as_text())
    for private in ("Smith", "john@example.com", "jon@example.com", "123 Shipping", "555-555", "Aviator", "398.0"):
        assert private not in text
    other_topic = await _post(site.client, hook, body, _shopify_headers(body, topic="orders/updated"))
    assert other_topic.json()["data"] == {"accepted": 0, "duplicates": 0, "ignored": 1}
    listed = await site.client.get(f"/api/v1/sites/{site.id}/inbound-hooks", headers=site.account.headers)
    assert listed.json()["data"][0]["lastReceivedAt"] is not None and "secret" not in listed.json()["data"][0]


async def test_a_bad_signature_is_refused_and_logged(site: WidgetSite) -> None:
    hook = await _hook(site, provider="shopify", secret=SHOPIFY_SECRET)
    body = orjson.dumps(_shopify_order(1001))
    forged = [
        _shopify_headers(body, secret="another-app-secret"),
        {**_shopify_headers(body), "X-Shopify-Hmac-Sha256": ""},
        _shopify_headers(orjson.dumps(_shopify_order(1002))),  # a signature of another body
    ]
    with structlog.testing.capture_logs() as logs:
        for headers in forged:
            response = await _post(site.client, hook, body, headers)
            assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
        unknown = await site.client.post(f"/api/v1/inbound-hooks/{uuid.uuid4()}", content=body)
        assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_signature"
    rejected = [entry for entry in logs if entry["event"] == "inbound_hook_signature_rejected"]
    assert len(rejected) == 4 and rejected[0]["hook"] == hook["id"] and rejected[0]["provider"] == "shopify"
    assert site.stored() == []


async def test_a_woocommerce_order_shares_details_when_the_site_opts_in(site: WidgetSite) -> None:
    hook = await _hook(site, provider="woocommerce", secret=WOO_SECRET, shareDetails=True)
    ping = await _post(site.client, hook, b"webhook_id=12", {"content-type": "application/x-www-form-urlencoded"})
    assert ping.status_code == 200 and ping.json()["data"]["ignored"] == 1
    body = orjson.dumps(_woo_order(727))
    headers = {
        "X-WC-Webhook-Source": f"https://{site.domain}/",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Signature": _hmac(WOO_SECRET, body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": "a2f6c1d8e3b94f0c9d7e6b5a4c3d2e1f",
    }
    response = await _post(site.client, hook, body, headers)
    assert response.json()["data"] == {"accepted": 1, "duplicates": 0, "ignored": 0}, response.text
    [stored] = site.stored()
    assert stored.payload == {
        "firstName": "Marie",
        "city": "San Francisco",
        "country": "US",
        "product": "Woo Single #1",
        "amount": 29.35,
        "currency": "EUR",
    }
    assert "Doe" not in " ".join(site.stored_rows_as_text()) and "marie.doe" not in " ".join(site.stored_rows_as_text())
    forged = await _post(site.client, hook, body, {**headers, "X-WC-Webhook-Signature": _hmac("guess", body)})
    assert forged.status_code == 401
    signup = orjson.dumps({"id": 25, "email": "new@example.com", "first_name": "Ola", "billing": {"city": "Oslo"}})
    response = await _post(
        site.client,
        hook,
        signup,
        {**headers, "X-WC-Webhook-Topic": "customer.created", "X-WC-Webhook-Signature": _hmac(WOO_SECRET, signup)},
    )
    assert response.json()["data"]["accepted"] == 1
    assert [(event.event_type, event.payload.get("firstName")) for event in site.stored()][-1] == ("signup", "Ola")


async def test_a_generic_hook_takes_standard_webhooks_signatures_or_its_secret(site: WidgetSite) -> None:
    hook = await _hook(site, provider="generic")
    secret = hook["secret"]
    assert secret.startswith("whsec_")
    body = orjson.dumps(
        [
            {
                "id": "zap-1",
                "type": "signup",
                "first_name": "Grace Hopper",
                "email": "grace@example.com",
                "city": "Arlington",
            },
            {"id": "zap-2", "firstName": "Alan", "city": "Wilmslow", "product": "Enigma", "amount": "12.5"},
        ]
    )
    message_id, now = "msg_2Lh3t9", dt.datetime.now(dt.UTC)
    signed = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body),
    }
    response = await _post(site.client, hook, body, signed)
    assert response.json()["data"] == {"accepted": 2, "duplicates": 0, "ignored": 0}, response.text
    stored = {event.payload["firstName"]: event for event in site.stored()}
    assert stored["Grace"].event_type == "signup" and stored["Grace"].payload == {
        "firstName": "Grace",
        "city": "Arlington",
    }
    assert stored["Alan"].event_type == "purchase" and "product" not in stored["Alan"].payload  # no opt-in
    stale = {**signed, "webhook-timestamp": str(int(now.timestamp()) - 3600)}
    stale["webhook-signature"] = Webhook(secret).sign(message_id, now - dt.timedelta(hours=1), body)
    assert (await _post(site.client, hook, body, stale)).status_code == 401  # a replay from an hour ago
    zap = orjson.dumps({"id": "zap-3", "first_name": "Ada", "city": "London"})
    by_secret = await _post(site.client, hook, zap, {"X-Hook-Secret": secret})
    assert by_secret.json()["data"]["accepted"] == 1
    assert (await _post(site.client, hook, zap, {"X-Hook-Secret": secret[:-2]})).status_code == 401
    assert (await _post(site.client, hook, zap, {})).status_code == 401
    missing_id = orjson.dumps({"first_name": "Nobody"})
    response = await _post(site.client, hook, missing_id, {"X-Hook-Secret": secret})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_delivery"
    response = await _post(site.client, hook, b"{not json", {"X-Hook-Secret": secret})
    assert response.status_code == 400


async def test_replacing_a_secret_stops_the_old_one_at_once(site: WidgetSite) -> None:
    hook = await _hook(site, provider="shopify", secret=SHOPIFY_SECRET)
    changed = await site.client.patch(
        f"/api/v1/sites/{site.id}/inbound-hooks/{hook['id']}",
        json={"secret": "shpss_rotated-secret-value", "shareDetails": True},
        headers=site.account.headers,
    )
    assert changed.status_code == 200 and changed.json()["data"]["shareDetails"] is True
    body = orjson.dumps(_shopify_order(42))
    assert (await _post(site.client, hook, body, _shopify_headers(body))).status_code == 401
    accepted = await _post(site.client, hook, body, _shopify_headers(body, secret="shpss_rotated-secret-value"))
    assert accepted.status_code == 200
    assert site.stored()[0].payload["product"] == "Aviator sunglasses"  # opted in now


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"provider": "shopify", "name": "Store"}, 400),  # Shopify signs with the app's secret: it must be given
        ({"provider": "magento", "name": "Store"}, 422),
        ({"provider": "generic", "name": "Store", "secret": "short"}, 422),
        ({"provider": "generic", "name": "   "}, 422),
        ({"provider": "generic", "name": "Store", "url": "https://x"}, 422),
    ],
)
async def test_bad_hooks_are_refused(site: WidgetSite, body: dict[str, Any], status: int) -> None:
    response = await site.client.post(f"/api/v1/sites/{site.id}/inbound-hooks", json=body, headers=site.account.headers)
    assert response.status_code == status, response.text
    listed = await site.client.get(f"/api/v1/sites/{site.id}/inbound-hooks", headers=site.account.headers)
    assert listed.json()["meta"]["total"] == 0


async def test_hooks_of_another_organization_are_missing_and_analysts_only_read(
    client: httpx.AsyncClient, founder: Account, other_founder: Account, site: WidgetSite, make_site: SiteFactory
) -> None:
    hook = await _hook(site, provider="generic")
    one = f"/api/v1/sites/{site.id}/inbound-hooks/{hook['id']}"
    theirs = other_founder.headers
    answers = [
        await client.get(f"/api/v1/sites/{site.id}/inbound-hooks", headers=theirs),
        await client.get(one, headers=theirs),
        await client.patch(one, json={"name": "Mine"}, headers=theirs),
        await client.delete(one, headers=theirs),
        await client.post(
            f"/api/v1/sites/{site.id}/inbound-hooks", json={"provider": "generic", "name": "x"}, headers=theirs
        ),
    ]
    assert [response.status_code for response in answers] == [404] * 5
    their_site = await make_site(account=other_founder)
    assert (
        await client.get(f"/api/v1/sites/{their_site.id}/inbound-hooks/{hook['id']}", headers=theirs)
    ).status_code == 404
    analyst = await add_member(client, founder, "analyst")
    assert (await client.get(one, headers=analyst.headers)).status_code == 200
    refused = await client.post(
        f"/api/v1/sites/{site.id}/inbound-hooks", json={"provider": "generic", "name": "x"}, headers=analyst.headers
    )
    assert refused.status_code == 403
    assert (await client.delete(one, headers=founder.headers)).status_code == 204
