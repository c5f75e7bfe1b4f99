"""Analytics of a site's notifications: totals, per notification, and a time series."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from northstar.core.http import CamelModel

Granularity = Literal["minute", "hour", "day", "week", "month"]


class Metrics(CamelModel):
    impressions: int = Field(description="popups shown")
    hovers: int
    clicks: int
    closes: int = Field(description="popups dismissed")
    conversions: int = Field(description="goal events within 7 days after a click, one per visitor and notification")
    unique_visitors: int = Field(description="distinct visitors (HyperLogLog estimate, about 1.6 % standard error)")
    page_views: int = Field(description="for the site (zero per notification)")
    ctr: float | None = Field(description="clicks / impressions; null without impressions")
    conversion_rate: float | None = Field(description="conversions / clicks; null without clicks")


class NotificationMetrics(Metrics):
    notification_id: uuid.UUID
    name: str


class SeriesPoint(Metrics):
    bucket: datetime = Field(description="start of the bucket, in the requested time zone")


class Analytics(CamelModel):
    site_id: uuid.UUID
    start: datetime = Field(description="inclusive, aligned to the granularity")
    end: datetime = Field(description="exclusive")
    timezone: str
    granularity: Granularity
    totals: Metrics
    notifications: list[NotificationMetrics]
    series: list[SeriesPoint]
