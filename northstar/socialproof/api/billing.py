"""Billing routes (seed 001 ``GET``/``POST /sites/{siteId}/subscription``), the customer portal link and the
endpoint Stripe's subscription webhooks are sent to."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from northstar.core.context import DbSession, audit_target
from northstar.core.db import settings_of
from northstar.core.http import ERROR_RESPONSES, Envelope, read_body
from northstar.settings import BillingSettings
from northstar.socialproof.auth import BillingRead, BillingUpdate
from northstar.socialproof.schemas.billing import (
    PlanOut,
    PlanPrice,
    PortalOut,
    QuotaOut,
    SubscriptionChange,
    SubscriptionOut,
    UsageOut,
    WebhookReceipt,
)
from northstar.socialproof.service import billing

router = APIRouter(tags=["billing"], responses=ERROR_RESPONSES)
MAX_WEBHOOK_BYTES = 256 * 1024


def plans_out(config: BillingSettings) -> list[PlanOut]:
    return [
        PlanOut(
            key=key,
            name=plan.name,
            monthly_visitors=plan.monthly_visitors,
            max_sites=plan.max_sites,
            max_notifications=plan.max_notifications,
            price=PlanPrice(amount=plan.price, currency=plan.currency),
        )
        for key, plan in sorted(config.plans.items(), key=lambda item: item[1].price)
    ]


def subscription_out(config: BillingSettings, state: billing.BillingState) -> SubscriptionOut:
    """The state as the API answers it; the console shows the same."""
    plans = plans_out(config)
    plan = state.plan
    return SubscriptionOut(
        plan=next((out for out in plans if out.key == state.plan_key), None),
        status=state.status,
        provider="stripe" if state.provider == "stripe" else "manual",
        pending_plan=state.pending_plan,
        checkout_url=state.checkout_url,
        period_start=state.period.start,
        period_end=state.period.end,
        usage=UsageOut(
            visitors=state.usage.visitors,
            site_visitors=state.usage.site_visitors or 0,
            quota=plan.monthly_visitors if plan else None,
            percent=state.percent,
            sites=state.sites,
            site_notifications=state.site_notifications,
        ),
        quota=QuotaOut(
            state="ok" if state.quota_state == "ok" else "silent" if state.quota_state == "silent" else "stopped",
            reached_at=state.quota_reached_at,
            collect_until=state.collect_until,
            silent_until=state.quota_until,
        ),
        plans=plans,
    )


def return_url(request: Request, site_id: uuid.UUID) -> str:
    """Where Stripe sends the customer back: the site's billing page in the console."""
    return f"{str(request.app.state.settings.public_url).rstrip('/')}/app/sites/{site_id}/billing"


@router.get("/sites/{site_id}/subscription", response_model=Envelope[SubscriptionOut], name="subscription.get")
async def get_subscription(site_id: uuid.UUID, principal: BillingRead, session: DbSession) -> Envelope[SubscriptionOut]:
    """The plan of the site's organization (it covers all its sites), this period's usage and the quota state."""
    state = await billing.billing_state(session, org_id=principal.org_id, site_id=site_id)
    return Envelope(data=subscription_out(settings_of(session).socialproof.billing, state))


@router.post("/sites/{site_id}/subscription", response_model=Envelope[SubscriptionOut], name="subscription.change")
async def change_subscription(
    site_id: uuid.UUID, body: SubscriptionChange, request: Request, principal: BillingUpdate, session: DbSession
) -> Envelope[SubscriptionOut]:
    """Change the plan. With the ``manual`` provider, and for the free plan, at once; with Stripe, a paid plan
    without a running subscription answers a ``checkoutUrl`` and applies when Stripe confirms the payment (its
    webhook), and a running subscription changes price at once (prorated). 409 ``plan_too_small`` when the org has
    more sites or notifications than the plan allows; 422 ``unknown_plan``."""
    state = await billing.change_plan(
        session, principal=principal, site_id=site_id, plan_key=body.plan, return_url=return_url(request, site_id)
    )
    audit_target(request, "subscription", principal.org_id, plan=body.plan, site=str(site_id))
    return Envelope(data=subscription_out(settings_of(session).socialproof.billing, state))


@router.post("/sites/{site_id}/subscription/portal", response_model=Envelope[PortalOut], name="subscription.portal")
async def billing_portal(
    site_id: uuid.UUID, request: Request, principal: BillingUpdate, session: DbSession
) -> Envelope[PortalOut]:
    """A Stripe Customer Portal session (409 ``no_billing_portal`` with the manual provider)."""
    url = await billing.portal_url(
        session, principal=principal, site_id=site_id, return_url=return_url(request, site_id)
    )
    return Envelope(data=PortalOut(url=url))


@router.post(
    "/billing/stripe/webhook",
    response_model=Envelope[WebhookReceipt],
    name="billing.stripe_webhook",
    openapi_extra={"security": []},
)
async def stripe_webhook(request: Request, session: DbSession) -> Envelope[WebhookReceipt]:
    """Stripe's ``customer.subscription.created|updated|deleted`` events, authenticated by ``Stripe-Signature``
    (401 ``invalid_signature`` or ``signature_expired``); other event types are acknowledged and ignored."""
    body = await read_body(request, MAX_WEBHOOK_BYTES)
    result = await billing.accept_stripe_webhook(
        session, body=body, signature=request.headers.get("stripe-signature", "")
    )
    return Envelope(data=WebhookReceipt(result="applied" if result == "applied" else "ignored"))
