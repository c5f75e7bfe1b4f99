"""Google Analytics 4: sessions, users, new users and key events per day and channel, from the Data API.

One report (``POST /v1beta/properties/{id}:runReport``) by ``date`` and ``sessionDefaultChannelGroup``, ordered by
both so that ``limit``/``offset`` pages are stable, read page by page until ``rowCount`` rows are in; the cursor
inside a report is its date range and the offset reached, so a killed sync resumes with the next page. GA4 keeps
processing a day for a while after it ends, so once a report is done the cursor is its last complete date, and the
next sync reads the last three complete days again (and today, partial) before going on; the first one reads
``backfill_days`` (400) days. A row replaces what was stored for its day and channel. Ordering by date keeps the
offsets of settled days fixed while recent days change under a running sync.

Requests carry an OAuth access token (scope ``analytics.readonly``). When Google answers 401 and a refresh token with
its OAuth client is stored, a new access token is fetched from ``token_uri`` and the request is made once more.
Quota errors (429 ``RESOURCE_EXHAUSTED``) and 5xx answers are retried with backoff.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ConfigDict, Field

from northstar.core.outbound import OutboundPolicy
from northstar.integrations.connectors.base import (
    Connector,
    ConnectorSettings,
    CredentialsRejected,
    Page,
    RateLimit,
    VendorClient,
    VendorError,
    validated,
)
from northstar.metrics.inputs import SourceBatch, TrafficDay

BASE_URL = "https://analyticsdata.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address, not a secret
DIMENSIONS = ("date", "sessionDefaultChannelGroup")
METRICS = ("sessions", "totalUsers", "newUsers", "keyEvents")
PAGE_SIZE = 5000
BACKFILL_DAYS = 400
SETTLING_DAYS = 3
CHANNEL_LENGTH = 100


class Settings(ConnectorSettings):
    """The integration's ``config``, checked before any request."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    property_id: str = Field(pattern=r"^[0-9]{1,20}$", description="the numeric GA4 property id")
    base_url: str = Field(BASE_URL, pattern=r"^https?://")
    token_uri: str = Field(TOKEN_URI, pattern=r"^https?://")
    requests_per_second: float = Field(1.0, gt=0, le=100)
    backfill_days: int = Field(BACKFILL_DAYS, ge=1, le=5000)


class GoogleAnalyticsConnector(Connector):
    provider = "google_analytics"
    title = "Google Analytics"
    streams = ("traffic",)
    credential_fields = ("access_token", "refresh_token", "client_id", "client_secret")
    settings_model = Settings

    def __init__(
        self,
        *,
        credentials: Mapping[str, str],
        config: Mapping[str, Any],
        client: VendorClient,
        tokens: VendorClient,
        settings: Settings,
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.tokens = tokens
        self.settings = settings

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> GoogleAnalyticsConnector:
        settings = validated(Settings, config)
        client = VendorClient(
            base_url=settings.base_url,
            policy=policy,
            headers={"Authorization": f"Bearer {credentials.get('access_token', '')}"},
            rate=RateLimit(settings.requests_per_second, burst=2),
        )
        tokens = VendorClient(base_url="", headers={}, policy=policy, rate=RateLimit(1.0, burst=1))
        return cls(credentials=credentials, config=config, client=client, tokens=tokens, settings=settings)

    async def test(self) -> None:
        await self._call("GET", f"/v1beta/properties/{self.settings.property_id}/metadata")

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        today = dt.datetime.now(dt.UTC).date()
        if cursor is not None and "offset" in cursor:
            start, end = dt.date.fromisoformat(cursor["start"]), dt.date.fromisoformat(cursor["end"])
            offset = int(cursor["offset"])
        else:
            complete = cursor.get("complete_through") if cursor else None
            start = (
                dt.date.fromisoformat(complete) - dt.timedelta(days=SETTLING_DAYS - 1)
                if complete
                else today - dt.timedelta(days=self.settings.backfill_days)
            )
            start, end, offset = min(start, today), today, 0
        while True:
            report = await self._call(
                "POST",
                f"/v1beta/properties/{self.settings.property_id}:runReport",
                json=report_request(start, end, offset),
            )
            records, received, total = report_rows(report)
            offset += received
            if received and offset < total:
                yield Page(stream, records, {"start": start.isoformat(), "end": end.isoformat(), "offset": offset})
                continue
            yield Page(stream, records, {"complete_through": (end - dt.timedelta(days=1)).isoformat()})
            return

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        return SourceBatch(traffic=[traffic_day(record) for record in records])

    async def close(self) -> None:
        await self.tokens.close()
        await super().close()

    async def _call(self, method: str, path: str, **options: Any) -> Any:
        """A Data API request; on a 401, once more with a refreshed access token (when one can be had)."""
        try:
            return await self.client.request_json(method, path, **options)
        except CredentialsRejected:
            if not all(self.credentials.get(name) for name in ("refresh_token", "client_id", "client_secret")):
                raise
        self.client.http.headers["Authorization"] = f"Bearer {await self._refreshed_token()}"
        return await self.client.request_json(method, path, **options)

    async def _refreshed_token(self) -> str:
        """A new access token from the OAuth token endpoint (the refresh token grant)."""
        try:
            answer = await self.tokens.request_json(
                "POST",
                self.settings.token_uri,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": self.credentials["refresh_token"],
                    "client_id": self.credentials["client_id"],
                    "client_secret": self.credentials["client_secret"],
                },
            )
        except VendorError as exc:
            if "invalid_grant" in str(exc):
                raise CredentialsRejected(
                    "Google refused the refresh token (invalid_grant): it was revoked or has "
                    "expired; connect the account again"
                ) from None
            raise
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise VendorError("Google's token endpoint answered without an access token")
        return token


def report_request(start: dt.date, end: dt.date, offset: int) -> dict[str, Any]:
    """The runReport body: one page of the report by day and channel between two dates (both included)."""
    return {
        "dateRanges": [{"startDate": start.isoformat(), "endDate": end.isoformat()}],
        "dimensions": [{"name": name} for name in DIMENSIONS],
        "metrics": [{"name": name} for name in METRICS],
        "orderBys": [{"dimension": {"dimensionName": name}} for name in DIMENSIONS],
        "limit": PAGE_SIZE,
        "offset": offset,
    }


def report_rows(report: Any) -> tuple[list[dict[str, Any]], int, int]:
    """A report's rows as records named by their columns (each with an ``id``: day and channel), how many rows it
    had, and its ``rowCount``. GA4 leaves ``rows`` and ``rowCount`` out of a report without rows."""
    if not isinstance(report, dict):
        raise VendorError("Google Analytics sent a report that is not an object")
    rows = report.get("rows") or []
    total = report.get("rowCount") or 0
    if not isinstance(rows, list) or not isinstance(total, int):
        raise VendorError("Google Analytics sent a report without a list of rows")
    if rows:
        names = [
            header.get("name") if isinstance(header, dict) else None
            for part in ("dimensionHeaders", "metricHeaders")
            for header in report.get(part) or []
        ]
        if names != [*DIMENSIONS, *METRICS]:
            raise VendorError("Google Analytics sent a report with other columns than asked for")
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        try:
            values = [cell["value"] for part in ("dimensionValues", "metricValues") for cell in row[part]]
        except (KeyError, TypeError):
            raise VendorError("Google Analytics sent a report row without its values") from None
        if len(values) != len(DIMENSIONS) + len(METRICS) or not all(isinstance(value, str) for value in values):
            raise VendorError("Google Analytics sent a report row with missing values")
        record: dict[str, Any] = dict(zip((*DIMENSIONS, *METRICS), values, strict=True))
        record["sessionDefaultChannelGroup"] = record["sessionDefaultChannelGroup"][:CHANNEL_LENGTH] or "(not set)"
        record["id"] = f"{record['date'][:8]}/{record['sessionDefaultChannelGroup']}"
        records[record["id"]] = record
    return list(records.values()), len(rows), total


def traffic_day(record: Mapping[str, Any]) -> TrafficDay:
    """A report row as a traffic day (``conversions`` are GA4's key events)."""
    try:
        day = dt.datetime.strptime(record["date"], "%Y%m%d").date()
        sessions, users, new_users = (int(record[name]) for name in ("sessions", "totalUsers", "newUsers"))
        conversions = Decimal(record["keyEvents"])
    except (KeyError, ValueError, InvalidOperation):
        raise VendorError(f"Google Analytics sent a row that is not a day of traffic ({record.get('id')})") from None
    if not conversions.is_finite() or min(sessions, users, new_users) < 0 or conversions < 0:
        raise VendorError(f"Google Analytics sent a row with impossible numbers ({record.get('id')})")
    return TrafficDay(
        day=day,
        channel=record["sessionDefaultChannelGroup"],
        sessions=sessions,
        users=users,
        new_users=new_users,
        conversions=conversions,
    )
