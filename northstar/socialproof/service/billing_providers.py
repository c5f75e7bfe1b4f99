"""Who takes the money for a plan: one small interface, two providers.

* ``manual`` (the default, for self-hosted installs): no charges; a plan change applies at once.
* ``stripe``: Stripe Billing. A paid plan without a running subscription goes through a Checkout Session (the
  answer carries its URL; the plan changes when Stripe's ``customer.subscription.created`` webhook says the
  subscription is active); a running subscription changes price in place (prorated, invoiced at once) or is
  cancelled for the free plan; the Customer Portal handles cards and invoices. Requests are Stripe's form-encoded
  API, pinned to one API version, at ``stripe_api_url`` (tests point it at a fake speaking Stripe's JSON).
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from northstar.core.http import AppError, Conflict
from northstar.settings import BillingPlan, BillingSettings

log = structlog.get_logger("northstar.socialproof.billing")
STRIPE_API_VERSION = "2024-06-20"
STRIPE_TIMEOUT_SECONDS = 20.0


class ProviderFailed(AppError):
    status, code = 502, "billing_provider_error"


@dataclass(frozen=True)
class Customer:
    """What a provider knows of the organization paying: its customer id there, if it has one yet."""

    org_id: uuid.UUID
    customer_id: str | None
    subscription_id: str | None


@dataclass(frozen=True)
class Change:
    """A provider's answer to a plan change: applied now (``subscription``: the provider's object, when there is
    one), or waiting for the customer at ``checkout_url``."""

    applied: bool
    customer_id: str | None = None
    checkout_url: str | None = None
    subscription: Mapping[str, Any] | None = None


class BillingProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    async def change_plan(
        self, customer: Customer, *, plan_key: str, plan: BillingPlan, return_url: str, email: str | None
    ) -> Change: ...

    @abc.abstractmethod
    async def portal_url(self, customer: Customer, *, return_url: str) -> str: ...


class ManualProvider(BillingProvider):
    """Self-hosted: nobody is charged, plans change when an admin says so."""

    name = "manual"

    async def change_plan(
        self, customer: Customer, *, plan_key: str, plan: BillingPlan, return_url: str, email: str | None
    ) -> Change:
        return Change(applied=True)

    async def portal_url(self, customer: Customer, *, return_url: str) -> str:
        raise Conflict("This installation bills nobody: there is no billing portal", code="no_billing_portal")


class StripeProvider(BillingProvider):
    name = "stripe"

    def __init__(self, config: BillingSettings) -> None:
        if not config.stripe_secret_key:
            raise AppError("Stripe billing is not configured (no secret key)", status=503, code="billing_unavailable")
        self.config = config

    async def _call(self, method: str, path: str, form: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(
                base_url=self.config.stripe_api_url,
                timeout=STRIPE_TIMEOUT_SECONDS,
                headers={
                    "authorization": f"Bearer {self.config.stripe_secret_key}",
                    "stripe-version": STRIPE_API_VERSION,
                },
            ) as client:
                response = await client.request(method, path, data=dict(form or {}))
        except httpx.HTTPError as exc:
            log.warning("stripe_unreachable", path=path, error=type(exc).__name__)
            raise ProviderFailed("Stripe could not be reached; try again") from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400:
            message = str((body.get("error") or {}).get("message") or f"HTTP {response.status_code}")
            log.warning("stripe_refused", path=path, status=response.status_code, message=message)
            raise ProviderFailed(f"Stripe refused the request: {message}")
        return body

    async def _customer_id(self, customer: Customer, email: str | None) -> str:
        if customer.customer_id:
            return customer.customer_id
        form = {"metadata[org_id]": str(customer.org_id)}
        if email:
            form["email"] = email
        created = await self._call("POST", "/v1/customers", form)
        return str(created["id"])

    async def change_plan(
        self, customer: Customer, *, plan_key: str, plan: BillingPlan, return_url: str, email: str | None
    ) -> Change:
        paid = plan.price > 0
        if paid and not plan.stripe_price_id:
            raise Conflict(f"The plan {plan_key!r} has no Stripe price configured", code="plan_not_for_sale")
        if customer.subscription_id:
            current = await self._call("GET", f"/v1/subscriptions/{customer.subscription_id}")
            if not paid:  # the free plan: the subscription ends now, Stripe's answer says so
                ended = await self._call("DELETE", f"/v1/subscriptions/{customer.subscription_id}")
                return Change(applied=True, customer_id=customer.customer_id, subscription=ended)
            item = current["items"]["data"][0]["id"]
            changed = await self._call(
                "POST",
                f"/v1/subscriptions/{customer.subscription_id}",
                {
                    "items[0][id]": item,
                    "items[0][price]": plan.stripe_price_id,
                    "proration_behavior": "always_invoice",
                },
            )
            return Change(applied=True, customer_id=customer.customer_id, subscription=changed)
        if not paid:
            return Change(applied=True, customer_id=customer.customer_id)
        customer_id = await self._customer_id(customer, email)
        session = await self._call(
            "POST",
            "/v1/checkout/sessions",
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(customer.org_id),
                "line_items[0][price]": plan.stripe_price_id,
                "line_items[0][quantity]": "1",
                "subscription_data[metadata][org_id]": str(customer.org_id),
                "subscription_data[metadata][plan]": plan_key,
                "success_url": f"{return_url}?checkout=success",
                "cancel_url": f"{return_url}?checkout=cancelled",
            },
        )
        return Change(applied=False, customer_id=customer_id, checkout_url=str(session["url"]))

    async def portal_url(self, customer: Customer, *, return_url: str) -> str:
        if not customer.customer_id:
            raise Conflict("This organization has no Stripe customer yet: choose a paid plan first", code="no_customer")
        session = await self._call(
            "POST", "/v1/billing_portal/sessions", {"customer": customer.customer_id, "return_url": return_url}
        )
        return str(session["url"])


def provider_for(config: BillingSettings) -> BillingProvider:
    return StripeProvider(config) if config.provider == "stripe" else ManualProvider()
