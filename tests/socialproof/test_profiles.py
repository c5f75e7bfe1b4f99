"""Visitor profiles: kept by ingestion (sessions, counters, country, device, custom values, the behaviour score),
read, searched and erased through the API, with roles and tenants kept apart."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from tests.factories import Account, add_member
from tests.socialproof.conftest import CHROME_UA, SiteFactory, WidgetSite, widget_event

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
HALF_LIFE = timedelta(days=14)


def score_of(engagement: float) -> float:
    """The documented formula (docs/socialproof.md, Visitor profiles)."""
    return round(100 * (1 - math.exp(-engagement / 25)), 1)


def decayed(engagement: float, elapsed: timedelta) -> float:
    return engagement * 0.5 ** (elapsed / HALF_LIFE)


async def profiles(site: WidgetSite, client: httpx.AsyncClient | None = None, **params: Any) -> dict[str, Any]:
    response = await (client or site.client).get(
        f"/api/v1/sites/{site.id}/visitors", headers=site.account.headers, params=params
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def profile_of(site: WidgetSite, user_id: str) -> dict[str, Any]:
    found = (await profiles(site, userId=user_id))["data"]
    assert len(found) == 1, found
    return dict(found[0])


def at(moment: datetime) -> str:
    return moment.isoformat()


async def test_backend_events_build_a_profile_with_sessions_counters_and_score(site: WidgetSite) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    await site.record(
        {"type": "purchase", "visitorId": "cust-1", "occurredAt": at(start), "country": "FR"},
        {"type": "signup", "visitorId": "cust-1", "occurredAt": at(start + timedelta(minutes=10))},
        {"type": "custom", "name": "trial", "visitorId": "cust-1", "occurredAt": at(start + timedelta(hours=2))},
        {"type": "purchase", "visitorId": "cust-2", "occurredAt": at(start)},
    )
    first = await profile_of(site, "cust-1")
    assert first["sessionCount"] == 2 and first["returning"] is True  # a gap of more than 30 minutes
    assert (first["pageViews"], first["clicks"], first["conversions"]) == (0, 0, 2)
    assert first["country"] == "FR" and first["device"] is None and first["custom"] == {}
    assert datetime.fromisoformat(first["firstSeenAt"]) == start
    assert datetime.fromisoformat(first["lastSeenAt"]) == start + timedelta(hours=2)
    engagement = 2 * 10 + 2 * 2  # two conversions, two sessions
    assert first["behaviorScore"] == score_of(engagement)

    # A later batch continues the last session: no new session, the old points decay by the time between them.
    await site.record(
        {"type": "purchase", "visitorId": "cust-1", "occurredAt": at(start + timedelta(hours=2, minutes=10))}
    )
    again = await profile_of(site, "cust-1")
    assert again["sessionCount"] == 2 and again["conversions"] == 3
    assert again["behaviorScore"] == score_of(decayed(engagement, timedelta(minutes=10)) + 10)
    # and a new session after more than 30 minutes
    await site.record(
        {"type": "signup", "visitorId": "cust-1", "occurredAt": at(start + timedelta(hours=2, minutes=50))}
    )
    assert (await profile_of(site, "cust-1"))["sessionCount"] == 3

    other = await profile_of(site, "cust-2")
    assert other["sessionCount"] == 1 and other["returning"] is False
    assert other["behaviorScore"] == score_of(10 + 2)


async def test_a_retried_event_is_counted_once(site: WidgetSite) -> None:
    event = {"id": str(uuid.uuid4()), "type": "purchase", "visitorId": "cust-9"}
    for _ in range(2):
        response = await site.client.post(
            f"/api/v1/sites/{site.id}/events", headers=await _events_key(site), json={"events": [event]}
        )
        assert response.status_code == 202, response.text
    profile = await profile_of(site, "cust-9")
    assert profile["conversions"] == 1 and profile["behaviorScore"] == score_of(12)


async def test_the_most_engaged_visitor_keeps_a_score_and_their_events(site: WidgetSite) -> None:
    """Past ~18,600 points, exp(-engagement / 25) underflows, which PostgreSQL raises: every upsert of the profile,
    and every flush with the visitor's events, used to fail."""
    await site.record({"type": "purchase", "visitorId": "regular"})
    profile = await profile_of(site, "regular")
    with psycopg.connect(site.database_url) as connection:  # a page a minute for months
        connection.execute("UPDATE socialproof.visitor_profiles SET engagement = 1e6 WHERE id = %s", (profile["id"],))
    await site.record({"type": "purchase", "visitorId": "regular"})  # accepted, not refused
    again = await profile_of(site, "regular")
    assert again["conversions"] == 2 and again["behaviorScore"] == 100.0 == score_of(1e6)


async def _events_key(site: WidgetSite) -> dict[str, str]:
    if not site.events_key:
        await site.record({"type": "review", "rating": 5})  # creates the key
    return site.events_key


async def test_widget_events_give_device_country_clicks_and_join_the_identified_profile(
    make_site: SiteFactory, geo_client: httpx.AsyncClient
) -> None:
    site = await make_site()
    notification = await site.notification(type="announcement")
    await site.record({"type": "purchase", "visitorId": "anna@example.com"})
    headers = site.browser(user_agent=IPHONE_UA)
    response = await site.collect(
        widget_event("page_view", site.page("/")),
        widget_event("page_view", site.page("/shoes")),
        widget_event("click", site.page("/shoes"), notificationId=notification["id"]),
        client=geo_client,
        headers=headers,
        visitor={"userId": "anna@example.com"},
    )
    assert response.status_code == 202, response.text
    profile = await profile_of(site, "anna@example.com")
    assert (profile["pageViews"], profile["clicks"], profile["conversions"]) == (2, 1, 1)
    assert profile["device"] == "mobile" and profile["country"] == "DE"  # GeoIP of the widget's request
    assert profile["sessionCount"] == 1
    # one session: 2 page views + 3 for the click + 10 for the purchase + 2 for the session (decay over seconds)
    assert abs(profile["behaviorScore"] - score_of(17)) <= 0.1

    # an anonymous desktop visitor is a profile of its own
    anonymous = await site.collect(
        widget_event("page_view", site.page("/")), headers=site.browser(user_agent=CHROME_UA)
    )
    assert anonymous.status_code == 202
    listed = await profiles(site, device="desktop")
    assert [item["pageViews"] for item in listed["data"]] == [1] and listed["data"][0]["device"] == "desktop"


async def test_search_filters_and_sorts(site: WidgetSite) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=3)
    await site.record(
        {"type": "purchase", "visitorId": "low", "occurredAt": at(old), "country": "DE"},
        *(
            {"type": "purchase", "visitorId": "high", "occurredAt": at(now - timedelta(hours=hours)), "country": "US"}
            for hours in (1, 2, 3)
        ),
        {"type": "signup", "visitorId": "mid", "occurredAt": at(now - timedelta(hours=5))},
        {"type": "signup", "visitorId": "mid", "occurredAt": at(now - timedelta(hours=4))},
    )
    ids = {name: (await profile_of(site, name))["visitorId"] for name in ("low", "high", "mid")}

    async def found(**params: Any) -> list[str]:
        names = {value: key for key, value in ids.items()}
        return [names[item["visitorId"]] for item in (await profiles(site, **params))["data"]]

    assert await found() == ["high", "mid", "low"]  # last seen first
    assert await found(sort="-behaviorScore") == ["high", "mid", "low"]
    assert await found(sort="behaviorScore") == ["low", "mid", "high"]
    assert await found(scoreMin=score_of(12) + 0.1) == ["high", "mid"]
    assert await found(scoreMax=score_of(12)) == ["low"]
    assert await found(visitors="returning") == ["high", "mid"]
    assert await found(visitors="new") == ["low"]
    assert await found(country="US") == ["high"]
    assert await found(lastSeenBefore=at(now - timedelta(days=1))) == ["low"]
    assert await found(lastSeenAfter=at(now - timedelta(days=1)), visitors="returning", scoreMin=score_of(36)) == [
        "high"
    ]
    assert await found(userId="nobody") == []
    page = await profiles(site, limit=1, page=2)
    assert page["meta"] == {"page": 2, "limit": 1, "total": 3} and len(page["data"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"scoreMin": "101"}, "scoreMin"),
        ({"scoreMax": "-1"}, "scoreMax"),
        ({"country": "de"}, "country"),
        ({"device": "fridge"}, "device"),
        ({"visitors": "sometimes"}, "visitors"),
        ({"lastSeenAfter": "yesterday"}, "lastSeenAfter"),
        ({"sort": "name"}, "sort"),
        ({"limit": "101"}, "limit"),
    ],
)
async def test_bad_search_input_is_a_422_naming_the_parameter(
    site: WidgetSite, params: dict[str, str], field: str
) -> None:
    response = await site.client.get(f"/api/v1/sites/{site.id}/visitors", headers=site.account.headers, params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and any(field in item["field"] for item in error["details"]), error


async def test_a_profile_is_read_and_erased_with_its_conversions(site: WidgetSite) -> None:
    notification = await site.notification(type="announcement")
    await site.collect(
        widget_event("click", site.page("/"), notificationId=notification["id"]), visitor={"userId": "gone"}
    )
    await site.record({"type": "purchase", "visitorId": "gone"})
    profile = await profile_of(site, "gone")
    path = f"/api/v1/sites/{site.id}/visitors/{profile['visitorId']}"
    fetched = await site.client.get(path, headers=site.account.headers)
    assert fetched.status_code == 200 and fetched.json()["data"] == profile
    assert _conversions(site, profile["visitorId"]) == 1

    erased = await site.client.delete(path, headers=site.account.headers)
    assert erased.status_code == 204, erased.text
    assert (await site.client.get(path, headers=site.account.headers)).status_code == 404
    assert (await site.client.delete(path, headers=site.account.headers)).status_code == 404
    assert _conversions(site, profile["visitorId"]) == 0
    audit = await site.client.get("/api/v1/audit", headers=site.account.headers, params={"limit": 5})
    entry = next(item for item in audit.json()["data"] if item["targetType"] == "visitor_profile")
    assert entry["targetId"] == profile["id"] and profile["visitorId"] not in str(entry)


def _conversions(site: WidgetSite, visitor_id: str) -> int:
    with psycopg.connect(site.database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM socialproof.conversions WHERE site_id = %s AND visitor_id = %s", (site.id, visitor_id)
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_roles_read_or_erase_as_granted(client: httpx.AsyncClient, founder: Account, site: WidgetSite) -> None:
    await site.record({"type": "signup", "visitorId": "someone"})
    visitor_id = (await profile_of(site, "someone"))["visitorId"]
    path = f"/api/v1/sites/{site.id}/visitors"
    for role, reads, erases in (
        ("admin", 200, 204),
        ("member", 200, 403),
        ("analyst", 200, 403),
        ("investor", 403, 403),
    ):
        account = await add_member(client, founder, role)
        assert (await client.get(path, headers=account.headers)).status_code == reads, role
        erased = await client.delete(f"{path}/{visitor_id}", headers=account.headers)
        assert erased.status_code in (erases, 404 if erases == 204 else erases), (role, erased.text)


async def test_another_tenant_sees_no_profile(
    client: httpx.AsyncClient, site: WidgetSite, other_founder: Account
) -> None:
    await site.record({"type": "signup", "visitorId": "private"})
    visitor_id = (await profile_of(site, "private"))["visitorId"]
    for method, path in (
        ("GET", f"/api/v1/sites/{site.id}/visitors"),
        ("GET", f"/api/v1/sites/{site.id}/visitors/{visitor_id}"),
        ("DELETE", f"/api/v1/sites/{site.id}/visitors/{visitor_id}"),
    ):
        response = await client.request(method, path, headers=other_founder.headers)
        assert response.status_code == 404, (method, path, response.text)
    assert (await profile_of(site, "private"))["visitorId"] == visitor_id  # untouched


async def test_profiles_can_be_turned_off(make_site: SiteFactory, settings: Any) -> None:
    from northstar.app import create_app
    from tests.conftest import running

    off = settings.model_copy(
        update={"socialproof": settings.socialproof.model_copy(update={"visitor_profiles": False})}
    )
    site = await make_site()
    async with running(create_app(off)) as http:
        response = await site.collect(widget_event("page_view", site.page("/")), client=http, visitor={"userId": "x"})
        assert response.status_code == 202, response.text
    assert len(site.stored()) == 1
    assert (await profiles(site))["data"] == []
