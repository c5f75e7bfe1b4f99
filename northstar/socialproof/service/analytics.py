"""Site analytics from the rollups (never from raw events): totals, per notification, and a time series.

Counts come from ``event_counts``, unique visitors from the ``visitor_sketches`` merged with the hashes not yet
folded in. Days, weeks and months are those of the requested time zone (the site's by default): the daily rollups
are kept in the site's zone, so its days are exact; for another zone days are made of UTC hours (exact for every
zone whose offset is whole hours). Minutes and hours are labelled in the requested zone.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import Unprocessable
from northstar.socialproof.models import NO_NOTIFICATION, Notification
from northstar.socialproof.schemas.analytics import Analytics, Granularity, Metrics, NotificationMetrics, SeriesPoint
from northstar.socialproof.service.sites import get_notification, get_site
from northstar.socialproof.sketch import Sketch

MAX_POINTS = 5000
DEFAULT_DAYS = 30
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
COUNTED = {
    "impression": "impressions",
    "hover": "hovers",
    "click": "clicks",
    "close": "closes",
    "conversion": "conversions",
    "page_view": "page_views",
}
_STEPS = {"minute": dt.timedelta(minutes=1), "hour": dt.timedelta(hours=1)}
_DAYS = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7)}


def _field_error(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        "The analytics query is not valid",
        details=[{"field": f"query.{field}", "message": message, "type": "value_error"}],
    )


def _parse_moment(value: str, field: str, zone: zoneinfo.ZoneInfo, *, end: bool) -> dt.datetime:
    """A date (``2026-11-01``: that day in ``zone``; as an end, the whole day is included) or an ISO datetime,
    from ``FIRST_DAY`` to ``LAST_DAY`` (422 outside: there are no events there, and 9999-12-31 has no next day)."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time(), zone)
        else:
            moment = dt.datetime.fromisoformat(value)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=zone)
            day = moment.date()
    except ValueError:
        raise _field_error(field, "a date (YYYY-MM-DD) or an ISO 8601 date and time") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise _field_error(field, f"a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return moment + dt.timedelta(days=1) if end and len(value) == 10 else moment


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    zone: zoneinfo.ZoneInfo
    granularity: Granularity
    grain: str  # the rollup grain read: minute, hour or day

    def floor(self, moment: dt.datetime) -> dt.datetime:
        """The start of the bucket containing ``moment``."""
        if self.granularity in _STEPS:
            step = int(_STEPS[self.granularity].total_seconds())
            return dt.datetime.fromtimestamp(int(moment.timestamp()) // step * step, dt.UTC).astimezone(self.zone)
        local = moment.astimezone(self.zone)
        day = local.date()
        if self.granularity == "week":
            day -= dt.timedelta(days=day.weekday())
        elif self.granularity == "month":
            day = day.replace(day=1)
        return dt.datetime.combine(day, dt.time(), self.zone)

    def after(self, bucket: dt.datetime) -> dt.datetime:
        if self.granularity in _STEPS:
            return (bucket + _STEPS[self.granularity]).astimezone(self.zone)
        day = bucket.date()
        if self.granularity == "month":
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day += dt.timedelta(days=7 if self.granularity == "week" else 1)
        return dt.datetime.combine(day, dt.time(), self.zone)

    def buckets(self) -> list[dt.datetime]:
        out, bucket = [], self.start
        while bucket < self.end:
            out.append(bucket)
            bucket = self.after(bucket)
        return out


def resolve_window(
    *,
    start: str | None,
    end: str | None,
    granularity: Granularity,
    timezone: str,
    site_timezone: str,
    now: dt.datetime | None = None,
) -> Window:
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _field_error("timezone", "not an IANA time zone (like Europe/Berlin)") from None
    now = now or dt.datetime.now(dt.UTC)
    end_at = (
        _parse_moment(end, "end", zone, end=True)
        if end
        else dt.datetime.combine(now.astimezone(zone).date() + dt.timedelta(days=1), dt.time(), zone)
    )
    start_at = _parse_moment(start, "start", zone, end=False) if start else end_at - dt.timedelta(days=DEFAULT_DAYS)
    if start_at >= end_at:
        raise _field_error("start", "must be before end")
    grain = granularity if granularity in _STEPS else ("day" if timezone == site_timezone else "hour")
    window = Window(start_at, end_at, zone, granularity, grain)
    aligned = Window(window.floor(start_at), end_at, zone, granularity, grain)
    last = aligned.floor(end_at - dt.timedelta(microseconds=1))
    aligned = Window(aligned.start, aligned.after(last), zone, granularity, grain)
    points: float
    if granularity == "month":
        points = (aligned.end.year - aligned.start.year) * 12 + aligned.end.month - aligned.start.month
    else:
        points = (aligned.end - aligned.start) / (_STEPS.get(granularity) or _DAYS[granularity])
    if points > MAX_POINTS:
        raise _field_error(
            "granularity", f"more than {MAX_POINTS} points; choose a coarser granularity or a shorter range"
        )
    return aligned


def _label_sql(granularity: Granularity, column: str) -> str:
    """The bucket of a row: minutes and hours of UTC (which every zone's minutes and hours are made of), days,
    weeks and months of the requested zone."""
    zone = "'UTC'" if granularity in _STEPS else "CAST(:tz AS text)"
    return f"date_trunc('{granularity}', {column}, {zone})"


_COUNTS = (
    "SELECT {label} AS label, notification_id, event_type, sum(events) AS events FROM socialproof.event_counts"
    " WHERE site_id = :site AND grain = :grain AND bucket >= :start AND bucket < :end GROUP BY 1, 2, 3"
)
_SKETCHES = (
    "SELECT {label} AS label, notification_id, registers FROM socialproof.visitor_sketches"
    " WHERE site_id = :site AND grain = :grain AND bucket >= :start AND bucket < :end"
)
# Unfolded hashes, one array per bucket and notification: a busy site leaves thousands of small rows a minute, and a
# sketch per row cost 68 ms for 6,000 of them (one per group: 10 ms).
_PENDING = (
    "SELECT {label} AS label, notification_id, array_agg(hash) AS hashes"
    " FROM socialproof.visitor_hashes, unnest(hashes) AS hash"
    " WHERE site_id = :site AND minute >= :start AND minute < :end GROUP BY 1, 2"
)


class _Tally:
    """Counts and sketches by bucket and notification, folded into the response's three views."""

    def __init__(self) -> None:
        self.counts: dict[dt.datetime, dict[uuid.UUID, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.sketches: dict[dt.datetime, dict[uuid.UUID, Sketch]] = defaultdict(dict)

    def count(self, bucket: dt.datetime, notification_id: uuid.UUID, event_type: str, events: int) -> None:
        if event_type in COUNTED:
            self.counts[bucket][notification_id][COUNTED[event_type]] += events

    def visitors(self, bucket: dt.datetime, notification_id: uuid.UUID, visitors: Sketch) -> None:
        found = self.sketches[bucket]
        found[notification_id] = found[notification_id].merge(visitors) if notification_id in found else visitors

    def metrics(
        self, buckets: list[dt.datetime], notification_id: uuid.UUID | None, *, page_views: bool
    ) -> dict[str, Any]:
        """``notification_id`` None: the whole site (all notifications, every visitor)."""
        totals: dict[str, int] = defaultdict(int)
        merged = Sketch()
        subject = NO_NOTIFICATION if notification_id is None else notification_id
        for bucket in buckets:
            for counted_id, counted in self.counts.get(bucket, {}).items():
                if counted_id == NO_NOTIFICATION:
                    totals["page_views"] += counted.get("page_views", 0)
                elif notification_id in (None, counted_id):
                    for name, value in counted.items():
                        totals[name] += value
            visitors = self.sketches.get(bucket, {}).get(subject)
            if visitors is not None:
                merged.merge(visitors)
        impressions, clicks, conversions = totals["impressions"], totals["clicks"], totals["conversions"]
        return {
            "impressions": impressions,
            "hovers": totals["hovers"],
            "clicks": clicks,
            "closes": totals["closes"],
            "conversions": conversions,
            "page_views": totals["page_views"] if page_views else 0,
            "unique_visitors": merged.estimate(),
            "ctr": round(clicks / impressions, 4) if impressions else None,
            "conversion_rate": round(conversions / clicks, 4) if clicks else None,
        }


def _aware(label: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    return label.astimezone(zone)


async def site_analytics(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    site_id: uuid.UUID,
    start: str | None,
    end: str | None,
    granularity: Granularity,
    timezone: str | None,
    notification_id: uuid.UUID | None,
) -> Analytics:
    site = await get_site(session, org_id=org_id, site_id=site_id)
    if notification_id is not None:
        await get_notification(session, org_id=org_id, site_id=site.id, notification_id=notification_id)
    site_timezone = str(site.settings.get("timezone") or "UTC")
    window = resolve_window(
        start=start, end=end, granularity=granularity, timezone=timezone or site_timezone, site_timezone=site_timezone
    )
    params = {"site": site.id, "grain": window.grain, "start": window.start, "end": window.end, "tz": window.zone.key}
    tally = _Tally()
    for row in await session.execute(text(_COUNTS.format(label=_label_sql(granularity, "bucket"))), params):
        tally.count(_aware(row.label, window.zone), row.notification_id, row.event_type, int(row.events))
    for row in await session.execute(text(_SKETCHES.format(label=_label_sql(granularity, "bucket"))), params):
        tally.visitors(_aware(row.label, window.zone), row.notification_id, Sketch.decode(row.registers))
    for row in await session.execute(text(_PENDING.format(label=_label_sql(granularity, "minute"))), params):
        tally.visitors(_aware(row.label, window.zone), row.notification_id, Sketch.of(row.hashes))
    names = dict(
        (
            await session.execute(
                select(Notification.id, Notification.name)
                .where(Notification.org_id == org_id, Notification.site_id == site.id)
                .order_by(Notification.created_at)
            )
        ).all()
    )
    buckets = window.buckets()
    return Analytics(
        site_id=site.id,
        start=window.start,
        end=window.end,
        timezone=window.zone.key,
        granularity=granularity,
        totals=Metrics(**tally.metrics(buckets, notification_id, page_views=True)),
        notifications=[
            NotificationMetrics(notification_id=nid, name=name, **tally.metrics(buckets, nid, page_views=False))
            for nid, name in names.items()
            if notification_id in (None, nid)
        ],
        series=[
            SeriesPoint(bucket=bucket, **tally.metrics([bucket], notification_id, page_views=True))
            for bucket in buckets
        ],
    )
