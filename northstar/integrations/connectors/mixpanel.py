"""Mixpanel: every raw event, from the raw export API, for active users, event counts and stickiness.

``GET /api/2.0/export?project_id=…&from_date=…&to_date=…`` with HTTP basic auth (a service account's username and
secret) answers JSON lines, one event a line; its days are UTC (the project's time zone for projects created before
2023). The export is read ``days_per_request`` days (7) per request, and each range's last complete day is the
cursor ("exported through"), so a killed sync resumes with the next range. Events arrive late (devices that were
offline send them later), so each sync exports the last two exported days again; an event is kept once per
``$insert_id`` (an event without one gets an id made of its name, distinct id and time), so an overlap never counts
twice. The first sync reads ``backfill_days`` (90) days. The export allows 60 queries an hour and 3 at once: by
default requests are spaced a minute apart after a burst of three.

An answer that is not JSON lines is retried, then fails the run naming the line; a line that is not an event (no
name, no properties or no time) fails it too. A range is stored whole or not at all, never silently in part.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from pydantic import ConfigDict, Field

from northstar.core.outbound import OutboundPolicy
from northstar.integrations.connectors.base import (
    Connector,
    ConnectorSettings,
    Page,
    RateLimit,
    VendorClient,
    VendorError,
    validated,
)
from northstar.metrics.inputs import AnalyticsEvent, SourceBatch

BASE_URL = "https://data.mixpanel.com"
EXPORT_PATH = "/api/2.0/export"
QUERIES_PER_HOUR = 60
CONCURRENT_QUERIES = 3
BACKFILL_DAYS = 90
OVERLAP_DAYS = 2
PAGE_RECORDS = 2000  # records stored per transaction
TEXT_LENGTH = 255
MILLISECONDS_FROM = 10**11  # a larger time is in milliseconds (10^11 seconds is the year 5138)
LATEST_SECONDS = 253402300799  # 9999-12-31T23:59:59Z


class Settings(ConnectorSettings):
    """The integration's ``config``, checked before any request."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    project_id: str = Field(pattern=r"^[0-9]{1,20}$", description="the numeric Mixpanel project id")
    base_url: str = Field(BASE_URL, pattern=r"^https?://")
    requests_per_second: float = Field(QUERIES_PER_HOUR / 3600, gt=0, le=100)
    backfill_days: int = Field(BACKFILL_DAYS, ge=1, le=5000)
    days_per_request: int = Field(7, ge=1, le=366)


class MixpanelConnector(Connector):
    provider = "mixpanel"
    title = "Mixpanel"
    streams = ("events",)
    credential_fields = ("secret", "username")
    settings_model = Settings

    def __init__(
        self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient, settings: Settings
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.settings = settings

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> MixpanelConnector:
        settings = validated(Settings, config)
        account = f"{credentials.get('username', '')}:{credentials.get('secret', '')}".encode()
        client = VendorClient(
            base_url=settings.base_url,
            policy=policy,
            headers={"Authorization": f"Basic {base64.b64encode(account).decode()}", "Accept": "text/plain"},
            rate=RateLimit(settings.requests_per_second, burst=CONCURRENT_QUERIES),
        )
        return cls(credentials=credentials, config=config, client=client, settings=settings)

    async def test(self) -> None:
        yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).date()
        await self.client.request_lines("GET", EXPORT_PATH, params={**self._range(yesterday, yesterday), "limit": 1})

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        today = dt.datetime.now(dt.UTC).date()
        through = cursor.get("exported_through") if cursor else None
        start = (
            dt.date.fromisoformat(through) - dt.timedelta(days=OVERLAP_DAYS - 1)
            if through
            else today - dt.timedelta(days=self.settings.backfill_days)
        )
        while start <= today:
            end = min(start + dt.timedelta(days=self.settings.days_per_request - 1), today)
            lines = await self.client.request_lines("GET", EXPORT_PATH, params=self._range(start, end))
            events = list(
                {
                    record["id"]: record
                    for record in (event_record(line, number, start, end) for number, line in enumerate(lines, start=1))
                }.values()
            )
            done = {"exported_through": min(end, today - dt.timedelta(days=1)).isoformat()}
            parts = [events[first : first + PAGE_RECORDS] for first in range(0, len(events), PAGE_RECORDS)] or [[]]
            for number, part in enumerate(parts, start=1):
                yield Page(stream, part, done if number == len(parts) else None)
            start = end + dt.timedelta(days=1)

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        return SourceBatch(events=[analytics_event(record) for record in records])

    def _range(self, start: dt.date, end: dt.date) -> dict[str, str]:
        return {"project_id": self.settings.project_id, "from_date": start.isoformat(), "to_date": end.isoformat()}


def event_record(line: Any, number: int, start: dt.date, end: dt.date) -> dict[str, Any]:
    """An exported line as a record: the event as sent, with its ``id`` (the insert id, or one made for it)."""
    if (
        not isinstance(line, dict)
        or not isinstance(line.get("event"), str)
        or not isinstance(line.get("properties"), dict)
    ):
        raise VendorError(f"Mixpanel sent a line that is not an event (export {start} to {end}, line {number})")
    seconds = _seconds(line["properties"].get("time"))
    if seconds is None:
        raise VendorError(f"Mixpanel sent an event without a usable time (export {start} to {end}, line {number})")
    properties = line["properties"]
    given = properties.get("$insert_id")
    if isinstance(given, str) and 0 < len(given) <= TEXT_LENGTH:
        insert_id = given
    else:
        source = (
            given
            if isinstance(given, str) and given
            else f"{line['event']}\n{_text(properties.get('distinct_id'))}\n{properties['time']}"
        )
        insert_id = "sha256:" + hashlib.sha256(source.encode()).hexdigest()
    return {**line, "id": insert_id}


def analytics_event(record: Mapping[str, Any]) -> AnalyticsEvent:
    properties = record["properties"]
    seconds = _seconds(properties.get("time"))
    if seconds is None:
        raise VendorError(f"a Mixpanel event without a usable time ({record.get('id')})")
    return AnalyticsEvent(
        insert_id=str(record["id"]),
        name=str(record["event"])[:TEXT_LENGTH],
        distinct_id=_text(properties.get("distinct_id"))[:TEXT_LENGTH],
        occurred_at=dt.datetime.fromtimestamp(seconds, dt.UTC),
    )


def _seconds(time: Any) -> float | None:
    """Mixpanel's ``time``: unix seconds, or milliseconds (projects that send them); None if it is not a time."""
    if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
        return None
    seconds = time / 1000 if time >= MILLISECONDS_FROM else float(time)
    return seconds if 0 <= seconds <= LATEST_SECONDS else None


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()
