"""A Shopify store's GraphQL Admin API (2024-07): the shop, orders with their refunds, customers, and webhooks.

``POST /admin/api/2024-07/graphql.json`` with ``X-Shopify-Access-Token``. The query is parsed for what Shopify acts
on: the root field, its arguments (literals or ``$variables``) and the fields selected, which are all that is
answered (a field the type does not have is an ``undefinedField`` error). Connections take ``first`` (at most 250),
``after`` (an opaque cursor over the sort order), ``sortKey`` (``UPDATED_AT`` or ``ID``) and ``query`` in Shopify's
search syntax (``updated_at`` comparisons), and answer ``nodes`` and ``pageInfo { hasNextPage endCursor }``. Orders
need the token's ``read_orders`` scope and customers ``read_customers`` (``ACCESS_DENIED`` otherwise).

Every answer has ``extensions.cost``: the requested cost (an object costs 1, scalars nothing, a connection 2 plus
``first`` times its node), the actual cost (for the nodes returned) and the ``throttleStatus`` of a leaky bucket of
``maximum_available`` points refilled at ``restore_rate`` a second (Standard plan: 2000 and 100). A query costing
more than 1000 is ``MAX_COST_EXCEEDED``; one costing more than the bucket holds is ``THROTTLED`` — both with HTTP 200,
as Shopify answers them. ``rest_order`` and ``rest_refund`` give objects the way webhooks carry them (REST shape,
numeric ids, timestamps in the shop's time zone), and ``webhook_headers`` signs a delivery.

The app's install (Shopify's OAuth): the grant page at ``/admin/oauth/authorize`` ("Install app"), whose redirect back
carries ``code``, ``host``, ``shop``, ``state`` and ``timestamp`` signed with the app's client secret (``hmac``: hex
HMAC-SHA256 of the other parameters, sorted, ``key=value`` joined by ``&``); ``POST /admin/oauth/access_token``
(``client_id``, ``client_secret``, ``code``, as JSON or a form) answering an offline token and its scopes, or
``{"error", "error_description"}``; and ``DELETE /admin/api_permissions/current.json``, the app uninstalling itself,
after which its token is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from northstar.demo.vendor_api import ConsentScreen, FakeVendor, FaultKind, beside

API_VERSION = "2024-07"
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"
MAX_FIRST = 250
MAX_QUERY_COST = 1000
Selection = dict[str, Any]  # field name -> its own selection, or None for a scalar

_TOKENS = re.compile(
    r'(?P<skip>[\s,]+|#[^\n]*)|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)'
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)|(?P<punct>[{}():\[\]!=$@]|\.\.\.)"
)


class GraphQLError(Exception):
    def __init__(self, message: str, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = extensions


@dataclass(frozen=True)
class Call:
    """One parsed query: its root field and argument values."""

    root: str
    arguments: dict[str, Any]


class _Parser:
    """Just enough of GraphQL: one operation, one root field, arguments, nested selections."""

    def __init__(self, query: str, variables: dict[str, Any]) -> None:
        self.tokens: list[str] = []
        position = 0
        while position < len(query):
            match = _TOKENS.match(query, position)
            if match is None:
                raise GraphQLError(f'Parse error on "{query[position]}"', "parseError")
            if match.lastgroup != "skip":
                self.tokens.append(match.group())
            position = match.end()
        self.variables = variables
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise GraphQLError(
                f"Parse error: expected {expected or 'more'}, got {token or 'end of query'}", "parseError"
            )
        self.at += 1
        return token

    def operation(self) -> tuple[str, dict[str, Any], Selection | None]:
        if self.peek() == "query":
            self.take()
            if self.peek() not in ("(", "{"):
                self.take()
            if self.peek() == "(":
                depth = 0
                while True:
                    token = self.take()
                    depth += {"(": 1, ")": -1}.get(token, 0)
                    if depth == 0:
                        break
        self.take("{")
        root = self.take()
        arguments = self.arguments()
        selection = self.selection() if self.peek() == "{" else None
        self.take("}")
        if self.peek() is not None:
            raise GraphQLError("Only one root field is supported", "parseError")
        return root, arguments, selection

    def arguments(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.peek() != "(":
            return found
        self.take("(")
        while self.peek() != ")":
            name = self.take()
            self.take(":")
            found[name] = self.value()
        self.take(")")
        return found

    def value(self) -> Any:
        token = self.take()
        if token == "$":
            return self.variables.get(self.take())
        if token.startswith('"'):
            return json.loads(token)
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        return {"true": True, "false": False, "null": None}.get(token, token)

    def selection(self) -> Selection:
        self.take("{")
        fields: Selection = {}
        while self.peek() != "}":
            name = self.take()
            self.arguments()
            fields[name] = self.selection() if self.peek() == "{" else None
        self.take("}")
        return fields


def objects(selection: Selection | None) -> int:
    """What a selected object costs: 1, and the objects selected inside it."""
    if selection is None:
        return 0
    return 1 + sum(objects(inner) for inner in selection.values())


def project(value: Any, selection: Selection | None, type_name: str) -> Any:
    """The selected fields of a stored value (a list item by item); unknown fields are an error, as in Shopify."""
    if selection is None or value is None:
        return value
    if isinstance(value, list):
        return [project(item, selection, type_name) for item in value]
    answer = {}
    for name, inner in selection.items():
        if name == "__typename":
            answer[name] = type_name
            continue
        if name not in value:
            raise GraphQLError(
                f"Field '{name}' doesn't exist on type '{type_name}'",
                "undefinedField",
                typeName=type_name,
                fieldName=name,
            )
        answer[name] = project(value[name], inner, name[0].upper() + name[1:])
    return answer


def money(amount: Decimal | str, currency: str) -> dict[str, Any]:
    """A ``MoneyBag`` of a single-currency store (shop and presentment money alike)."""
    text = f"{Decimal(amount):.2f}" if currency not in ("JPY", "KRW") else f"{Decimal(amount):.0f}"
    return {
        "shopMoney": {"amount": text, "currencyCode": currency},
        "presentmentMoney": {"amount": text, "currencyCode": currency},
    }


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _amount(bag: dict[str, Any] | None) -> Decimal:
    return Decimal(bag["shopMoney"]["amount"]) if bag else Decimal(0)


def _rest_set(bag: dict[str, Any] | None) -> dict[str, Any] | None:
    if bag is None:
        return None
    return {
        "shop_money": {"amount": bag["shopMoney"]["amount"], "currency_code": bag["shopMoney"]["currencyCode"]},
        "presentment_money": {
            "amount": bag["presentmentMoney"]["amount"],
            "currency_code": bag["presentmentMoney"]["currencyCode"],
        },
    }


def sign(body: bytes, secret: str) -> str:
    """``X-Shopify-Hmac-Sha256``: the base64 HMAC-SHA256 of the raw body with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass
class ShopifyStore:
    """One store and the API its app sees."""

    token: str
    domain: str = "acme.myshopify.com"
    currency: str = "USD"
    timezone: str = "America/New_York"
    maximum_available: float = 2000.0
    restore_rate: float = 100.0
    scopes: set[str] = field(default_factory=lambda: {"read_orders", "read_all_orders", "read_customers"})
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    throttled: int = 0
    refused_as_too_costly: int = 0
    pages_served: int = 0
    _available: float = 0.0
    _refilled: float = 0.0
    _fault_after: tuple[int, FaultKind, int] | None = None
    _drain_before: set[str] = field(default_factory=set)
    _ids: int = 1000
    client_id: str = field(default_factory=lambda: secrets.token_hex(16))
    client_secret: str = field(default_factory=lambda: f"shpss_{secrets.token_hex(16)}")
    uninstalls: int = 0
    vendor: FakeVendor = field(init=False)
    consent: ConsentScreen = field(init=False)

    def __post_init__(self) -> None:
        self._available, self._refilled = self.maximum_available, time.monotonic()
        self.vendor = FakeVendor(
            routes=[
                Route(GRAPHQL_PATH, self._graphql, methods=["POST"]),
                Route("/admin/api_permissions/current.json", self._uninstall, methods=["DELETE"]),
            ],
            authorised=lambda request: request.headers.get("x-shopify-access-token") == self.token,
        )
        self.consent = ConsentScreen("Shopify", self.client_id, allow="Install app", deny="Cancel", signed=self.signed)

    @property
    def app(self) -> Any:
        return beside(
            self.vendor.app,
            [
                self.consent.route("/admin/oauth/authorize"),
                Route("/admin/oauth/access_token", self._access_token, methods=["POST"]),
            ],
        )

    def signed(self, back: dict[str, str]) -> dict[str, str]:
        """The install's redirect back as Shopify sends it: the store, when, and the HMAC of all of it."""
        host = base64.b64encode(f"admin.shopify.com/store/{self.domain.split('.')[0]}".encode()).decode()
        back = {**back, "shop": self.domain, "host": host, "timestamp": str(int(time.time()))}
        message = "&".join(f"{key}={value}" for key, value in sorted(back.items()))
        return {**back, "hmac": hmac.new(self.client_secret.encode(), message.encode(), hashlib.sha256).hexdigest()}

    async def _access_token(self, request: Request) -> JSONResponse:
        if request.headers.get("content-type", "").startswith("application/json"):
            body = {key: str(value) for key, value in (await request.json()).items()}
        else:
            body = {key: str(value) for key, value in (await request.form()).items()}
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Client credentials are invalid"}, status_code=400
            )
        allowed = self.consent.redeem(body.get("code", ""), client_id=self.client_id)
        if allowed is None:
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "The authorization code was not found or was already used",
                },
                status_code=400,
            )
        self.token, self.scopes = f"shpat_{uuid.uuid4().hex}", set(allowed.scopes)
        return JSONResponse({"access_token": self.token, "scope": ",".join(sorted(self.scopes))})

    async def _uninstall(self, request: Request) -> JSONResponse:
        self.uninstalls += 1
        self.revoke()
        return JSONResponse({})

    # what tests do to the store

    def revoke(self) -> None:
        """The merchant uninstalled the app: its token stops working."""
        self.token = f"shpat_{uuid.uuid4().hex}"

    def drain_before_next(self, root: str) -> None:
        """Another client of the same app spends the bucket just before the next query on ``root``."""
        self._drain_before.add(root)

    def fail_after_pages(self, pages: int, kind: FaultKind, *, count: int) -> None:
        """Once ``pages`` connection pages are answered, the next ``count`` requests get ``kind``."""
        self._fault_after = (pages, kind, count)

    def calls_of(self, root: str) -> list[Call]:
        return [call for call in self.calls if call.root == root]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def add_customer(self, *, created_at: str, updated_at: str | None = None) -> str:
        legacy = self._next_id()
        gid = f"gid://shopify/Customer/{legacy}"
        self.customers[gid] = {
            "id": gid,
            "legacyResourceId": str(legacy),
            "createdAt": created_at,
            "updatedAt": updated_at or created_at,
            "numberOfOrders": "0",
            "amountSpent": {"amount": "0.00", "currencyCode": self.currency},
        }
        return gid

    def add_order(
        self,
        *,
        processed_at: str,
        subtotal: str,
        customer: str | None = None,
        shipping: str = "0",
        tax: str = "0",
        shipping_tax: str = "0",
        taxes_included: bool = False,
        test: bool = False,
        cancelled_at: str | None = None,
        updated_at: str | None = None,
    ) -> str:
        """An order of line items worth ``subtotal`` after discounts (tax included when ``taxes_included``)."""
        legacy = self._next_id()
        gid = f"gid://shopify/Order/{legacy}"
        total = Decimal(subtotal) + Decimal(shipping) + (Decimal(0) if taxes_included else Decimal(tax))
        self.orders[gid] = {
            "id": gid,
            "legacyResourceId": str(legacy),
            "name": f"#{legacy}",
            "createdAt": processed_at,
            "updatedAt": updated_at or cancelled_at or processed_at,
            "processedAt": processed_at,
            "cancelledAt": cancelled_at,
            "test": test,
            "currencyCode": self.currency,
            "displayFinancialStatus": "VOIDED" if cancelled_at else "PAID",
            "taxesIncluded": taxes_included,
            "customer": {"id": customer} if customer else None,
            "subtotalPriceSet": money(subtotal, self.currency),
            "totalShippingPriceSet": money(shipping, self.currency),
            "totalTaxSet": money(tax, self.currency),
            "totalPriceSet": money(total, self.currency),
            "shippingLine": {
                "title": "Standard",
                "taxLines": [{"title": "VAT", "rate": 0.2, "priceSet": money(shipping_tax, self.currency)}]
                if Decimal(shipping_tax)
                else [],
            }
            if Decimal(shipping)
            else None,
            "refunds": [],
        }
        if customer:
            self.customers[customer]["numberOfOrders"] = str(int(self.customers[customer]["numberOfOrders"]) + 1)
        return gid

    def add_refund(self, order: str, *, amount: str, created_at: str) -> str:
        """Money given back on an order; the order's ``updatedAt`` moves to the refund's time."""
        legacy = self._next_id()
        gid = f"gid://shopify/Refund/{legacy}"
        node = self.orders[order]
        node["refunds"].append(
            {
                "id": gid,
                "legacyResourceId": str(legacy),
                "createdAt": created_at,
                "updatedAt": created_at,
                "note": None,
                "totalRefundedSet": money(amount, self.currency),
            }
        )
        refunded = sum((_amount(refund["totalRefundedSet"]) for refund in node["refunds"]), Decimal(0))
        node["displayFinancialStatus"] = (
            "REFUNDED" if refunded >= _amount(node["totalPriceSet"]) else "PARTIALLY_REFUNDED"
        )
        node["updatedAt"] = created_at
        return gid

    def edit_order(self, order: str, *, updated_at: str, subtotal: str) -> None:
        node = self.orders[order]
        difference = Decimal(subtotal) - _amount(node["subtotalPriceSet"])
        node["subtotalPriceSet"] = money(subtotal, self.currency)
        node["totalPriceSet"] = money(_amount(node["totalPriceSet"]) + difference, self.currency)
        node["updatedAt"] = updated_at

    # webhooks

    def _local(self, value: str | None) -> str | None:
        if value is None:
            return None
        return _instant(value).astimezone(zoneinfo.ZoneInfo(self.timezone)).isoformat()

    def rest_order(self, order: str) -> dict[str, Any]:
        """The order as an ``orders/*`` webhook carries it."""
        node = self.orders[order]
        customer = self.customers.get((node["customer"] or {}).get("id", ""))
        shipping = node["shippingLine"]
        return {
            "id": int(node["legacyResourceId"]),
            "admin_graphql_api_id": node["id"],
            "name": node["name"],
            "created_at": self._local(node["createdAt"]),
            "updated_at": self._local(node["updatedAt"]),
            "processed_at": self._local(node["processedAt"]),
            "cancelled_at": self._local(node["cancelledAt"]),
            "test": node["test"],
            "currency": node["currencyCode"],
            "presentment_currency": node["currencyCode"],
            "financial_status": node["displayFinancialStatus"].lower(),
            "taxes_included": node["taxesIncluded"],
            "subtotal_price": node["subtotalPriceSet"]["shopMoney"]["amount"],
            "subtotal_price_set": _rest_set(node["subtotalPriceSet"]),
            "total_shipping_price_set": _rest_set(node["totalShippingPriceSet"]),
            "total_tax": node["totalTaxSet"]["shopMoney"]["amount"],
            "total_tax_set": _rest_set(node["totalTaxSet"]),
            "total_price": node["totalPriceSet"]["shopMoney"]["amount"],
            "total_price_set": _rest_set(node["totalPriceSet"]),
            "shipping_lines": [
                {
                    "title": shipping["title"],
                    "price_set": _rest_set(node["totalShippingPriceSet"]),
                    "tax_lines": [
                        {
                            "title": tax["title"],
                            "rate": tax["rate"],
                            "price": tax["priceSet"]["shopMoney"]["amount"],
                            "price_set": _rest_set(tax["priceSet"]),
                        }
                        for tax in shipping["taxLines"]
                    ],
                }
            ]
            if shipping
            else [],
            "customer": {
                "id": int(customer["legacyResourceId"]),
                "admin_graphql_api_id": customer["id"],
                "created_at": self._local(customer["createdAt"]),
            }
            if customer
            else None,
            "line_items": [],
            "refunds": [self.rest_refund(refund["id"]) for refund in node["refunds"]],
        }

    def rest_refund(self, refund: str) -> dict[str, Any]:
        """The refund as a ``refunds/create`` webhook carries it."""
        order, found = next(
            (order, item) for order in self.orders.values() for item in order["refunds"] if item["id"] == refund
        )
        amount = found["totalRefundedSet"]["shopMoney"]["amount"]
        return {
            "id": int(found["legacyResourceId"]),
            "admin_graphql_api_id": found["id"],
            "order_id": int(order["legacyResourceId"]),
            "created_at": self._local(found["createdAt"]),
            "processed_at": self._local(found["createdAt"]),
            "note": found["note"],
            "restock": False,
            "refund_line_items": [],
            "order_adjustments": [],
            "transactions": [
                {
                    "id": self._next_id(),
                    "kind": "refund",
                    "status": "success",
                    "amount": amount,
                    "currency": order["currencyCode"],
                    "gateway": "bogus",
                }
            ],
        }

    def webhook_headers(self, body: bytes, *, topic: str, secret: str, webhook_id: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Shop-Domain": self.domain,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": dt.datetime.now(dt.UTC).isoformat(),
        }

    # the API

    def _throttle_status(self) -> dict[str, Any]:
        now = time.monotonic()
        self._available = min(self.maximum_available, self._available + (now - self._refilled) * self.restore_rate)
        self._refilled = now
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": int(self._available),
            "restoreRate": self.restore_rate,
        }

    async def _graphql(self, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
            query, variables = body["query"], body.get("variables") or {}
            if not isinstance(query, str) or not isinstance(variables, dict):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": {"query": "Required parameter missing or invalid"}}, status_code=400)
        try:
            root, arguments, selection = _Parser(query, variables).operation()
            self.calls.append(Call(root, arguments))
            requested, answer = self._resolve(root, arguments, selection)
        except GraphQLError as exc:
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": str(exc),
                            "locations": [{"line": 1, "column": 1}],
                            "extensions": {"code": exc.code, **exc.extensions},
                        }
                    ],
                    "data": None,
                }
            )
        if requested > MAX_QUERY_COST:
            self.refused_as_too_costly += 1
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": (
                                f"Query cost is {requested}, which exceeds the single query max cost limit"
                                f" ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for"
                                " more information on how the cost of a query is calculated.\n\nTo query larger"
                                " amounts of data with fewer limits, bulk operations should be used instead."
                            ),
                            "extensions": {
                                "code": "MAX_COST_EXCEEDED",
                                "cost": requested,
                                "maxCost": MAX_QUERY_COST,
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ]
                }
            )
        if root in self._drain_before:
            self._drain_before.discard(root)
            self._available, self._refilled = 0.0, time.monotonic()
        status = self._throttle_status()
        if requested > self._available:
            self.throttled += 1
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": {
                        "cost": {"requestedQueryCost": requested, "actualQueryCost": None, "throttleStatus": status}
                    },
                }
            )
        data, actual = answer
        self._available -= actual
        if isinstance(data.get(root), dict) and "pageInfo" in data[root]:
            self._count_page()
        return JSONResponse(
            {
                "data": data,
                "extensions": {
                    "cost": {
                        "requestedQueryCost": requested,
                        "actualQueryCost": actual,
                        "throttleStatus": self._throttle_status(),
                    }
                },
            }
        )

    def _count_page(self) -> None:
        self.pages_served += 1
        if self._fault_after is not None and self.pages_served == self._fault_after[0]:
            _, kind, count = self._fault_after
            self._fault_after = None
            self.vendor.fail_next(kind, path_prefix=GRAPHQL_PATH, count=count)

    def _resolve(
        self, root: str, arguments: dict[str, Any], selection: Selection | None
    ) -> tuple[int, tuple[dict[str, Any], int]]:
        """The query's requested cost, and its data with the actual cost."""
        if root == "shop":
            shop = {
                "name": "Acme",
                "currencyCode": self.currency,
                "ianaTimezone": self.timezone,
                "myshopifyDomain": self.domain,
            }
            return 1, ({"shop": project(shop, selection, "Shop")}, 1)
        needed = {
            "order": "read_orders",
            "orders": "read_orders",
            "customer": "read_customers",
            "customers": "read_customers",
        }.get(root)
        if needed and needed not in self.scopes:
            raise GraphQLError(
                f"Access denied for {root} field. Required access: `{needed}` access scope.",
                "ACCESS_DENIED",
                documentation="https://shopify.dev/api/usage/access-scopes",
                requiredAccess=f"`{needed}` access scope.",
            )
        if root in ("order", "customer"):
            stored = (self.orders if root == "order" else self.customers).get(str(arguments.get("id")))
            cost = objects(selection)
            return cost, ({root: project(stored, selection, root.capitalize())}, cost if stored else 1)
        if root in ("orders", "customers"):
            return self._connection(root, arguments, selection or {})
        raise GraphQLError(
            f"Field '{root}' doesn't exist on type 'QueryRoot'", "undefinedField", typeName="QueryRoot", fieldName=root
        )

    def _connection(
        self, root: str, arguments: dict[str, Any], selection: Selection
    ) -> tuple[int, tuple[dict[str, Any], int]]:
        first = arguments.get("first")
        if not isinstance(first, int) or not 0 < first <= MAX_FIRST:
            raise GraphQLError(
                f"The value of 'first' must be between 1 and {MAX_FIRST}", "argumentLiteralsIncompatible"
            )
        if "nodes" not in selection:
            raise GraphQLError("Select nodes (edges are not served by this store)", "parseError")
        node_cost = objects(selection["nodes"])
        type_name = "Order" if root == "orders" else "Customer"
        sort = arguments.get("sortKey", "ID")
        if sort not in ("ID", "UPDATED_AT"):
            raise GraphQLError(f"Argument 'sortKey' has an unsupported value ({sort})", "argumentLiteralsIncompatible")
        stored = (self.orders if root == "orders" else self.customers).values()
        items = sorted(
            (item for item in stored if _matches(item, arguments.get("query"))), key=lambda item: _key(item, sort)
        )
        after = arguments.get("after")
        if after is not None:
            position = _position(after, sort)
            items = [item for item in items if _key(item, sort) > position]
        page, more = items[:first], len(items) > first
        end = _cursor(page[-1], sort) if page else None
        data = {
            root: {
                "nodes": project(page, selection["nodes"], type_name),
                "pageInfo": project(
                    {
                        "hasNextPage": more,
                        "hasPreviousPage": after is not None,
                        "endCursor": end,
                        "startCursor": _cursor(page[0], sort) if page else None,
                    },
                    selection.get("pageInfo"),
                    "PageInfo",
                ),
            }
        }
        return 2 + first * node_cost, (data, 2 + len(page) * node_cost)


def _key(item: dict[str, Any], sort: str) -> tuple[str, int]:
    return (
        _instant(item["updatedAt"]).astimezone(dt.UTC).isoformat() if sort == "UPDATED_AT" else "",
        int(item["legacyResourceId"]),
    )


def _cursor(item: dict[str, Any], sort: str) -> str:
    value = item["updatedAt"] if sort == "UPDATED_AT" else item["legacyResourceId"]
    return base64.urlsafe_b64encode(
        json.dumps({"last_id": int(item["legacyResourceId"]), "last_value": value}).encode()
    ).decode()


def _position(cursor: Any, sort: str) -> tuple[str, int]:
    try:
        found = json.loads(base64.urlsafe_b64decode(str(cursor).encode()))
        return (
            _key({"updatedAt": found["last_value"], "legacyResourceId": found["last_id"]}, sort)
            if sort == "UPDATED_AT"
            else ("", int(found["last_id"]))
        )
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("Invalid cursor for current pagination sort.", "badRequest") from None


def _matches(item: dict[str, Any], search: Any) -> bool:
    """Shopify's search syntax, as far as ``updated_at`` comparisons go (space-separated terms are ANDed)."""
    if not search:
        return True
    for term in str(search).split():
        match = re.fullmatch(r"updated_at:(>=|<=|>|<)?'?([^']+)'?", term)
        if match is None:
            raise GraphQLError(f"This store's search understands updated_at only, not {term}", "badRequest")
        operator, bound = match.group(1) or "=", _instant(match.group(2))
        value = _instant(item["updatedAt"])
        if not {
            ">": value > bound,
            ">=": value >= bound,
            "<": value < bound,
            "<=": value <= bound,
            "=": value == bound,
        }[operator]:
            return False
    return True
