"""A fake Stripe API serving a generated account (``northstar/demo/stripe_account.py``), written from
Stripe's API reference rather than from the connector. The connector tests sync through it, and so does the demo
seed: its Stripe data reaches the metrics the way a real account's does.

What it answers as Stripe does: list endpoints (``/v1/customers``, ``/v1/subscriptions``, ``/v1/invoices``,
``/v1/credit_notes``, ``/v1/refunds``, ``/v1/coupons``, ``/v1/events``) as ``{"object": "list", "url", "has_more",
"data"}``, newest first, ``limit`` 1 to 100 (10 by default), ``starting_after`` or ``ending_before`` (an object id),
``created`` filters; ``status=all`` (or a status, or ``ended``) for subscriptions, which otherwise leave out
cancelled ones; invoices embedding their first 10 lines (``lines.has_more``) and the rest paged from
``/v1/invoices/{id}/lines``; events of the last 30 days only; single objects at ``/v1/{resource}/{id}``; an API key
as ``Authorization: Bearer sk_test_…`` (or HTTP basic); unknown parameters refused; errors as ``{"error": {"type",
"message", "code", "param"}}``. The vendor rules every fake shares (``FakeVendor``) put it behind Stripe's test-mode
ceiling of 25 requests a second (429 ``rate_limit`` with ``Retry-After``) and inject faults on demand; their answers
carry Stripe's error bodies here.

The account moves on with the mutation methods (``add_customer``, ``subscribe``, ``change``, ``cancel``,
``refund``), which act now and record the events Stripe would send.

Stripe Billing's writes, as a platform that sells plans makes them (form-encoded bodies, as Stripe takes them):
``POST /v1/customers``, ``POST /v1/checkout/sessions`` (``mode=subscription``, one line item) answered with the
hosted page's ``url``, ``POST /v1/billing_portal/sessions``, ``POST /v1/subscriptions/{id}`` (a new price for its
item) and ``DELETE /v1/subscriptions/{id}`` (cancel now). ``complete_checkout`` is the customer paying on the hosted
page; ``signed`` makes a webhook delivery of an event with its ``Stripe-Signature`` header.

Stripe Connect's OAuth, as ``connect.stripe.com`` serves it beside the API: the consent page at ``/oauth/authorize``,
``POST /oauth/token`` (``grant_type`` ``authorization_code`` with ``code``, or ``refresh_token``; the platform's
secret key as ``client_secret`` or HTTP basic) answering the connected account's access token (its secret key here,
``api_key``), ``stripe_user_id`` and ``scope``, and ``POST /oauth/deauthorize`` (``client_id``, ``stripe_user_id``,
the platform's key) after which the access token is refused. Refusals are OAuth's ``{"error", "error_description"}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from northstar.demo.stripe_account import API_VERSION, EVENT_RETENTION, Account, Obj
from northstar.demo.vendor_api import ConsentScreen, FakeVendor, Seen, beside

EMBEDDED = 10  # lines an invoice (and items a subscription) carries; the rest are paged
PAGING = ("limit", "starting_after", "ending_before")
CREATED = ("created", "created[gt]", "created[gte]", "created[lt]", "created[lte]")
FILTERS = {
    "customers": ("email",),
    "subscriptions": ("status", "customer", "price", "collection_method"),
    "invoices": ("status", "customer", "subscription", "collection_method"),
    "credit_notes": ("customer", "invoice"),
    "refunds": ("charge", "payment_intent"),
    "coupons": (),
    "events": ("type", "types[]", "delivery_success"),
}
OBJECT_OF = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "refunds": "refund",
    "coupons": "coupon",
    "events": "event",
}
SUBSCRIPTION_STATUSES = (
    "active",
    "past_due",
    "unpaid",
    "canceled",
    "incomplete",
    "incomplete_expired",
    "trialing",
    "paused",
)
INVOICE_STATUSES = ("draft", "open", "paid", "uncollectible", "void")
CHECKOUT_PARAMS = (
    "mode",
    "customer",
    "client_reference_id",
    "success_url",
    "cancel_url",
    "line_items[0][price]",
    "line_items[0][quantity]",
    "subscription_data[metadata][org_id]",
    "subscription_data[metadata][plan]",
)


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.param = status, message, kind, code, param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"Request-Id": f"req_{secrets.token_hex(7)}", "Stripe-Version": API_VERSION},
    )


class FakeStripe:
    """A Stripe account behind its API; ``vendor`` has the request log, the ceiling and fault injection."""

    def __init__(
        self,
        account: Account,
        *,
        api_key: str | None = None,
        requests_per_second: float | None = 25.0,
        client_id: str | None = None,
        platform_key: str | None = None,
    ) -> None:
        self.account = account
        self.api_key = api_key or f"sk_test_{secrets.token_hex(16)}"
        self.revoked = False
        self.refresh_token = ""
        self.checkout_sessions: dict[str, Obj] = {}
        self.portal_sessions: dict[str, Obj] = {}
        self._sorted: dict[str, tuple[int, list[str]]] = {}
        self.vendor = FakeVendor(
            routes=[
                Route("/v1/customers", self._writing(self._create_customer), methods=["POST"]),
                Route("/v1/checkout/sessions", self._writing(self._create_checkout), methods=["POST"]),
                Route("/v1/billing_portal/sessions", self._writing(self._create_portal), methods=["POST"]),
                Route("/v1/subscriptions/{id}", self._writing(self._write_subscription), methods=["POST", "DELETE"]),
                Route("/v1/invoices/{id}/lines", self._guarded(self._lines)),
                Route("/v1/{resource}", self._guarded(self._list)),
                Route("/v1/{resource}/{id}", self._guarded(self._retrieve)),
            ],
            authorised=self._authorised,
            requests_per_second=requests_per_second,
            retry_after_seconds=1.0,
        )

        self.client_id = client_id or f"ca_{secrets.token_hex(16)}"  # the platform's Connect application
        self.platform_key = platform_key or f"sk_test_{secrets.token_hex(20)}"
        self.account_id = f"acct_{secrets.token_hex(8)}"
        self.connected = False
        self.consent = ConsentScreen("Stripe", self.client_id, allow="Connect", deny="Cancel")

    @property
    def app(self) -> ASGIApp:
        return beside(
            _StripeErrors(self.vendor.app, self),
            [
                self.consent.route("/oauth/authorize"),
                Route("/oauth/token", self._oauth_token, methods=["POST"]),
                Route("/oauth/deauthorize", self._deauthorize, methods=["POST"]),
            ],
        )

    # --- Connect's OAuth ---------------------------------------------------------------------------------------

    def _platform(self, request: Request, form: dict[str, str]) -> bool:
        """The platform's secret key: as ``client_secret``, or in the Authorization header (basic or bearer)."""
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            credential = base64.b64decode(credential).decode().partition(":")[0]
        given = form.get("client_secret") or credential
        return secrets.compare_digest(given, self.platform_key)

    async def _oauth_token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        if not self._platform(request, form):
            return _json({"error": "invalid_client", "error_description": "Invalid API Key provided"}, 401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            allowed = self.consent.redeem(form.get("code", ""), client_id=self.client_id)
            if allowed is None:
                code = form.get("code", "")
                return _json(
                    {"error": "invalid_grant", "error_description": f"Authorization code does not exist: {code}"}, 400
                )
            scope = " ".join(allowed.scopes) or "read_only"
        elif grant == "refresh_token" and self.connected and form.get("refresh_token") == self.refresh_token:
            scope = "read_only"
        else:
            return _json({"error": "invalid_grant", "error_description": "Invalid refresh token"}, 400)
        self.api_key, self.refresh_token = f"sk_test_{secrets.token_hex(16)}", f"rt_{secrets.token_hex(16)}"
        self.connected, self.revoked = True, False
        return _json(
            {
                "access_token": self.api_key,
                "livemode": False,
                "refresh_token": self.refresh_token,
                "token_type": "bearer",
                "stripe_publishable_key": f"pk_test_{secrets.token_hex(12)}",
                "stripe_user_id": self.account_id,
                "scope": scope,
            }
        )

    async def _deauthorize(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        if not self._platform(request, form) or form.get("client_id") != self.client_id:
            return _json(
                {"error": "invalid_client", "error_description": f"No such application: '{form.get('client_id')}'"}, 401
            )
        if not self.connected or form.get("stripe_user_id") != self.account_id:
            return _json(
                {
                    "error": "invalid_client",
                    "error_description": f"This application is not connected to stripe account "
                    f"{form.get('stripe_user_id')}, or that account does not exist.",
                },
                401,
            )
        self.connected = False
        self.revoke()
        return _json({"stripe_user_id": self.account_id})

    @property
    def seen(self) -> list[Seen]:
        return self.vendor.seen

    def revoke(self) -> None:
        """The key is rolled in the dashboard: every request answers 401 from now on."""
        self.revoked = True

    # --- the account moving on --------------------------------------------------------------------------------

    @staticmethod
    def now() -> int:
        return int(time.time())

    def add_customer(
        self,
        *,
        currency: str = "usd",
        country: str = "US",
        state: str | None = "CA",
        tax_rate: str | None = None,
        name: str = "New customer",
    ) -> Obj:
        return self.account.add_customer(
            self.now(), currency=currency, country=country, state=state, tax_rate=tax_rate, name=name
        )

    def subscribe(self, customer_id: str, items: Sequence[tuple[Obj, int | None]], **options: Any) -> Obj:
        return self.account.subscribe(self.now(), customer_id, items, **options)

    def change(self, subscription_id: str, **options: Any) -> Obj | None:
        return self.account.change(self.now(), subscription_id, **options)

    def cancel(self, subscription_id: str, **options: Any) -> Obj | None:
        return self.account.cancel(self.now(), subscription_id, **options)

    def refund(self, invoice_id: str, amount: int) -> Obj:
        return self.account.refund(self.now(), self.account.invoices[invoice_id], amount)

    def complete_checkout(self, session_id: str) -> Obj:
        """The customer pays on the hosted page: the subscription starts (its events recorded) and the session is
        complete."""
        session = self.checkout_sessions[session_id]
        price = self._price_by_id(session["line_items"][0]["price"])
        sub = self.subscribe(
            session["customer"], [(price, session["line_items"][0]["quantity"])], metadata=session["metadata_sub"]
        )
        session.update(status="complete", payment_status="paid", subscription=sub["id"])
        return sub

    @staticmethod
    def signed(event: Obj, secret: str, *, at: int | None = None) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery of ``event``: its body and headers, signed as Stripe signs (``t=…,v1=…``)."""
        body = orjson.dumps(event)
        timestamp = at if at is not None else int(time.time())
        signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"Stripe-Signature": f"t={timestamp},v1={signature}", "Content-Type": "application/json"}

    def _price_by_id(self, price_id: str) -> Obj:
        found = next((price for price in self.account.prices.values() if price["id"] == price_id), None)
        if found is None:
            raise StripeError(400, f"No such price: '{price_id}'", code="resource_missing", param="price")
        return found

    # --- writes ----------------------------------------------------------------------------------------------

    def _writing(self, handler: Callable[[Request, dict[str, str]], Obj]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                version = request.headers.get("stripe-version")
                if version is not None and version != API_VERSION:
                    raise StripeError(400, f"Invalid Stripe API version: {version}")
                form = {key: str(value) for key, value in (await request.form()).items()}
                return _json(handler(request, form))
            except StripeError as error:
                return _json(error.body(), error.status)

        return endpoint

    def _create_customer(self, request: Request, form: dict[str, str]) -> Obj:
        _known(form, ("email", "name", "metadata[org_id]"))
        customer = self.account.add_customer(
            self.now(), currency="usd", country="US", name=form.get("name", "New customer"), email=form.get("email")
        )
        customer["metadata"] = {key[9:-1]: value for key, value in form.items() if key.startswith("metadata[")}
        return customer

    def _create_checkout(self, request: Request, form: dict[str, str]) -> Obj:
        _known(form, CHECKOUT_PARAMS)
        if form.get("mode") != "subscription":
            raise StripeError(400, "This fake takes mode=subscription only", param="mode")
        for required in ("success_url", "line_items[0][price]"):
            if not form.get(required):
                raise StripeError(400, f"Missing required param: {required}.", code="parameter_missing", param=required)
        customer = form.get("customer")
        if customer and customer not in self.account.customers:
            raise StripeError(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        price = self._price_by_id(form["line_items[0][price]"])
        session_id = f"cs_test_{secrets.token_hex(16)}"
        prefix = "subscription_data[metadata]["
        session: Obj = {
            "id": session_id,
            "object": "checkout.session",
            "cancel_url": form.get("cancel_url"),
            "client_reference_id": form.get("client_reference_id"),
            "created": self.now(),
            "customer": customer,
            "expires_at": self.now() + 86400,
            "livemode": False,
            "metadata": {},
            "mode": "subscription",
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": form["success_url"],
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.checkout_sessions[session_id] = {
            **session,
            "line_items": [{"price": price["id"], "quantity": int(form.get("line_items[0][quantity]", "1"))}],
            "metadata_sub": {key[len(prefix) : -1]: value for key, value in form.items() if key.startswith(prefix)},
        }
        return session

    def _create_portal(self, request: Request, form: dict[str, str]) -> Obj:
        _known(form, ("customer", "return_url"))
        customer = form.get("customer", "")
        if customer not in self.account.customers:
            raise StripeError(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        session_id = f"bps_{secrets.token_hex(12)}"
        portal: Obj = {
            "id": session_id,
            "object": "billing_portal.session",
            "created": self.now(),
            "customer": customer,
            "livemode": False,
            "return_url": form.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/test_{session_id}",
        }
        self.portal_sessions[session_id] = portal
        return portal

    def _write_subscription(self, request: Request, form: dict[str, str]) -> Obj:
        subscription_id = request.path_params["id"]
        sub = self.account.subscriptions.get(subscription_id)
        if sub is None:
            raise StripeError(404, f"No such subscription: '{subscription_id}'", code="resource_missing", param="id")
        if request.method == "DELETE":
            _known(form, ())
            self.cancel(subscription_id, at_period_end=False, prorate=False)
            return _view(sub)
        _known(form, ("items[0][id]", "items[0][price]", "proration_behavior"))
        if form.get("items[0][id]") != sub["items"]["data"][0]["id"]:
            raise StripeError(400, "No such subscription item", code="resource_missing", param="items[0][id]")
        self.change(
            subscription_id,
            price=self._price_by_id(form.get("items[0][price]", "")),
            proration_behavior=form.get("proration_behavior", "create_prorations"),
        )
        return _view(sub)

    # --- requests ---------------------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential).decode().partition(":")[0]
            except ValueError:
                return False
        elif scheme.lower() != "bearer":
            return False
        return not self.revoked and secrets.compare_digest(credential, self.api_key)

    def error_body(self, status: int) -> dict[str, Any]:
        """Stripe's body for the answers of the shared vendor rules."""
        if status == 401:
            shown = f"{self.api_key[:8]}{'*' * 20}{self.api_key[-4:]}"
            return (
                StripeError(401, f"Expired API Key provided: {shown}", code="api_key_expired").body()
                if self.revoked
                else StripeError(401, "Invalid API Key provided").body()
            )
        if status == 429:
            return StripeError(
                429,
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                code="rate_limit",
            ).body()
        return StripeError(status, "Sorry, something went wrong on Stripe's end.", kind="api_error").body()

    def _guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                version = request.headers.get("stripe-version")
                if version is not None and version != API_VERSION:
                    raise StripeError(400, f"Invalid Stripe API version: {version}")
                if request.method != "GET":
                    raise StripeError(405, f"Unrecognized request URL ({request.method}: {request.url.path})")
                return handler(request)
            except StripeError as error:
                return _json(error.body(), error.status)

        return endpoint

    def _store(self, resource: str) -> dict[str, Obj]:
        store = self.account.streams().get(resource)
        if store is None:
            raise StripeError(404, f"Unrecognized request URL (GET: /v1/{resource})")
        return store

    def _newest_first(self, resource: str) -> list[str]:
        version, ids = self._sorted.get(resource, (-1, []))
        if version != self.account.version:
            order = self.account.order
            if resource == "events":
                ids = [event["id"] for event in reversed(self.account.events)]
            else:
                ids = sorted(self._store(resource), key=order.__getitem__, reverse=True)
            self._sorted[resource] = (self.account.version, ids)
        return ids

    def _list(self, request: Request) -> Response:
        resource = request.path_params["resource"]
        if resource not in FILTERS:
            raise StripeError(404, f"Unrecognized request URL (GET: /v1/{resource})")
        query = request.query_params
        _known(query.keys(), (*PAGING, *CREATED, *FILTERS[resource]))
        if resource == "events":
            floor = self.now() - EVENT_RETENTION
            by_id = {event["id"]: event for event in self.account.events}
            objects = [by_id[event_id] for event_id in self._newest_first("events")]
            objects = [event for event in objects if event["created"] >= floor]
        else:
            store = self._store(resource)
            objects = [store[object_id] for object_id in self._newest_first(resource)]
        objects = [found for found in objects if _matches(resource, found, query)]
        page, more = _page(objects, query, OBJECT_OF[resource])
        return _json(
            {"object": "list", "data": [_view(found) for found in page], "has_more": more, "url": f"/v1/{resource}"}
        )

    def _retrieve(self, request: Request) -> Response:
        resource, object_id = request.path_params["resource"], request.path_params["id"]
        _known(request.query_params.keys(), ())
        if resource == "events":
            found = next(
                (
                    event
                    for event in self.account.events
                    if event["id"] == object_id and event["created"] >= self.now() - EVENT_RETENTION
                ),
                None,
            )
        else:
            found = self._store(resource).get(object_id)
        if found is None:
            raise StripeError(
                404, f"No such {OBJECT_OF.get(resource, resource)}: '{object_id}'", code="resource_missing", param="id"
            )
        return _json(_view(found))

    def _lines(self, request: Request) -> Response:
        invoice = self.account.invoices.get(request.path_params["id"])
        if invoice is None:
            raise StripeError(
                404, f"No such invoice: '{request.path_params['id']}'", code="resource_missing", param="invoice"
            )
        _known(request.query_params.keys(), PAGING)
        page, more = _page(invoice["lines"]["data"], request.query_params, "line_item")
        return _json({"object": "list", "data": page, "has_more": more, "url": invoice["lines"]["url"]})


def _known(given: Any, allowed: Sequence[str]) -> None:
    for name in given:
        if name not in allowed:
            raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def _integer(query: Any, name: str) -> int:
    try:
        return int(query[name])
    except ValueError:
        raise StripeError(
            400, f"Invalid integer: {query[name]}", code="parameter_invalid_integer", param=name
        ) from None


def _matches(resource: str, found: Obj, query: Any) -> bool:
    created = found["created"]
    for name, holds in (
        ("created", created.__eq__),
        ("created[gt]", created.__gt__),
        ("created[gte]", created.__ge__),
        ("created[lt]", created.__lt__),
        ("created[lte]", created.__le__),
    ):
        if name in query and not holds(_integer(query, name)):
            return False
    if resource == "subscriptions":
        status = query.get("status")
        if status is not None and status not in (*SUBSCRIPTION_STATUSES, "all", "ended"):
            raise StripeError(
                400, f"Invalid status: must be one of {', '.join(SUBSCRIPTION_STATUSES)}, all or ended", param="status"
            )
        wanted = {
            "all": SUBSCRIPTION_STATUSES,
            "ended": ("canceled", "incomplete_expired"),
            None: tuple(kind for kind in SUBSCRIPTION_STATUSES if kind != "canceled"),
        }.get(status, (status,))
        if found["status"] not in wanted:
            return False
        if "price" in query and all(item["price"]["id"] != query["price"] for item in found["items"]["data"]):
            return False
    if resource == "invoices" and query.get("status") not in (None, *INVOICE_STATUSES):
        raise StripeError(400, f"Invalid status: must be one of {', '.join(INVOICE_STATUSES)}", param="status")
    if resource == "events":
        types = query.getlist("types[]") or ([query["type"]] if "type" in query else [])
        return not types or any(
            found["type"] == kind or (kind.endswith(".*") and found["type"].startswith(kind[:-1])) for kind in types
        )
    return all(
        found.get(name) == query[name]
        for name in (
            "email",
            "customer",
            "subscription",
            "invoice",
            "charge",
            "payment_intent",
            "collection_method",
            "status",
        )
        if name in query and not (resource == "subscriptions" and name == "status")
    )


def _page(objects: list[Obj], query: Any, kind: str) -> tuple[list[Obj], bool]:
    """One page of a list in its order: the first ``limit``, those after ``starting_after`` or those right before
    ``ending_before`` (still in list order)."""
    limit = _integer(query, "limit") if "limit" in query else 10
    if not 1 <= limit <= 100:
        raise StripeError(
            400, "Invalid limit: must be between 1 and 100", code="parameter_invalid_integer", param="limit"
        )
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        raise StripeError(400, "Received both starting_after and ending_before parameters. Please pass in only one.")
    cursor = after or before
    if not cursor:
        return objects[:limit], len(objects) > limit
    position = next((index for index, found in enumerate(objects) if found["id"] == cursor), None)
    if position is None:
        raise StripeError(
            400,
            f"No such {kind}: '{cursor}'",
            code="resource_missing",
            param="starting_after" if after else "ending_before",
        )
    if after:
        return objects[position + 1 : position + 1 + limit], position + 1 + limit < len(objects)
    return objects[max(position - limit, 0) : position], position - limit > 0


def _view(found: Obj) -> Obj:
    """An object as the API shows it: invoices with their first lines, subscriptions with their first items,
    events with their object shown so."""
    kind = found["object"]
    if kind == "event":
        return {**found, "data": {**found["data"], "object": _view(found["data"]["object"])}}
    part = "lines" if kind == "invoice" else "items" if kind == "subscription" else None
    if part is None or len(found[part]["data"]) <= EMBEDDED:
        return found
    return {**found, part: {**found[part], "data": found[part]["data"][:EMBEDDED], "has_more": True}}


class _StripeErrors:
    """Stripe's error bodies on what the shared vendor rules answer (401, 429 and 5xx); other answers pass."""

    def __init__(self, app: ASGIApp, fake: FakeStripe) -> None:
        self.app, self.fake = app, fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def relay(message: Message) -> None:
            if message["type"] == "http.response.start" and (
                message["status"] in (401, 429) or message["status"] >= 500
            ):
                held.append(message)
                return
            if held and message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                start = held.pop()
                body = orjson.dumps(self.fake.error_body(start["status"]))
                headers = [
                    (name, value)
                    for name, value in start["headers"]
                    if name.lower() not in (b"content-length", b"content-type")
                ]
                headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, relay)
