"""Request and response models of billing (``/sites/{siteId}/subscription``): plans, usage, quota state."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from northstar.core.http import CamelModel, RequestModel


class PlanPrice(CamelModel):
    amount: int = Field(description="in minor units of the currency (cents)")
    currency: str = Field(description="ISO 4217, lower case as Stripe writes it")


class PlanOut(CamelModel):
    key: str
    name: str
    monthly_visitors: int | None = Field(description="unique visitors a month over all the org's sites; null: no limit")
    max_sites: int | None
    max_notifications: int | None = Field(description="per site; null: no limit")
    price: PlanPrice = Field(description="a month")


class UsageOut(CamelModel):
    visitors: int = Field(description="unique visitors of all the org's sites this period (HyperLogLog estimate)")
    site_visitors: int = Field(description="this site's unique visitors this period")
    quota: int | None
    percent: float | None
    sites: int
    site_notifications: int = Field(description="notifications of this site")


class QuotaOut(CamelModel):
    state: Literal["ok", "silent", "stopped"] = Field(
        description="ok; silent: over quota, the widget shows nothing, events are still stored; "
        "stopped: the grace after reaching the quota passed, events are not stored until the period ends"
    )
    reached_at: datetime | None
    collect_until: datetime | None = Field(description="events are stored until then after the quota was reached")
    silent_until: datetime | None = Field(description="the end of the period the quota was reached in")


class SubscriptionOut(CamelModel):
    plan: PlanOut | None = Field(description="null: no plan (a self-hosted install's default): nothing is limited")
    status: str
    provider: Literal["manual", "stripe"]
    pending_plan: str | None = Field(description="a plan waiting for its checkout to complete")
    checkout_url: str | None = Field(None, description="where to pay for the plan asked for (Stripe Checkout)")
    period_start: datetime
    period_end: datetime
    usage: UsageOut
    quota: QuotaOut
    plans: list[PlanOut] = Field(description="the plans to choose from")


class SubscriptionChange(RequestModel):
    plan: str = Field(min_length=1, max_length=40, description="a plan's key, such as free, starter, growth, pro")


class PortalOut(CamelModel):
    url: str = Field(description="the provider's customer portal (cards, invoices, cancellation), valid briefly")


class WebhookReceipt(CamelModel):
    result: Literal["applied", "ignored"]
