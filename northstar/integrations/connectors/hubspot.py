"""HubSpot: the deals of a CRM account, read through the CRM search API, and the deal pipelines they move through.

Deals are searched by last modification: ``POST /crm/v3/objects/deals/search`` with ``hs_lastmodifieddate`` greater
than the cursor, oldest first, 100 a page, following ``paging.next.after``. A search answers at most 10,000 results,
so before ``after`` would pass that the query starts again from the newest modification seen (one millisecond
before it, so deals modified in the same millisecond are not skipped; reading a deal twice only updates it). The
cursor kept after each page is that restart point, so a sync that stops resumes from it, never from an offset into
a result set that may have changed since. Once every page is read, the cursor is set five minutes before the
newest modification, because HubSpot's search index shows a change some seconds after it is made. The search
endpoints allow 4 requests a second per account; every request waits for that rate.

The deal pipelines (``GET /crm/v3/pipelines/deals``) are read first on every sync: a stage's ``metadata.isClosed``
and ``probability`` (1 for the won stage) say whether a deal is closed and won when the deal lacks
``hs_is_closed``/``hs_is_closed_won``, and the weighted pipeline reads the stored stages' probabilities. Amounts
are decimal strings, kept as integer cents (hundredths of the currency unit); a deal's currency is its
``deal_currency_code``, else the account's (``config["currency"]``, or the company currency of
``GET /account-info/v3/details``). HubSpot delivers webhooks to HubSpot apps only (the subscription and its secret
belong to the app, not to an account's access token), so this connector polls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pydantic import Field

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
from northstar.metrics.inputs import PipelineDeal, SourceBatch

BASE_URL = "https://api.hubapi.com"
SEARCH_PATH = "/crm/v3/objects/deals/search"
PIPELINES_PATH = "/crm/v3/pipelines/deals"
ACCOUNT_PATH = "/account-info/v3/details"
PAGE_SIZE = 100
RESULT_CAP = 10_000
SEARCH_LAG_MS = 5 * 60 * 1000
SEARCH_REQUESTS_PER_SECOND = 4.0
PROPERTIES = (
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "deal_currency_code",
    "hs_is_closed",
    "hs_is_closed_won",
    "description",  # the deal's notes: DevBizOps links the work items they mention
)
MAX_AMOUNT = Decimal(10) ** 15  # currency units; beyond this an amount is not a deal's
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Settings(ConnectorSettings):
    """The integration's ``config``, checked before any request."""

    base_url: str = BASE_URL
    requests_per_second: float = Field(SEARCH_REQUESTS_PER_SECOND, gt=0, le=100)
    currency: str | None = Field(None, pattern=r"^[A-Za-z]{3}$", description="the account's currency (ISO 4217)")
    max_results_per_search: int = Field(
        RESULT_CAP,
        ge=PAGE_SIZE,
        le=RESULT_CAP,
        description="results one search query answers before it is started again",
    )


@dataclass(frozen=True)
class Stage:
    closed: bool
    won: bool


class HubSpotConnector(Connector):
    provider = "hubspot"
    title = "HubSpot"
    streams = ("pipelines", "deals")
    credential_fields = ("access_token",)
    settings_model = Settings

    def __init__(
        self, *, credentials: Mapping[str, str], config: Mapping[str, Any], client: VendorClient, settings: Settings
    ) -> None:
        super().__init__(credentials=credentials, config=config, client=client)
        self.settings = settings
        self.currency = (settings.currency or "").upper()
        self.stages: dict[tuple[str, str], Stage] = {}

    @classmethod
    def open(
        cls, *, credentials: Mapping[str, str], config: Mapping[str, Any], policy: OutboundPolicy
    ) -> HubSpotConnector:
        settings = validated(Settings, config)
        client = VendorClient(
            base_url=settings.base_url,
            policy=policy,
            headers={"Authorization": f"Bearer {credentials.get('access_token', '')}"},
            rate=RateLimit(settings.requests_per_second, burst=1),
        )
        return cls(credentials=credentials, config=config, client=client, settings=settings)

    async def test(self) -> None:
        await self.client.request_json("GET", PIPELINES_PATH)

    async def pages(self, stream: str, cursor: Mapping[str, Any] | None) -> AsyncIterator[Page]:
        if stream == "pipelines":
            yield Page(stream, await self._pipelines(), None)
            return
        if not self.currency:
            self.currency = account_currency(await self.client.request_json("GET", ACCOUNT_PATH))
        async for page in self._deals(int(cursor.get("since", 0)) if cursor else 0):
            yield page

    def normalise(self, stream: str, records: list[dict[str, Any]]) -> SourceBatch:
        if stream != "deals":
            return SourceBatch()
        return SourceBatch(deals=[pipeline_deal(record, self.stages, self.currency) for record in records])

    async def _pipelines(self) -> list[dict[str, Any]]:
        """The deal pipelines as HubSpot sends them; their stages are kept to normalise deals."""
        answer = await self.client.request_json("GET", PIPELINES_PATH)
        pipelines = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(pipelines, list) or not all(
            _has_id(pipeline)
            and isinstance(pipeline.get("stages"), list)
            and all(_has_id(stage) for stage in pipeline["stages"])
            for pipeline in pipelines
        ):
            raise VendorError("HubSpot sent deal pipelines that cannot be read")
        self.stages = {
            (pipeline["id"], stage["id"]): stage_of(stage) for pipeline in pipelines for stage in pipeline["stages"]
        }
        return pipelines

    async def _deals(self, since: int) -> AsyncIterator[Page]:
        """Deals modified after ``since`` (epoch milliseconds), oldest first (module docstring)."""
        after: str | None = None
        newest = since
        while True:
            body: dict[str, Any] = {
                "filterGroups": [
                    {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(since)}]}
                ],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": list(PROPERTIES),
                "limit": PAGE_SIZE,
            }
            if after is not None:
                body["after"] = after
            records, after = search_page(await self.client.request_json("POST", SEARCH_PATH, json=body))
            newest = max([newest, *(modified_ms(record) for record in records)])
            if after is None or not records:
                yield Page("deals", records, {"since": max(since, newest - SEARCH_LAG_MS)})
                return
            if not after.isdigit() or int(after) + PAGE_SIZE > self.settings.max_results_per_search:
                if newest <= since:
                    raise VendorError("HubSpot sent deals without modification dates; the search cannot go on")
                since, after = (newest - 1 if newest - 1 > since else newest), None
            yield Page("deals", records, {"since": max(since, newest - 1)})


def _has_id(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("id"), str) and bool(value["id"])


def search_page(answer: Any) -> tuple[list[dict[str, Any]], str | None]:
    """A search answer's deals and the ``after`` of the next page (None on the last)."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or not all(
        _has_id(record) and isinstance(record.get("properties"), dict) for record in results
    ):
        raise VendorError("HubSpot sent a deals search page that cannot be read")
    paging = answer.get("paging")
    following = paging.get("next") if isinstance(paging, dict) else None
    after = following.get("after") if isinstance(following, dict) else None
    if after is not None and not isinstance(after, str):
        raise VendorError("HubSpot sent a deals search page with an unreadable paging token")
    return results, after


def account_currency(answer: Any) -> str:
    currency = answer.get("companyCurrency") if isinstance(answer, dict) else None
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise VendorError("HubSpot sent no company currency; set config.currency")
    return currency.upper()


def stage_of(stage: Mapping[str, Any]) -> Stage:
    """A stage's ``metadata``: closed when ``isClosed``, won when closed with probability 1."""
    found = stage.get("metadata")
    metadata: Mapping[str, Any] = found if isinstance(found, dict) else {}
    closed = _flag(metadata.get("isClosed")) is True
    probability = _decimal(metadata.get("probability"))
    return Stage(closed=closed, won=closed and probability == 1)


def pipeline_deal(record: Mapping[str, Any], stages: Mapping[tuple[str, str], Stage], currency: str) -> PipelineDeal:
    """A search result as a pipeline deal; the deal's own closed/won flags win over its stage's."""
    properties = record["properties"]
    pipeline = str(properties.get("pipeline") or "default")[:255]
    stage_id = str(properties.get("dealstage") or "")[:255]
    stage = stages.get((pipeline, stage_id), Stage(closed=False, won=False))
    closed = _flag(properties.get("hs_is_closed"))
    won = _flag(properties.get("hs_is_closed_won"))
    closed = stage.closed if closed is None else closed
    code = properties.get("deal_currency_code")
    name = properties.get("dealname")
    return PipelineDeal(
        external_id=record["id"],
        name=str(name)[:500] if name else None,
        pipeline=pipeline,
        stage=stage_id,
        amount=cents(properties.get("amount")),
        currency=code.upper() if isinstance(code, str) and len(code) == 3 and code.isalpha() else currency,
        created_at=instant(properties.get("createdate")) or instant(record.get("createdAt")),
        close_date=instant(properties.get("closedate")),
        closed=closed,
        won=closed and (stage.won if won is None else won),
        updated_at=instant(properties.get("hs_lastmodifieddate")) or instant(record.get("updatedAt")),
    )


def _flag(value: Any) -> bool | None:
    """HubSpot's booleans are the strings "true" and "false"; anything else is unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def cents(value: Any) -> int | None:
    """A decimal amount ("1500.255") in cents, rounded half up (150026); None when there is none."""
    amount = _decimal(value)
    if amount is None or abs(amount) >= MAX_AMOUNT:
        return None
    return int((amount * 100).quantize(Decimal(1), ROUND_HALF_UP))


def instant(value: Any) -> dt.datetime | None:
    """An ISO 8601 time ("2025-03-17T15:00:00.000Z") or epoch milliseconds, as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    try:
        if value.isdigit():
            return EPOCH + dt.timedelta(milliseconds=int(value))
        found = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        return None
    return found if found.tzinfo else found.replace(tzinfo=dt.UTC)


def modified_ms(record: Mapping[str, Any]) -> int:
    """A search result's last modification, in epoch milliseconds (0 when it has none)."""
    found = instant(record["properties"].get("hs_lastmodifieddate")) or instant(record.get("updatedAt"))
    return (found - EPOCH) // dt.timedelta(milliseconds=1) if found else 0
