"""Shared fixtures of the social proof tests: merchant sites (set up through the authenticated API, used through the
public widget endpoints) and an app with a tiny GeoIP database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import netaddr
import psycopg
import pytest
from mmdb_writer import MMDBWriter

from northstar.app import create_app
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
STORED_COLUMNS = ("id", "event_type", "event_name", "notification_id", "visitor_id", "url", "payload", "occurred_at")


@dataclass(frozen=True)
class StoredEvent:
    """One row of ``socialproof.notification_events``, read as the database owner."""

    id: uuid.UUID
    event_type: str
    event_name: str | None
    notification_id: uuid.UUID | None
    visitor_id: str | None
    url: str | None
    payload: dict[str, Any]
    occurred_at: datetime


@dataclass
class WidgetSite:
    """A merchant's site: configured through the merchant API, visited through the public widget endpoints."""

    client: httpx.AsyncClient
    account: Account
    database_url: str
    site: dict[str, Any]
    events_key: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.site["id"])

    @property
    def key(self) -> str:
        return str(self.site["siteKey"])

    @property
    def domain(self) -> str:
        return str(self.site["domain"])

    @property
    def origin(self) -> str:
        return f"https://{self.domain}"

    def page(self, path: str = "/", *, host: str | None = None) -> str:
        return f"https://{host or self.domain}{path}"

    def browser(self, *, user_agent: str = CHROME_UA, origin: str | None = None) -> dict[str, str]:
        """The headers a desktop browser on one of the site's pages sends."""
        return {"User-Agent": user_agent, "Origin": origin or self.origin}

    async def update(self, **fields: Any) -> dict[str, Any]:
        response = await self.client.patch(f"/api/v1/sites/{self.id}", headers=self.account.headers, json=fields)
        assert response.status_code == 200, response.text
        self.site = response.json()["data"]
        return self.site

    async def notification(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Notification", "status": "active", **fields}
        response = await self.client.post(
            f"/api/v1/sites/{self.id}/notifications", headers=self.account.headers, json=body
        )
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])

    async def change_notification(self, notification_id: str, **changes: Any) -> dict[str, Any]:
        response = await self.client.patch(
            f"/api/v1/sites/{self.id}/notifications/{notification_id}", headers=self.account.headers, json=changes
        )
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    async def template(self, **fields: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/sites/{self.id}/templates", headers=self.account.headers, json={"name": "Template", **fields}
        )
        assert response.status_code == 201, response.text
        return dict(response.json()["data"])

    async def record(self, *events: dict[str, Any]) -> list[str]:
        """Server-side events (``POST /sites/{id}/events`` with a key scoped ``events:create``); returns their ids."""
        if not self.events_key:
            created = await self.client.post(
                "/api/v1/api-keys",
                headers=self.account.headers,
                json={"name": "backend", "role": "member", "scopes": ["events:create"]},
            )
            assert created.status_code == 201, created.text
            self.events_key = {"X-API-Key": created.json()["data"]["key"]}
        batch = [{"id": str(uuid.uuid4()), **event} for event in events]
        response = await self.client.post(
            f"/api/v1/sites/{self.id}/events", headers=self.events_key, json={"events": batch}
        )
        assert response.status_code == 202, response.text
        assert response.json()["data"] == {"accepted": len(batch), "duplicates": 0}
        return [str(event["id"]) for event in batch]

    async def collect(
        self,
        *events: dict[str, Any],
        client: httpx.AsyncClient | None = None,
        headers: dict[str, str] | None = None,
        **batch: Any,
    ) -> httpx.Response:
        """``POST /api/v1/collect`` as the widget sends it (``batch`` adds ``visitor``, ``sentAt``)."""
        return await (client or self.client).post(
            "/api/v1/collect",
            headers=headers or self.browser(),
            json={"siteKey": self.key, "events": list(events), **batch},
        )

    async def feed(
        self, url: str | None = None, *, client: httpx.AsyncClient | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await (client or self.client).get(
            f"/api/v1/widget/{self.key}/feed",
            params={"url": url or self.page()},
            headers=headers if headers is not None else self.browser(),
        )

    def stored(self) -> list[StoredEvent]:
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                f"SELECT {', '.join(STORED_COLUMNS)} FROM socialproof.notification_events"
                " WHERE site_id = %s ORDER BY occurred_at, url, id",
                (self.id,),
            ).fetchall()
        return [StoredEvent(*row) for row in rows]

    def stored_rows_as_text(self) -> list[str]:
        """Every stored row of the site, every column, as JSON text."""
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                "SELECT row_to_json(e)::text FROM socialproof.notification_events e WHERE site_id = %s", (self.id,)
            ).fetchall()
        return [str(row[0]) for row in rows]


SiteFactory = Callable[..., Awaitable[WidgetSite]]


@pytest.fixture
def make_site(client: httpx.AsyncClient, founder: Account, database_url: str) -> SiteFactory:
    """``await make_site(settings={...}, account=other)``: a new site on ``shop-<random>.example.com``."""

    async def make(*, account: Account | None = None, **fields: Any) -> WidgetSite:
        owner = account or founder
        body = {"name": "Trail shop", "domain": f"shop-{uuid.uuid4().hex[:10]}.example.com", **fields}
        response = await client.post("/api/v1/sites", headers=owner.headers, json=body)
        assert response.status_code == 201, response.text
        return WidgetSite(client=client, account=owner, database_url=database_url, site=response.json()["data"])

    return make


@pytest.fixture
async def site(make_site: SiteFactory) -> WidgetSite:
    return await make_site()


def widget_event(event_type: str, url: str, **fields: Any) -> dict[str, Any]:
    """One event as the widget sends it, with a fresh id."""
    return {"id": str(uuid.uuid4()), "type": event_type, "url": url, **fields}


GEO_NETWORK = "127.0.0.0/8"
GEO_RECORD = {"country": {"iso_code": "DE"}, "city": {"names": {"en": "Berlin"}}}


@pytest.fixture(scope="session")
def geoip_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MaxMind-format database: every loopback address is in Berlin, Germany."""
    path = tmp_path_factory.mktemp("geoip") / "city.mmdb"
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-City", languages=["en"])
    writer.insert_network(netaddr.IPSet([GEO_NETWORK]), GEO_RECORD)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="session")
async def geo_client(settings: Settings, geoip_database: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on the same database with the GeoIP database configured (requests come from 127.0.0.1)."""
    configured = settings.model_copy(
        update={"socialproof": settings.socialproof.model_copy(update={"geoip_database": geoip_database})}
    )
    async with running(create_app(configured)) as http:
        yield http
