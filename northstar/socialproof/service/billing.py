"""Billing: an organization's plan, its limits, its monthly unique-visitor usage and what happens at its quota.

* **Plans** are configuration (``NORTHSTAR_SOCIALPROOF__BILLING__PLANS``): a monthly unique-visitor quota over all
  the organization's sites, at most so many sites and so many notifications per site, a price in minor units. An
  organization without a row is on ``default_plan`` (empty: no plan, nothing limited, as self-hosted installs start).
* **Usage** is the union of the visitor sketches of every site of the organization over the billing period (hour
  sketches plus the hashes not folded yet): Stripe's current period when a subscription has one, else the calendar
  month in UTC. HyperLogLog, so it is an estimate past 512 visitors (about 1.6 % standard error).
* **Alerts**: ``check_quota`` (a task, every five minutes) measures usage; the first time in a period it passes
  80 % and 100 % (``alert_percents``) the founders and admins get an e-mail and the org's endpoints a
  ``quota.reached`` webhook (with the percent). Each alert goes once per period (and again after a plan change); a
  plan change sends ``subscription.changed``.
* **At the quota** the widget is silent (the feed serves no notifications) until the period ends or the plan grows.
  Events are still stored for ``grace_days`` (7) after the quota was reached, so nothing is lost while the merchant
  upgrades; after that, until the period ends, widget events are dropped before storage (counted as ``dropped``)
  and server-side events are refused with 402 ``quota_exceeded``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.accounts.service import organizations as accounts
from northstar.core.db import get_in_org, set_tenant_context, settings_of
from northstar.core.http import AppError, BadRequest, Conflict, NotFound, Unauthorized, Unprocessable
from northstar.core.mailer import send_email
from northstar.core.permissions import Principal
from northstar.integrations.service import verify_stripe_signature
from northstar.settings import BillingPlan, BillingSettings
from northstar.socialproof.models import NO_NOTIFICATION, Notification, Site, Subscription
from northstar.socialproof.service.billing_providers import Change, Customer, provider_for
from northstar.socialproof.sketch import Sketch
from northstar.webhooks import service as webhooks

log = structlog.get_logger("northstar.socialproof.billing")

STRIPE_EVENTS = ("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
LIVE_STATUSES = ("active", "trialing", "past_due")  # Stripe subscriptions whose plan applies
NO_PLAN = "none"


class PlanLimitReached(AppError):
    status, code = 402, "plan_limit_reached"


class QuotaExceeded(AppError):
    status, code = 402, "quota_exceeded"


@dataclass(frozen=True)
class Period:
    start: dt.datetime
    end: dt.datetime


def month_of(now: dt.datetime) -> Period:
    start = now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return Period(start, end)


def current_period(row: Subscription | None, now: dt.datetime) -> Period:
    """The provider's current period while it lasts, else the calendar month (UTC)."""
    if row is not None and row.period_start and row.period_end and row.period_start <= now < row.period_end:
        return Period(row.period_start, row.period_end)
    return month_of(now)


def plan_key_of(config: BillingSettings, row: Subscription | None) -> str | None:
    key = row.plan if row is not None else config.default_plan or None
    return key if key in config.plans else None


def fallback_plan(config: BillingSettings) -> str:
    """Where an ended paid subscription leaves an organization: the default plan, else the cheapest."""
    return config.default_plan or min(config.plans, key=lambda key: config.plans[key].price)


@dataclass(frozen=True)
class Usage:
    visitors: int
    site_visitors: int | None


# The period's visitors, every site of the org (the policy keeps it to the bound org): the sketches of whole hours
# and the hashes not folded yet. ``site`` picks one site's share out of the same rows.
_SKETCHES = text(
    "SELECT site_id, registers FROM socialproof.visitor_sketches"
    " WHERE grain = 'hour' AND notification_id = :none AND bucket >= :start AND bucket < :end"
)
_PENDING = text(
    "SELECT site_id, array_agg(hash) AS hashes FROM socialproof.visitor_hashes, unnest(hashes) AS hash"
    " WHERE notification_id = :none AND minute >= :start AND minute < :end GROUP BY site_id"
)


async def measure_usage(session: AsyncSession, *, period: Period, site_id: uuid.UUID | None = None) -> Usage:
    """Unique visitors of the bound org in ``period`` (and of ``site_id`` among them)."""
    params = {"none": NO_NOTIFICATION, "start": period.start, "end": period.end}
    everyone, one_site = Sketch(), Sketch()
    for row in await session.execute(_SKETCHES, params):
        sketch = Sketch.decode(row.registers)
        if row.site_id == site_id:
            one_site.merge(sketch)
        everyone.merge(sketch)
    for row in await session.execute(_PENDING, params):
        sketch = Sketch.of(row.hashes)
        if row.site_id == site_id:
            one_site.merge(sketch)
        everyone.merge(sketch)
    return Usage(everyone.estimate(), one_site.estimate() if site_id is not None else None)


async def subscription_of(session: AsyncSession, *, org_id: uuid.UUID) -> Subscription | None:
    return await session.get(Subscription, org_id)


async def _locked_row(session: AsyncSession, *, org_id: uuid.UUID) -> Subscription:
    """The org's row, created on the default plan if missing, locked until the transaction ends: plan changes,
    limit checks and webhooks of one org take turns."""
    config = settings_of(session).socialproof.billing
    await session.execute(
        pg_insert(Subscription)
        .values(org_id=org_id, plan=config.default_plan or None, provider=config.provider)
        .on_conflict_do_nothing(index_elements=["org_id"])
    )
    row = (
        await session.scalars(
            select(Subscription)
            .where(Subscription.org_id == org_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return row


# --- limits -----------------------------------------------------------------------------------------------------


async def _enforce_limit(session: AsyncSession, *, org_id: uuid.UUID, limit: str, what: str, counted: Any) -> None:
    """402 ``plan_limit_reached`` when ``counted`` has reached the org's plan's ``limit`` (a field of the plan).
    The org's row is locked first, so concurrent creations take turns and none slips past the limit."""
    config = settings_of(session).socialproof.billing
    key = plan_key_of(config, await _locked_row(session, org_id=org_id))
    maximum: int | None = getattr(config.plans[key], limit) if key is not None else None
    if key is None or maximum is None:
        return
    if int(await session.scalar(counted) or 0) >= maximum:
        plan = config.plans[key]
        raise PlanLimitReached(
            f"The {plan.name} plan allows {maximum} {what}; choose a larger plan to add more",
            details={"limit": what, "max": maximum, "plan": key},
        )


async def check_site_limit(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    """Before a site is created: is there room for it in the org's plan?"""
    counted = select(func.count()).select_from(Site).where(Site.org_id == org_id)
    await _enforce_limit(session, org_id=org_id, limit="max_sites", what="sites", counted=counted)


async def check_notification_limit(session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID) -> None:
    """Before a notification is created on a site: is there room for it in the org's plan?"""
    counted = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.org_id == org_id, Notification.site_id == site_id)
    )
    await _enforce_limit(
        session, org_id=org_id, limit="max_notifications", what="notifications per site", counted=counted
    )


async def _misfits(session: AsyncSession, *, org_id: uuid.UUID, plan: BillingPlan) -> list[dict[str, Any]]:
    """What the org has beyond ``plan``'s limits (a downgrade must not leave it there)."""
    found = []
    sites = int(await session.scalar(select(func.count()).select_from(Site).where(Site.org_id == org_id)) or 0)
    if plan.max_sites is not None and sites > plan.max_sites:
        found.append({"limit": "sites", "max": plan.max_sites, "current": sites})
    if plan.max_notifications is not None:
        most = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.org_id == org_id)
            .group_by(Notification.site_id)
            .order_by(func.count().desc())
            .limit(1)
        )
        if most is not None and int(most) > plan.max_notifications:
            found.append({"limit": "notifications per site", "max": plan.max_notifications, "current": int(most)})
    return found


# --- state --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillingState:
    """What the API and the console show of a site's subscription."""

    plan_key: str | None
    plan: BillingPlan | None
    status: str
    provider: str
    pending_plan: str | None
    period: Period
    usage: Usage
    sites: int
    site_notifications: int
    quota_reached_at: dt.datetime | None
    quota_until: dt.datetime | None
    collect_until: dt.datetime | None
    checkout_url: str | None = None

    @property
    def percent(self) -> float | None:
        quota = self.plan.monthly_visitors if self.plan else None
        return round(100 * self.usage.visitors / quota, 1) if quota else None

    @property
    def quota_state(self) -> str:
        """``ok``, ``silent`` (the widget shows nothing, events are stored) or ``stopped`` (nothing is stored)."""
        now = dt.datetime.now(dt.UTC)
        if self.quota_reached_at is None or self.quota_until is None or now >= self.quota_until:
            return "ok"
        return "stopped" if self.collect_until is not None and now >= self.collect_until else "silent"


async def billing_state(
    session: AsyncSession, *, org_id: uuid.UUID, site_id: uuid.UUID, checkout_url: str | None = None
) -> BillingState:
    """The org's plan with its usage in the current period, and this site's share of it."""
    config = settings_of(session).socialproof.billing
    await get_in_org(session, Site, site_id, org_id=org_id, missing="No such site")
    row = await subscription_of(session, org_id=org_id)
    now = dt.datetime.now(dt.UTC)
    period = current_period(row, now)
    key = plan_key_of(config, row)
    sites = int(await session.scalar(select(func.count()).select_from(Site).where(Site.org_id == org_id)) or 0)
    notifications = await session.scalar(
        select(func.count())
        .select_from(Notification)
        .where(Notification.org_id == org_id, Notification.site_id == site_id)
    )
    reached = row.quota_reached_at if row is not None and row.quota_until and row.quota_until > now else None
    return BillingState(
        plan_key=key,
        plan=config.plans[key] if key else None,
        status=row.status if row is not None else "active",
        provider=row.provider if row is not None else config.provider,
        pending_plan=row.pending_plan if row is not None else None,
        period=period,
        usage=await measure_usage(session, period=period, site_id=site_id),
        sites=sites,
        site_notifications=int(notifications or 0),
        quota_reached_at=reached,
        quota_until=row.quota_until if reached and row is not None else None,
        collect_until=reached + dt.timedelta(days=config.grace_days) if reached else None,
        checkout_url=checkout_url,
    )


def _apply_plan(row: Subscription, key: str) -> None:
    """A new plan starts its alerts and quota state afresh; the next check measures against it."""
    row.plan = key
    row.pending_plan = None if row.pending_plan == key else row.pending_plan
    row.alerted_percent = 0
    row.quota_reached_at = None
    row.quota_until = None


async def change_plan(
    session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, plan_key: str, return_url: str
) -> BillingState:
    """Change the org's plan from one of its sites: at once (manual provider, free plan, a running Stripe
    subscription) or through a Stripe Checkout whose URL the answer carries."""
    config = settings_of(session).socialproof.billing
    await get_in_org(session, Site, site_id, org_id=principal.org_id, missing="No such site")
    plan = config.plans.get(plan_key)
    if plan is None:
        raise Unprocessable(
            "No such plan",
            code="unknown_plan",
            details=[{"field": "body.plan", "message": f"one of {', '.join(config.plans)}", "type": "enum"}],
        )
    row = await _locked_row(session, org_id=principal.org_id)
    misfits = await _misfits(session, org_id=principal.org_id, plan=plan)
    if misfits:
        raise Conflict(
            f"The organization has more than the {plan.name} plan allows; remove some first",
            code="plan_too_small",
            details=misfits,
        )
    if row.plan == plan_key and row.provider == config.provider:
        return await billing_state(session, org_id=principal.org_id, site_id=site_id)
    email = None
    if principal.user_id is not None:
        email = (await accounts.get_member(session, org_id=principal.org_id, user_id=principal.user_id)).email
    change: Change = await provider_for(config).change_plan(
        Customer(principal.org_id, row.customer_id, row.provider_subscription_id),
        plan_key=plan_key,
        plan=plan,
        return_url=return_url,
        email=email,
    )
    row.provider = config.provider
    row.customer_id = change.customer_id or row.customer_id
    row.changed_by = principal.user_id
    if change.subscription is not None:
        _apply_stripe(config, row, change.subscription, created=int(dt.datetime.now(dt.UTC).timestamp()))
    elif change.applied:
        _apply_plan(row, plan_key)
        row.status = "active"
    else:
        row.pending_plan = plan_key
    await session.flush()
    if row.plan == plan_key:
        await _subscription_changed(session, row)
    return await billing_state(session, org_id=principal.org_id, site_id=site_id, checkout_url=change.checkout_url)


async def portal_url(session: AsyncSession, *, principal: Principal, site_id: uuid.UUID, return_url: str) -> str:
    """A Stripe Customer Portal session for the org (cards, invoices, cancellation)."""
    config = settings_of(session).socialproof.billing
    await get_in_org(session, Site, site_id, org_id=principal.org_id, missing="No such site")
    row = await subscription_of(session, org_id=principal.org_id)
    customer = Customer(principal.org_id, row.customer_id if row else None, None)
    return await provider_for(config).portal_url(customer, return_url=return_url)


# --- Stripe's webhooks ----------------------------------------------------------------------------------------


def _plan_of_price(config: BillingSettings, price_id: str | None) -> str | None:
    return next((key for key, plan in config.plans.items() if price_id and plan.stripe_price_id == price_id), None)


def _instant(seconds: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC) if isinstance(seconds, int) and seconds else None


def _apply_stripe(config: BillingSettings, row: Subscription, obj: Mapping[str, Any], *, created: int) -> bool:
    """Apply a Stripe subscription object as of ``created`` (older news than what was applied is ignored).
    Returns whether the plan changed."""
    if row.provider_event_created is not None and created < row.provider_event_created:
        return False
    row.provider_event_created = created
    status = str(obj.get("status") or "")
    items = (obj.get("items") or {}).get("data") or [{}]
    key = _plan_of_price(config, ((items[0] or {}).get("price") or {}).get("id"))
    before = row.plan
    row.provider = "stripe"
    row.customer_id = str(obj.get("customer") or row.customer_id or "") or None
    row.status = status or row.status
    if status in LIVE_STATUSES and key is not None:
        row.provider_subscription_id = str(obj.get("id"))
        row.period_start = _instant(obj.get("current_period_start"))
        row.period_end = _instant(obj.get("current_period_end"))
        if row.plan != key:
            _apply_plan(row, key)
    elif status in ("canceled", "incomplete_expired", "unpaid") and row.provider_subscription_id in (
        None,
        obj.get("id"),
    ):
        row.provider_subscription_id = None
        row.period_start = row.period_end = None
        if row.plan != fallback_plan(config):
            _apply_plan(row, fallback_plan(config))
        row.pending_plan = None
    return row.plan != before


async def accept_stripe_webhook(session: AsyncSession, *, body: bytes, signature: str) -> str:
    """A Stripe delivery (``Stripe-Signature``, the endpoint's signing secret): 401 when the signature does not
    hold; subscription events are applied to the org named in the subscription's ``metadata.org_id`` (which this
    platform sets at checkout) if the customer matches. Returns what was done."""
    config = settings_of(session).socialproof.billing
    if config.provider != "stripe" or not config.stripe_webhook_secret:
        raise NotFound("Stripe billing is not configured here")
    verdict = verify_stripe_signature(body, signature, config.stripe_webhook_secret)
    if verdict != "valid":
        log.warning("billing_webhook_signature_rejected", reason=verdict)
        if verdict == "expired":
            raise Unauthorized("The signature has expired (a replayed or late delivery)", code="signature_expired")
        raise Unauthorized("The signature does not match", code="invalid_signature")
    try:
        event = orjson.loads(body)
        kind, created, obj = str(event["type"]), int(event["created"]), event["data"]["object"]
        org_id = uuid.UUID(str((obj.get("metadata") or {}).get("org_id"))) if kind in STRIPE_EVENTS else None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise BadRequest("The delivery is not a Stripe event this endpoint can read", code="invalid_delivery") from None
    if org_id is None:
        return "ignored"
    await set_tenant_context(session, org_id=org_id)
    if await session.scalar(text("SELECT 1 FROM core.organizations WHERE id = :org"), {"org": org_id}) is None:
        log.warning("billing_webhook_unknown_org", event=event.get("id"))
        return "ignored"
    row = await _locked_row(session, org_id=org_id)
    if row.customer_id is not None and row.customer_id != obj.get("customer"):
        log.warning("billing_webhook_customer_mismatch", event=event.get("id"), org=str(org_id))
        return "ignored"
    changed = _apply_stripe(config, row, obj, created=created)
    await session.flush()
    if changed:
        await _subscription_changed(session, row)
    return "applied"


async def _subscription_changed(session: AsyncSession, row: Subscription) -> None:
    """The ``subscription.changed`` webhook, in the transaction that changed the plan."""
    await webhooks.emit(
        session,
        org_id=row.org_id,
        event_type="subscription.changed",
        data={
            "plan": row.plan,
            "status": row.status,
            "provider": row.provider,
            "periodEnd": row.period_end.isoformat() if row.period_end else None,
        },
    )


# --- quota --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetQuota:
    """What the public widget paths must do for a site of this org: show popups, and store events."""

    showing: bool = True
    collecting: bool = True


async def widget_quota(session: AsyncSession, *, org_id: uuid.UUID, grace_days: int) -> WidgetQuota:
    row = (
        await session.execute(
            select(Subscription.quota_reached_at, Subscription.quota_until).where(Subscription.org_id == org_id)
        )
    ).first()
    now = dt.datetime.now(dt.UTC)
    if row is None or row.quota_reached_at is None or row.quota_until is None or now >= row.quota_until:
        return WidgetQuota()
    return WidgetQuota(showing=False, collecting=now < row.quota_reached_at + dt.timedelta(days=grace_days))


async def ensure_collecting(session: AsyncSession, *, org_id: uuid.UUID) -> None:
    """Server-side events past the grace after the quota: 402 ``quota_exceeded`` (the merchant's backend sees why)."""
    grace = settings_of(session).socialproof.billing.grace_days
    if not (await widget_quota(session, org_id=org_id, grace_days=grace)).collecting:
        raise QuotaExceeded(
            f"The monthly visitor quota was reached more than {grace} days ago: events are not stored until the "
            "period ends or the plan grows"
        )


async def check_quota(session: AsyncSession, *, org_id: uuid.UUID, now: dt.datetime | None = None) -> list[int]:
    """Measure the bound org's usage against its quota; send the alerts it crossed (once per period) and mark the
    quota reached. Returns the alert percentages sent."""
    settings = settings_of(session)
    config = settings.socialproof.billing
    existing = await subscription_of(session, org_id=org_id)
    key = plan_key_of(config, existing)
    if key is None or config.plans[key].monthly_visitors is None:
        return []
    quota = config.plans[key].monthly_visitors
    assert quota is not None
    row = await _locked_row(session, org_id=org_id)
    now = now or dt.datetime.now(dt.UTC)
    period = current_period(row, now)
    if row.alert_period_start != period.start:
        row.alert_period_start, row.alerted_percent = period.start, 0
        row.quota_reached_at = row.quota_until = None
    usage = (await measure_usage(session, period=period)).visitors
    row.usage_visitors, row.usage_measured_at = usage, now
    percent = 100 * usage / quota
    crossed = [p for p in sorted(config.alert_percents) if row.alerted_percent < p <= percent]
    if percent >= 100 and row.quota_reached_at is None:
        row.quota_reached_at, row.quota_until = now, period.end
    sent: list[int] = []
    if crossed and await _send_alert(session, org_id=org_id, plan=config.plans[key], usage=usage, percent=crossed[-1]):
        row.alerted_percent, sent = crossed[-1], crossed
        await webhooks.emit(
            session,
            org_id=org_id,
            event_type="quota.reached",
            data={
                "plan": key,
                "percent": crossed[-1],
                "visitors": usage,
                "quota": quota,
                "periodStart": period.start.isoformat(),
                "periodEnd": period.end.isoformat(),
            },
        )
    await session.flush()
    return sent


async def _send_alert(session: AsyncSession, *, org_id: uuid.UUID, plan: BillingPlan, usage: int, percent: int) -> bool:
    """One e-mail to each founder and admin; False when it could not be sent (the next check tries again)."""
    settings = settings_of(session)
    config = settings.socialproof.billing
    quota = plan.monthly_visitors
    if percent >= 100:
        subject = f"Your sites reached their {plan.name} plan's {quota:,} monthly visitors"
        consequence = (
            "Popups are paused on all your sites until the period ends or you choose a larger plan. Events are "
            f"still recorded for {config.grace_days} days, so nothing is lost if you upgrade in that time."
        )
    else:
        subject = f"Your sites used {percent} % of their {plan.name} plan's monthly visitors"
        consequence = "At 100 % popups pause until the period ends or you choose a larger plan."
    body = (
        f"{usage:,} unique visitors so far this period, of {quota:,} in the {plan.name} plan.\n\n{consequence}\n\n"
        f"Plan and usage: {settings.public_url}/app/sites\n"
    )
    members = await accounts.members_of(session, org_id=org_id, roles=("founder", "admin"))
    try:
        for member in members:
            await send_email(
                settings.smtp, to=member.email, subject=subject, body=body, headers={"Auto-Submitted": "auto-generated"}
            )
    except OSError as exc:  # smtplib's errors are OSErrors, as is a dead server: the next check tries again
        log.warning("billing_alert_not_sent", org=str(org_id), percent=percent, error=type(exc).__name__)
        return False
    return True


async def has_sites(session: AsyncSession) -> bool:
    """Whether the bound org has any site (the periodic check skips the others)."""
    return bool(await session.scalar(select(func.count()).select_from(Site)))
