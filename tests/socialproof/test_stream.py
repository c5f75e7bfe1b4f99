"""Server-sent events for social proof: the merchant's live stream of a site (with Last-Event-ID replay) and the
widget's live feed, through a real server on a loopback port."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from northstar.app import create_app
from northstar.demo.loopback import serving
from northstar.settings import Settings
from tests.factories import Account

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"


@pytest.fixture(scope="module")
async def served(settings: Settings) -> AsyncIterator[str]:
    async with serving(create_app(settings)) as url:
        yield url


class Frames:
    """The frames of one event stream, read as a browser's EventSource would."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, within: float = 10.0) -> dict[str, str]:
        frame: dict[str, str] = {}
        async with asyncio.timeout(within):
            async for line in self.lines:
                if not line:
                    if "event" in frame or "data" in frame:
                        return frame
                    continue
                name, _, value = line.partition(":")
                if name:  # a line starting with ':' is a keep-alive comment
                    frame[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    async def next_of(self, event: str, within: float = 10.0) -> dict[str, str]:
        while True:
            frame = await self.next(within)
            if frame.get("event") == event:
                return frame


async def _site(http: httpx.AsyncClient, founder: Account) -> dict[str, Any]:
    response = await http.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


async def _page_views(http: httpx.AsyncClient, site: dict[str, Any], count: int) -> None:
    body = {
        "siteKey": site["siteKey"],
        "events": [
            {"id": str(uuid.uuid4()), "type": "page_view", "url": f"https://{site['domain']}/"} for _ in range(count)
        ],
    }
    response = await http.post(
        "/api/v1/collect",
        content=orjson.dumps(body),
        headers={"Origin": f"https://{site['domain']}", "User-Agent": CHROME},
    )
    assert response.status_code == 202, response.text


async def test_a_sites_live_events_and_what_a_reconnect_missed(served: str, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=15) as http:
        site, other = await _site(http, founder), await _site(http, founder)
        params = {"siteId": site["id"], "topics": "socialproof.events"}
        async with http.stream("GET", "/events/stream", params=params, headers=founder.headers) as response:
            assert response.status_code == 200
            frames = Frames(response)
            assert (await frames.next())["event"] == "ready"
            await _page_views(http, other, 1)  # another site of the same org: filtered out
            await _page_views(http, site, 2)
            first = await frames.next_of("socialproof.events")
        data = orjson.loads(first["data"])
        assert data["siteId"] == site["id"] and data["counts"] == {"page_view": 2} and len(data["events"]) == 2
        await _page_views(http, site, 1)  # while disconnected
        await _page_views(http, site, 3)
        await asyncio.sleep(0.3)
        headers = {**founder.headers, "Last-Event-ID": first["id"]}
        async with http.stream("GET", "/events/stream", params=params, headers=headers) as response:
            frames = Frames(response)
            assert (await frames.next())["event"] == "ready"
            missed = [orjson.loads((await frames.next_of("socialproof.events"))["data"])["total"] for _ in range(2)]
        assert missed == [1, 3]
        headers = {**founder.headers, "Last-Event-ID": "0000000000001-gone"}
        async with http.stream("GET", "/events/stream", params=params, headers=headers) as response:
            assert (await Frames(response).next())["event"] == "reset"  # too old to replay: reload, then go on


async def test_the_stream_of_another_orgs_site_is_not_reachable(
    served: str, founder: Account, other_founder: Account
) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=15) as http:
        theirs = await _site(http, other_founder)
        foreign = await http.get("/events/stream", params={"siteId": theirs["id"]}, headers=founder.headers)
        missing = await http.get("/events/stream", params={"siteId": str(uuid.uuid4())}, headers=founder.headers)
        assert foreign.status_code == missing.status_code == 404 and foreign.json() == missing.json()
        anonymous = await http.get("/events/stream", params={"siteId": theirs["id"]})
        assert anonymous.status_code == 401
        wrong_origin = await http.get(
            "/events/stream",
            params={"siteKey": theirs["siteKey"], "url": f"https://{theirs['domain']}/"},
            headers={"Origin": "https://evil.example"},
        )
        assert wrong_origin.status_code == 403 and wrong_origin.json()["error"]["code"] == "origin_not_allowed"


async def test_the_widget_live_feed_follows_changes(served: str, founder: Account) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=15) as http:
        site = await _site(http, founder)
        live = await http.post(
            f"/api/v1/sites/{site['id']}/notifications",
            headers=founder.headers,
            json={"name": "Live", "type": "live_visitors", "status": "active"},
        )
        assert live.status_code == 201
        await _page_views(http, site, 1)
        origin = f"https://{site['domain']}"
        params = {"siteKey": site["siteKey"], "url": f"{origin}/"}
        async with http.stream("GET", "/events/stream", params=params, headers={"Origin": origin}) as response:
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == origin
            frames = Frames(response)
            feed = orjson.loads((await frames.next_of("feed"))["data"])["data"]
            assert [item["parts"] for item in feed["notifications"][0]["items"]] == [
                ["1 person is on this site right now"]
            ]
            added = await http.post(
                f"/api/v1/sites/{site['id']}/notifications",
                headers=founder.headers,
                json={"name": "Free shipping this week", "type": "announcement", "status": "active"},
            )
            assert added.status_code == 201
            changed = orjson.loads((await frames.next_of("feed", within=5))["data"])["data"]
        assert [notification["type"] for notification in changed["notifications"]] == ["live_visitors", "announcement"]
        assert changed["notifications"][1]["items"][0]["parts"] == ["Free shipping this week"]
