"""Shopify: a store's orders (with their refunds) and customers, through the GraphQL Admin API.

Each stream is a walk over ``orders`` or ``customers`` sorted by ``UPDATED_AT``, ``first: 250`` a page with
``after: endCursor``; a walk that is interrupted resumes from the last stored page's cursor. The first walk reads
everything, later ones only what changed (``query: "updated_at:>'…'"``), starting a few minutes before the newest
change already seen, so a change the search index lists late is still found; records seen then and not changed
since are not stored again. Shopify limits a store's app by query cost, not by requests: every answer reports the
cost bucket (``extensions.cost.throttleStatus``), requests wait until the bucket holds their cost, and a
``THROTTLED`` answer (HTTP 200) is retried once it does. A page whose cost exceeds the single-query maximum
(``MAX_COST_EXCEEDED``) is asked again with a proportionally smaller ``first``.

``normalise`` maps orders to ``CommerceOrder`` and their refunds to ``CommerceRefund``, shop-currency amounts to
integer minor units exactly. Webhooks (``X-Shopify-Hmac-Sha256``: base64 HMAC-SHA256 of the raw body with the app's
client secret; it signs no time, so a replayed delivery is caught by its ``X-Shopify-Webhook-Id``) name their
order, which is fetched as it is now (deliveries come in any order), and keyed by the same global id as in a sync,
so a webhook and a sync update the same row; customers come REST-shaped and are mapped to the GraphQL shape.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import Field, field_validator

from northstar.core.outbound import OutboundPolicy
from northstar.integrations.connectors.base import (
    Connector,
    ConnectorSettings,
    CredentialsRejected,
    Page,
    RateLimit,
    Signature,
    VendorClient,
    VendorError,
    validated,
)
from northstar.metrics.inputs import CommerceOrder, CommerceRefund, SourceBatch, minor_units

API_VERSION = "2024-07"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
PAGE_SIZE = 250
MAX_QUERY_COST = 1000  # Shopify's single-query limit, when its error does not say
OVERLAP = dt.timedelta(minutes=5)
THROTTLE_ATTEMPTS = 8
MAX_WAIT_SECONDS = 60.0
SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
SHOP_MONEY = "shopMoney { amount currencyCode }"
ORDER_FIELDS = f"""id legacyResourceId createdAt updatedAt processedAt cancelledAt test currencyCode
      displayFinancialStatus taxesIncluded
      customer {{ id }}
      subtotalPriceSet {{ {SHOP_MONEY} }}
      totalShippingPriceSet {{ {SHOP_MONEY} }}
      totalTaxSet {{ {SHOP_MONEY} }}
      totalPriceSet {{ {SHOP_MONEY} }}
      shippingLine {{ taxLines {{ priceSet {{ {SHOP_MONEY} }} }} }}
      refunds {{ id createdAt totalRefundedSet {{ {SHOP_MONEY} }} }}"""
CUSTOMER_FIELDS = "id legacyResourceId createdAt updatedAt numberOfOrders amountSpent { amount currencyCode }"
SHOP_QUERY = "query Shop { shop { name currencyCode } }"
ORDER_QUERY = f"query Order($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update", "customers/enable", "customers/disable"})


def _list_query(root: str, name: str, fields: str) -> str:
    return (
        f"query {name}($first: Int!, $after: String, $query: String) {{\n"
        f"  {root}(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {{\n"
        f"    nodes {{ {fields} }}\n    pageInfo {{ hasNextPage endCursor }}\n  }}\n}}"
    )


LIST_QUERIES = {
    "orders": _list_query("orders", "Orders", ORDER_FIELDS),
    "customers": _list_query("customers", "Customers", CUSTOMER_FIELDS),
}


def shop_domain(value: Any) -> str | None:
    """The store's ``*.myshopify.com`` domain from the ``shop`` setting (a URL is accepted), or None."""
    if not isinstance(value, str):
        return None
    domain = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    return domain if SHOP_DOMAIN.match(domain) else None


class Settings(ConnectorSettings):
    """The integration's ``config``, checked before any request."""

    shop: str = Field(max_length=255, description="the store's myshopify.com domain, like acme.myshopify.com")
    requests_per_second: float = Field(10.0, gt=0, le=100)

    @field_validator("shop")
    @classmethod
    def _myshopify(cls, value: str) -> str:
        domain = shop_domain(value)
        if domain is None:
            raise ValueError("the store's myshopify.com domain, like acme.myshopify.com")
        return domain


class QueryTooCostly(VendorError):
    """The query's requested cost is above what Shopify runs in one query."""

    def __init__(self, cost: float, limit: float) -> None:
        super().__init__(f"Shopify refused a query costing {cost:g} (at most {limit:g} per query)")
        self.cost = cost
        self.limit = limit


@dataclass
class CostBucket:
    """What the last answer said of the store's cost bucket, and how it refills since."""

    available: float = 0.0
    maximum: float = 0.0
    restore_rate: float = 0.0
    noted_at: float = 0.0

    def note(self, status: Any) -> None:
        if isinstance(status, dict) and all(
            isinstance(status.get(key), int | float)
            for key in ("currentlyAvailable", "maximumAvailable", "restoreRate")
        ):
            self.available, self.maximum = float(status["currentlyAvailable"]), float(status["maximumAvailable"])
            self.restore_rate, self.noted_at = float(status["restoreRate"]), time.monotonic()

    def seconds_until(self, cost: float) -> float:
        """How long until the bucket holds ``cost`` (0 when nothing is known of it)."""
        if self.restore_rate <= 0:
            return 0.0
        now = min(self.maximum, self.available + (time.monotonic() - self.noted_at) * self.restore_rate)
        return min(max(0.0, (min(cost, self.maximum) - now) / self.restore_rate), MAX_WAIT_SECONDS)


def _instant(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise VendorError("Shopify sent a record without a valid timestamp")
    try:
        found = dt.datetime.fromisoformat(value)
    except ValueError:
        raise VendorError("Shopify sent a record without a valid timestamp") from None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Walk:
    """Where a stream's walk over ``updated_at`` stands.

    ``since`` bounds the walk from below and ``skip`` holds the records after it that are already stored (id →
    updatedAt); mid-walk, ``after`` is the last stored page's end cursor, ``newest`` the latest change stored so far and
    ``recent`` the records changed within ``OVERLAP`` of it, which become the next walk's ``skip``.
    """

    since: str | None = None
    skip: dict[str, str] = field(default_factory=dict)
    after: str | None = None
    newest: str | None = None
    recent: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, cursor: Mapping[str, Any] | None) -> Walk:
        cursor = cursor or {}
        return cls(
            since=cursor.get("since"),
            skip=dict(cursor.get("skip") or {}),
            after=cursor.get("after"),
            newest=cursor.get("newest"),
            recent=dict(cursor.get("recent") or {}),
        )

    def search(self) -> str | None:
        return f"updated_at:>'{self.since}'" if self.since else None

    def take(self, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The page's records not stored before, noting the newest change."""
        fresh = [node for node in nodes if self.skip.get(node["id"]) != node["updatedAt"]]
        for node in nodes:
            if self.newest is None or _instant(node["updatedAt"]) > _instant(self.newest):
                self.newest = node["updatedAt"]
            self.recent[node["id"]] = node["updatedAt"]
        if self.newest is not None:
            floor = _instant(self.newest) - OVERLAP
            self.recent = {key: value for key, value in self.recent.items() if _instant(value) >= floor}
        return fresh

    def cursor(self) -> dict[str, Any]:
        """The cursor after a page: the walk's position, or when it is over (no ``after``), where the next starts."""
        if self.after is not None:
            return {
                "since": self.since,
                "skip": self.skip,
                "after": self.after,
                "newest": self.newest,
                "recent": self.recent,
            }
        if self.newest is None:
            return {"since": self.since, "skip": self.skip}
        return {"since": _iso(_instant(self.newest) - OVERLAP), "skip": self.recent}


class ShopifyConnector(Connector):
    provider = "shopify"
    title = "Shopify"
    streams = ("orders", "customers")
    credential_fields = ("access_token", "webhook_secret")
    signature_header = "x-shopify-hmac-sha256"
    settings_model = Settings

    def __init__(self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.bucket = CostBucket()
        self.costs: dict[tuple[str, int], float] = {}
        self.page_sizes: dict[str, int] = {}

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> ShopifyConnector:
        settings = validated(Settings, config)
        client = VendorClient(
            base_url=settings.base_url or f"https://{settings.shop}",
            policy=policy,
            headers={"X-Shopify-Access-Token": credentials["access_token"]},
            rate=RateLimit(settings.requests_per_second, burst=2),
        )
        return cls(credentials=credentials, config=config, client=client)

    async def test(self) -> None:
        await self.graphql(SHOP_QUERY, {})

    async def graphql(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The ``data`` of a query, sent once the cost bucket can pay for it and again while Shopify throttles."""
        key = (query, int(variables.get("first") or 0))
        for _ in range(THROTTLE_ATTEMPTS):
            await asyncio.sleep(self.bucket.seconds_until(self.costs.get(key, 0.0)))
            answer = await self.client.request_json(
                "POST", GRAPHQL_PATH, json={"query": query, "variables": dict(variables)}
            )
            if not isinstance(answer, dict):
                raise VendorError("Shopify sent an answer that is not a GraphQL response")
            cost = (answer.get("extensions") or {}).get("cost")
            if isinstance(cost, dict):
                self.bucket.note(cost.get("throttleStatus"))
                if isinstance(cost.get("requestedQueryCost"), int | float):
                    self.costs[key] = float(cost["requestedQueryCost"])
            errors = answer.get("errors")
            if not errors:
                data = answer.get("data")
                if not isinstance(data, dict):
                    raise VendorError("Shopify sent a GraphQL answer without data")
                return data
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                if self.bucket.restore_rate <= 0:
                    await asyncio.sleep(1.0)
                continue
            if "ACCESS_DENIED" in codes:
                raise CredentialsRejected(f"the access token lacks a scope: {_error_message(errors)}")
            if "MAX_COST_EXCEEDED" in codes:
                raise _too_costly(errors, self.costs.get(key))
            raise VendorError(f"Shopify refused the query: {_error_message(errors)}")
        raise VendorError(f"Shopify kept throttling the sync ({THROTTLE_ATTEMPTS} attempts)")

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        walk = Walk.of(cursor)
        while True:
            connection = await self._connection(stream, walk)
            records = walk.take(connection["nodes"])
            more = bool(connection["pageInfo"]["hasNextPage"])
            walk.after = connection["pageInfo"]["endCursor"] if more else None
            yield Page(stream, records, walk.cursor())
            if not more:
                return

    async def _connection(self, stream: str, walk: Walk) -> dict[str, Any]:
        """One page of the walk, asked again with a smaller ``first`` while its cost is above Shopify's maximum."""
        while True:
            first = self.page_sizes.get(stream, PAGE_SIZE)
            try:
                data = await self.graphql(
                    LIST_QUERIES[stream], {"first": first, "after": walk.after, "query": walk.search()}
                )
            except QueryTooCostly as exc:
                smaller = int(first * exc.limit // exc.cost) if exc.cost > 0 else 0
                if not 0 < smaller < first:
                    smaller = first // 2
                if smaller < 1:
                    raise
                self.page_sizes[stream] = smaller
                continue
            return _connection_of(data, stream)

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        return normalise(stream, records)

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        return Signature.VALID if verify_signature(body, signature, secret) else Signature.INVALID

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        event_id, topic = headers.get("x-shopify-webhook-id"), headers.get("x-shopify-topic")
        if not event_id or not topic or len(event_id) > 255 or len(topic) > 120:
            raise VendorError("a Shopify delivery needs X-Shopify-Webhook-Id and X-Shopify-Topic headers")
        return str(event_id), str(topic)

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        if not isinstance(payload, Mapping) or not payload.get("id"):
            return None
        if topic in CUSTOMER_TOPICS:
            return "customers", customer_from_webhook(payload)
        # an order as it is now, not as the delivery carried it: deliveries come in any order, and a late
        # orders/updated would otherwise put back an older state; a refund arrives with its order's id
        order_id = (
            payload["id"] if topic in ORDER_TOPICS else payload.get("order_id") if topic == "refunds/create" else None
        )
        if not order_id:
            return None
        data = await self.graphql(ORDER_QUERY, {"id": _gid("Order", order_id)})
        order = data.get("order")
        if order is None:
            return None
        if not _is_node(order):
            raise VendorError("Shopify sent an order without an id or updatedAt")
        return "orders", order


def _error_codes(errors: Any) -> set[str]:
    if not isinstance(errors, list):
        return set()
    return {
        str(error["extensions"].get("code"))
        for error in errors
        if isinstance(error, dict) and isinstance(error.get("extensions"), dict)
    }


def _error_message(errors: Any) -> str:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("message") or "no message")[:300]
    return str(errors)[:300]


def _too_costly(errors: list[Any], requested: float | None) -> QueryTooCostly:
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and isinstance(extensions.get("cost"), int | float):
            limit = extensions.get("maxCost")
            return QueryTooCostly(
                float(extensions["cost"]), float(limit) if isinstance(limit, int | float) else MAX_QUERY_COST
            )
    return QueryTooCostly(requested or 0.0, MAX_QUERY_COST)


def _is_node(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("id"), str) and isinstance(node.get("updatedAt"), str)


def _connection_of(data: dict[str, Any], stream: str) -> dict[str, Any]:
    connection = data.get(stream)
    if (
        not isinstance(connection, dict)
        or not isinstance(connection.get("nodes"), list)
        or not isinstance(connection.get("pageInfo"), dict)
    ):
        raise VendorError(f"Shopify sent a {stream} page that is not a list")
    if not all(_is_node(node) for node in connection["nodes"]):
        raise VendorError(f"Shopify sent {stream} without ids or updatedAt")
    info = connection["pageInfo"]
    if info.get("hasNextPage") and not isinstance(info.get("endCursor"), str):
        raise VendorError(f"Shopify sent a {stream} page without its end cursor")
    return connection


def verify_signature(body: bytes, signature: str, secret: str) -> bool:
    """Shopify's webhook signature: the base64 HMAC-SHA256 of the raw body, keyed with the app's client secret."""
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


def cents(amount: Any, currency: str) -> int:
    """A decimal amount string in integer minor units of ``currency``: exact, rounded half up only past them."""
    try:
        value = Decimal(str(amount)).scaleb(minor_units(currency))
    except InvalidOperation:
        raise VendorError("Shopify sent an amount that is not a number") from None
    if not value.is_finite():
        raise VendorError("Shopify sent an amount that is not a number")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _money(bag: Any, currency: str) -> int:
    """A ``MoneyBag``'s shop-currency amount in minor units (0 when the bag is null)."""
    if bag is None:
        return 0
    money = bag.get("shopMoney") if isinstance(bag, dict) else None
    if not isinstance(money, dict):
        raise VendorError("Shopify sent an amount without shopMoney")
    return cents(money.get("amount"), str(money.get("currencyCode") or currency))


def order_of(node: dict[str, Any]) -> tuple[CommerceOrder, list[CommerceRefund]]:
    """An order node as a ``CommerceOrder`` (subtotal after discounts, tax and shipping out) and its refunds."""
    currency = node.get("currencyCode")
    if not isinstance(currency, str):
        raise VendorError("Shopify sent an order without its currency")
    tax = _money(node.get("totalTaxSet"), currency)
    subtotal, shipping = (
        _money(node.get("subtotalPriceSet"), currency),
        _money(node.get("totalShippingPriceSet"), currency),
    )
    if node.get("taxesIncluded"):  # prices include their tax: take it out of the items and of the shipping
        shipping_tax = sum(
            _money(line.get("priceSet"), currency) for line in (node.get("shippingLine") or {}).get("taxLines") or []
        )
        subtotal, shipping = subtotal - (tax - shipping_tax), shipping - shipping_tax
    customer = node.get("customer")
    order = CommerceOrder(
        external_id=node["id"],
        customer=str(customer["id"]) if isinstance(customer, dict) else None,
        placed_at=_instant(node.get("processedAt") or node.get("createdAt")),
        currency=currency.upper(),
        subtotal=subtotal,
        shipping=shipping,
        tax=tax,
        total=_money(node.get("totalPriceSet"), currency),
        financial_status=str(node.get("displayFinancialStatus") or "unknown").lower(),
        cancelled_at=_instant(node["cancelledAt"]) if node.get("cancelledAt") else None,
        test=bool(node.get("test")),
    )
    refunds = [
        CommerceRefund(
            external_id=str(refund["id"]),
            order=node["id"],
            refunded_at=_instant(refund.get("createdAt")),
            currency=currency.upper(),
            amount=_money(refund.get("totalRefundedSet"), currency),
        )
        for refund in node.get("refunds") or []
        if isinstance(refund, dict) and refund.get("id")
    ]
    return order, refunds


def normalise(stream: str, records: list[dict[str, Any]]) -> SourceBatch:
    """The commerce data in these records (customers carry none: repeat purchases are read from orders)."""
    batch = SourceBatch()
    if stream == "orders":
        for record in records:
            order, refunds = order_of(record)
            batch.orders.append(order)
            batch.refunds.extend(refunds)
    return batch


def _gid(kind: str, legacy_id: Any) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def customer_from_webhook(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook's REST-shaped customer as the customer node the GraphQL API gives."""
    spent = payload.get("total_spent")
    return {
        "id": str(payload.get("admin_graphql_api_id") or _gid("Customer", payload["id"])),
        "legacyResourceId": str(payload["id"]),
        "createdAt": payload.get("created_at"),
        "updatedAt": payload.get("updated_at") or payload.get("created_at"),
        "numberOfOrders": str(payload.get("orders_count") or 0),
        "amountSpent": {"amount": str(spent), "currencyCode": payload.get("currency")} if spent else None,
    }
