"""Stripe: customers, subscriptions, invoices and their lines, credit notes, refunds, coupons; then events.

A first sync walks every list endpoint (``starting_after`` cursors, newest first, 100 a page) because Stripe keeps
events for 30 days only; objects created while it runs are picked up by the events that follow. After that, syncs
read ``/v1/events`` since the last one and apply each object as its latest event shows it. Invoices embed their first
lines; the rest are paged from ``/v1/invoices/{id}/lines``. Requests are pinned to one API version and kept under
the rate Stripe allows (25 requests a second in test mode; configurable), evenly spaced.

``normalise`` maps Stripe objects to billing data (docs/metrics.md, "Input"). Inbound webhooks are verified with
``verify_signature`` (``Stripe-Signature``: ``t=…,v1=…``, HMAC-SHA256 of ``"{t}.{body}"``, 5 minutes of tolerance).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from northstar.core.outbound import OutboundPolicy
from northstar.integrations.connectors.base import (
    Connector,
    Page,
    RateLimit,
    Signature,
    VendorClient,
    VendorError,
    validated,
)
from northstar.metrics.inputs import BillingCustomer, BillingSubscription, Interval, InvoiceLine, Kind, SourceBatch

API_VERSION = "2024-06-20"
BASE_URL = "https://api.stripe.com"
LIST_STREAMS = ("customers", "subscriptions", "invoices", "credit_notes", "refunds", "coupons")
PAGE_SIZE = 100
EVENT_WINDOW = dt.timedelta(days=30)
SIGNATURE_TOLERANCE_SECONDS = 300
_PATHS = {
    "customers": "/v1/customers",
    "subscriptions": "/v1/subscriptions",
    "invoices": "/v1/invoices",
    "credit_notes": "/v1/credit_notes",
    "refunds": "/v1/refunds",
    "coupons": "/v1/coupons",
}
_STREAM_OF_OBJECT = {
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "credit_note": "credit_notes",
    "refund": "refunds",
    "coupon": "coupons",
}


def _instant(seconds: int | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC) if seconds else None


class StripeConnector(Connector):
    provider = "stripe"
    title = "Stripe"
    streams = (*LIST_STREAMS, "events")
    credential_fields = ("api_key", "webhook_secret")
    signature_header = "stripe-signature"

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> StripeConnector:
        settings = validated(cls.settings_model, config)
        client = VendorClient(
            base_url=settings.base_url or BASE_URL,
            policy=policy,
            headers={"Authorization": f"Bearer {credentials['api_key']}", "Stripe-Version": API_VERSION},
            rate=_rate(settings.requests_per_second or 25),
        )
        return cls(credentials=credentials, config=config, client=client)

    async def test(self) -> None:
        await self.client.request_json("GET", "/v1/customers", params={"limit": 1})

    def plan(self, state: Mapping[str, Any], now: dt.datetime) -> tuple[list[str], dict[str, Any]]:
        """Events only, once a full walk is done and its events are still kept; otherwise (again) every list."""
        events = state.get("events")
        if events is not None and not events_expired(events, now):
            return ["events"], dict(state)
        fresh = (
            {key: value for key, value in state.items() if key not in ("events", *LIST_STREAMS)}
            if events is not None
            else dict(state)
        )
        fresh.setdefault("walk_started", int(now.timestamp()))
        return list(LIST_STREAMS), fresh

    def finish(self, state: Mapping[str, Any]) -> dict[str, Any]:
        done = dict(state)
        started = done.pop("walk_started", None)
        if started is not None:
            done["events"] = {"since": int(started) - 60}  # a minute of overlap: applying an object twice is harmless
        return done

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        return normalise(stream, records)

    @staticmethod
    def check_signature(body: bytes, signature: str, secret: str) -> Signature:
        return verify_signature(body, signature, secret)

    @classmethod
    def webhook_event(cls, payload: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[str, str]:
        if (
            not isinstance(payload, Mapping)
            or not isinstance(payload.get("id"), str)
            or not isinstance(payload.get("type"), str)
        ):
            raise VendorError("a Stripe event needs an id and a type")
        return str(payload["id"]), str(payload["type"])

    async def webhook_record(self, payload: Mapping[str, Any], topic: str) -> tuple[str, dict[str, Any]] | None:
        carried = _carried(payload)
        if carried is None:
            return None
        stream, found = carried
        return stream, (await self._with_all_lines(found) if stream == "invoices" else found)

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        if stream == "events":
            async for page in self._events(cursor):
                yield page
            return
        if cursor is not None and cursor.get("done"):
            return
        after = cursor.get("starting_after") if cursor else None
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE}
            if stream == "subscriptions":
                params["status"] = "all"
            if after:
                params["starting_after"] = after
            listed = _list(await self.client.request_json("GET", _PATHS[stream], params=params), stream)
            records = listed["data"]
            if stream == "invoices":
                records = [await self._with_all_lines(invoice) for invoice in records]
            more = bool(listed.get("has_more")) and bool(records)
            after = records[-1]["id"] if records else after
            yield Page(stream, records, {"starting_after": after} if more else {"done": True})
            if not more:
                return

    async def _with_all_lines(self, invoice: dict[str, Any]) -> dict[str, Any]:
        lines = invoice.get("lines") or {}
        if not lines.get("has_more"):
            return invoice
        data = list(lines.get("data") or [])
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE}
            if data:
                params["starting_after"] = data[-1]["id"]
            page = _list(
                await self.client.request_json("GET", f"/v1/invoices/{invoice['id']}/lines", params=params),
                "invoice lines",
            )
            data.extend(item for item in page["data"] if item["id"] not in {line["id"] for line in data})
            if not page.get("has_more") or not page["data"]:
                return {**invoice, "lines": {**lines, "data": data, "has_more": False}}

    async def _events(self, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        """Events from the cursor's ``since`` (unix seconds, that second included: an event of the same second may
        come after the last read), as pages of the objects they carry, each object as its latest event shows it.

        Stripe lists events newest first, in the order they happened even within one second (``created`` is in
        seconds, ids are not ordered), so that order, reversed, is the order to apply them in."""
        since = int(cursor.get("since", 0)) if cursor else 0
        events: list[dict[str, Any]] = []
        after = None
        while True:
            params: dict[str, Any] = {"limit": PAGE_SIZE, "created[gte]": since}
            if after:
                params["starting_after"] = after
            page = _list(await self.client.request_json("GET", "/v1/events", params=params), "events")
            events.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                break
            after = page["data"][-1]["id"]
        events.reverse()
        events.sort(key=_created)  # stable: the listed order within a second
        newest = max((_created(event) for event in events), default=since)
        latest: dict[str, dict[str, dict[str, Any]]] = {}
        for event in events:
            carried = _carried(event)
            if carried is not None:
                stream, found = carried
                objects = latest.setdefault(stream, {})
                objects.pop(found["id"], None)
                objects[found["id"]] = found
        for stream, objects in latest.items():
            records = list(objects.values())
            if stream == "invoices":
                records = [await self._with_all_lines(invoice) for invoice in records]
            yield Page(stream, records, None)
        yield Page("events", [], {"since": newest}, fetched=len(events))


def _created(event: Mapping[str, Any]) -> int:
    created = event.get("created")
    return created if isinstance(created, int) else 0


def _carried(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The stream and object an event carries, if it is one of the synced objects."""
    data = event.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    if not isinstance(found, dict) or not isinstance(found.get("id"), str):
        return None
    stream = _STREAM_OF_OBJECT.get(str(found.get("object")))
    return (stream, found) if stream is not None else None


def _rate(ceiling: float) -> RateLimit:
    """At most ``ceiling`` requests in any second: evenly spaced, no burst (a token bucket allows its burst plus its
    rate in one second, so a burst would have to be paid for with a lower rate all along)."""
    return RateLimit(max(ceiling - 1, ceiling / 2), burst=1)


def _list(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), list):
        raise VendorError(f"Stripe sent a {what} page that is not a list")
    if not all(isinstance(item, dict) and isinstance(item.get("id"), str) for item in answer["data"]):
        raise VendorError(f"Stripe sent {what} without ids")
    return answer


def events_expired(cursor: Mapping[str, Any] | None, now: dt.datetime) -> bool:
    """Stripe keeps 30 days of events: a sync after longer walks every list again."""
    return (
        cursor is not None
        and "since" in cursor
        and now.timestamp() - float(cursor["since"]) > EVENT_WINDOW.total_seconds()
    )


def normalise(stream: str, records: list[dict[str, Any]]) -> SourceBatch:
    """The billing data in these Stripe objects (credit notes, refunds and coupons carry none: MRR ignores them)."""
    batch = SourceBatch()
    for record in records:
        if stream == "customers" and not record.get("deleted"):
            address = record.get("address") or {}
            batch.customers.append(
                BillingCustomer(
                    external_id=record["id"],
                    name=record.get("name"),
                    email=record.get("email"),
                    country=address.get("country"),
                    created_at=_instant(record.get("created")),
                )
            )
        elif stream == "subscriptions":
            batch.subscriptions.append(
                BillingSubscription(
                    external_id=record["id"],
                    customer=_id(record["customer"]),
                    status=record.get("status", "active"),
                    started_at=_instant(record.get("start_date")),
                    current_period_end=_instant(record.get("current_period_end")),
                    cancel_at_period_end=bool(record.get("cancel_at_period_end")),
                    canceled_at=_instant(record.get("canceled_at")),
                    ended_at=_instant(record.get("ended_at")),
                    trial_end=_instant(record.get("trial_end")),
                )
            )
        elif stream == "invoices" and record.get("customer"):
            batch.lines.extend(invoice_lines(record))
    return batch


def _id(value: Any) -> str:
    return str(value["id"] if isinstance(value, dict) else value)


def invoice_lines(invoice: dict[str, Any]) -> list[InvoiceLine]:
    lines = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        price = line.get("price") or line.get("plan") or {}
        recurring = price.get("recurring") or {}
        kind = _kind(recurring)
        amount = int(line.get("amount") or 0)
        excluding_tax = int(line["amount_excluding_tax"]) if line.get("amount_excluding_tax") is not None else amount
        taxes = line.get("tax_amounts") or []
        if taxes and taxes[0].get("taxable_amount") is not None:
            net = int(taxes[0]["taxable_amount"])
        else:
            net = excluding_tax - sum(int(item.get("amount") or 0) for item in line.get("discount_amounts") or [])
        quantity = int(line.get("quantity") or 1)
        unit = price.get("unit_amount")
        period = line.get("period") or {}
        subscription = line.get("subscription") or invoice.get("subscription")
        lines.append(
            InvoiceLine(
                id=line["id"],
                invoice=invoice["id"],
                customer=_id(invoice["customer"]),
                subscription=_id(subscription) if subscription else None,
                item=_id(line["subscription_item"]) if line.get("subscription_item") else None,
                kind=kind,
                proration=bool(line.get("proration")),
                period_start=_instant(period.get("start")) or _instant(invoice.get("created")) or _epoch(),
                period_end=_instant(period.get("end")) or _instant(invoice.get("created")) or _epoch(),
                currency=str(line.get("currency") or invoice.get("currency") or "usd").upper(),
                unit_amount=int(unit) if unit is not None else (abs(amount) // quantity if quantity else abs(amount)),
                quantity=quantity,
                amount=amount,
                amount_excluding_tax=excluding_tax,
                net_amount=net,
                interval=_interval(recurring.get("interval")),
                interval_count=int(recurring.get("interval_count") or 1),
                invoice_status=str(invoice.get("status") or "draft"),
                issued_at=_instant(invoice.get("created")),
            )
        )
    return lines


def _interval(value: Any) -> Interval:
    """Stripe's billing interval; a price without one (a one-off) counts as monthly, where it carries no MRR."""
    return cast(Interval, value) if value in ("day", "week", "month", "year") else "month"


def _kind(recurring: Mapping[str, Any]) -> Kind:
    if not recurring:
        return "one_time"
    return "metered" if recurring.get("usage_type") == "metered" else "recurring"


def _epoch() -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def verify_signature(payload: bytes, header: str, secret: str, *, now: float | None = None) -> Signature:
    """Stripe's webhook signature: a ``v1`` HMAC-SHA256 of ``"{t}.{payload}"``, made within the tolerance.

    The signature is checked before the time, as Stripe's libraries do: the timestamp is signed, so only a delivery
    that really came from Stripe is told it expired; anything else does not match."""
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp = int(parts.get("t", [""])[0])
    except ValueError:
        return Signature.INVALID
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in parts.get("v1", [])):
        return Signature.INVALID
    if abs((now if now is not None else time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return Signature.EXPIRED
    return Signature.VALID
