"""What stores and automations send to a site's inbound hook, and how it becomes purchase and signup events.

* Shopify (``orders/create``, ``customers/create``): ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the
  raw body with the app's secret; the topic is ``X-Shopify-Topic``.
* WooCommerce (``order.created``, ``customer.created``): ``X-WC-Webhook-Signature`` is the base64 HMAC-SHA256 of
  the raw body with the webhook's secret; the topic is ``X-WC-Webhook-Topic``. When a webhook is saved WooCommerce
  sends an unsigned ping, ``webhook_id=<n>``, which is acknowledged and stores nothing.
* Generic and Zapier catch hooks: a Standard Webhooks signature (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature`` with the hook's ``whsec_`` secret) or, for senders that cannot sign, the secret itself in
  ``X-Hook-Secret``. The body is one flat JSON object (``id`` required; ``type`` purchase or signup; first name,
  city, ...) or a list of them.

Anonymisation happens here, before anything is stored: only a first name (its first word) and a city are kept,
unless the site opted in (``share_details``) to product, link, country and amount too. Surnames, e-mails,
addresses and phone numbers never leave this module. Each event's id is derived from the hook and the source's own
id (the order, the customer), so a vendor's retry is recognised as a duplicate by ingestion.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from northstar.socialproof.schemas.events import EventIn
from northstar.webhooks import service as webhooks

PROVIDERS = ("shopify", "woocommerce", "generic")
TOPICS = {
    "shopify": {"orders/create": "purchase", "customers/create": "signup"},
    "woocommerce": {"order.created": "purchase", "customer.created": "signup"},
}
WOO_PING = re.compile(rb"^webhook_id=\d+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_EVENTS = 100


class InvalidDelivery(ValueError):
    """The body is not what the provider sends (not JSON, no id)."""


@dataclass(frozen=True)
class Parsed:
    """What a verified delivery holds: events to store, or nothing (a ping, a topic this hook does not take)."""

    events: list[EventIn]
    ignored: int = 0


def _hmac_base64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name) or headers.get(name.lower()) or ""


def verified(provider: str, secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the delivery carries a valid signature of ``body`` (or, generic hooks only, the secret)."""
    if provider == "shopify":
        return hmac.compare_digest(_hmac_base64(secret, body), _header(headers, "X-Shopify-Hmac-Sha256"))
    if provider == "woocommerce":
        if WOO_PING.match(body) and not _header(headers, "X-WC-Webhook-Signature"):
            return True  # the ping when a webhook is saved: unsigned, and it stores nothing
        return hmac.compare_digest(_hmac_base64(secret, body), _header(headers, "X-WC-Webhook-Signature"))
    if _header(headers, "webhook-signature"):
        try:
            key = webhooks.secret_bytes(secret)
        except ValueError:
            return False
        return webhooks.verify_signature(key, body, headers)
    given = _header(headers, "X-Hook-Secret")
    return bool(given) and hmac.compare_digest(given.encode(), secret.encode())


def _first_word(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().split()[0][:100]


def _text(value: Any, limit: int) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) and value.strip() else None


def _matching(value: Any, pattern: re.Pattern[str]) -> str | None:
    text = value.strip().upper() if isinstance(value, str) else ""
    return text if pattern.match(text) else None


def _amount(value: Any) -> float | None:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return None
    return amount if 0 <= amount <= 1e12 else None


def _url(value: Any) -> str | None:
    text = _text(value, 2048)
    return text if text and text.startswith(("https://", "http://")) else None


def _event(
    hook_id: uuid.UUID,
    provider: str,
    *,
    source_id: Any,
    event_type: str,
    first_name: Any,
    city: Any,
    extra: Mapping[str, Any],
    occurred_at: Any,
    share_details: bool,
) -> EventIn:
    """One event with only what may reach a popup (see the module's docstring)."""
    if source_id is None or str(source_id).strip() == "":
        raise InvalidDelivery("the delivery has no id")
    fields: dict[str, Any] = {
        "id": uuid.uuid5(hook_id, f"{provider}:{source_id}"),
        "type": event_type,
        "first_name": _first_word(first_name),
        "city": _text(city, 100),
    }
    if share_details:
        fields.update(
            {
                "product": _text(extra.get("product"), 200),
                "product_url": _url(extra.get("product_url")),
                "country": _matching(extra.get("country"), COUNTRY),
                "amount": _amount(extra.get("amount")),
                "currency": _matching(extra.get("currency"), CURRENCY),
            }
        )
    try:
        fields["occurred_at"] = datetime.fromisoformat(str(occurred_at)) if occurred_at else None
    except ValueError:
        fields["occurred_at"] = None
    try:
        return EventIn.model_validate({key: value for key, value in fields.items() if value is not None})
    except ValidationError as exc:
        raise InvalidDelivery(str(exc.errors()[0]["msg"])) from None


def _address(payload: Mapping[str, Any], *names: str) -> Mapping[str, Any]:
    for name in names:
        found = payload.get(name)
        if isinstance(found, Mapping) and (found.get("first_name") or found.get("city")):
            return found
    return {}


def _shopify(hook_id: uuid.UUID, payload: Mapping[str, Any], event_type: str, share: bool) -> EventIn:
    customer = payload.get("customer") if isinstance(payload.get("customer"), Mapping) else {}
    assert isinstance(customer, Mapping)
    if event_type == "signup":  # customers/create: the customer is the payload
        customer = payload
    address = _address(payload, "billing_address", "shipping_address") or _address(customer, "default_address")
    items = payload.get("line_items") or []
    item = items[0] if items and isinstance(items[0], Mapping) else {}
    return _event(
        hook_id,
        "shopify",
        source_id=payload.get("id"),
        event_type=event_type,
        first_name=customer.get("first_name") or address.get("first_name"),
        city=address.get("city"),
        extra={
            "product": item.get("title") or item.get("name"),
            "country": address.get("country_code"),
            "amount": payload.get("total_price"),
            "currency": payload.get("currency"),
        },
        occurred_at=payload.get("created_at"),
        share_details=share,
    )


def _woocommerce(hook_id: uuid.UUID, payload: Mapping[str, Any], event_type: str, share: bool) -> EventIn:
    address = _address(payload, "billing", "shipping")
    items = payload.get("line_items") or []
    item = items[0] if items and isinstance(items[0], Mapping) else {}
    return _event(
        hook_id,
        "woocommerce",
        source_id=payload.get("id"),
        event_type=event_type,
        first_name=payload.get("first_name") or address.get("first_name"),
        city=address.get("city"),
        extra={
            "product": item.get("name"),
            "country": address.get("country"),
            "amount": payload.get("total"),
            "currency": payload.get("currency"),
        },
        occurred_at=payload.get("date_created_gmt") and f"{payload['date_created_gmt']}+00:00",
        share_details=share,
    )


def _generic(hook_id: uuid.UUID, payload: Mapping[str, Any], share: bool) -> EventIn:
    def field(*names: str) -> Any:
        return next((payload[name] for name in names if payload.get(name) not in (None, "")), None)

    event_type = str(field("type", "event") or "purchase").lower()
    if event_type not in ("purchase", "signup"):
        raise InvalidDelivery("type must be purchase or signup")
    return _event(
        hook_id,
        "generic",
        source_id=field("id", "order_id", "orderId"),
        event_type=event_type,
        first_name=field("first_name", "firstName", "name"),
        city=field("city"),
        extra={
            "product": field("product", "product_name", "productName"),
            "product_url": field("product_url", "productUrl"),
            "country": field("country", "country_code", "countryCode"),
            "amount": field("amount", "total"),
            "currency": field("currency"),
        },
        occurred_at=field("occurred_at", "occurredAt", "created_at"),
        share_details=share,
    )


def parse(provider: str, hook_id: uuid.UUID, body: bytes, headers: Mapping[str, str], *, share_details: bool) -> Parsed:
    """The events of a verified delivery (``InvalidDelivery`` when it cannot be read)."""
    if provider == "woocommerce" and WOO_PING.match(body):
        return Parsed([], ignored=1)
    event_type = "purchase"
    if provider in TOPICS:
        topic = _header(headers, "X-Shopify-Topic" if provider == "shopify" else "X-WC-Webhook-Topic")
        if topic not in TOPICS[provider]:
            return Parsed([], ignored=1)  # a topic this hook does not turn into events: acknowledged, not retried
        event_type = TOPICS[provider][topic]
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidDelivery("the body is not JSON") from None
    if provider == "generic":
        items = payload if isinstance(payload, list) else [payload]
        if not items or len(items) > MAX_EVENTS or not all(isinstance(item, Mapping) for item in items):
            raise InvalidDelivery(f"the body is an object or a list of 1 to {MAX_EVENTS} objects")
        return Parsed([_generic(hook_id, item, share_details) for item in items])
    if not isinstance(payload, Mapping):
        raise InvalidDelivery("the body is not a JSON object")
    convert = _shopify if provider == "shopify" else _woocommerce
    return Parsed([convert(hook_id, payload, event_type, share_details)])
