"""Server-side events: stored at once, idempotent by event id, clock skew clamped, partitions kept ahead."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from northstar.core.db import Database
from northstar.socialproof.service.events import ensure_event_partitions
from tests.factories import Account, add_member


async def _site_and_key(client: httpx.AsyncClient, founder: Account) -> tuple[str, dict[str, str]]:
    site = (
        await client.post(
            "/api/v1/sites",
            headers=founder.headers,
            json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
        )
    ).json()["data"]
    key = (
        await client.post(
            "/api/v1/api-keys",
            headers=founder.headers,
            json={"name": "backend", "role": "member", "scopes": ["events:create"]},
        )
    ).json()["data"]
    return site["id"], {"X-API-Key": key["key"]}


def _stored(database_url: str, site_id: str) -> list[tuple[str, datetime, dict[str, object]]]:
    with psycopg.connect(database_url) as connection:
        return [
            (row[0], row[1], row[2])
            for row in connection.execute(
                "SELECT event_type, occurred_at, payload FROM socialproof.notification_events WHERE site_id = %s"
                " ORDER BY occurred_at",
                (site_id,),
            ).fetchall()
        ]


async def test_single_and_batched_events_are_stored_once(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site_id, key = await _site_and_key(client, founder)
    single = await client.post(
        f"/api/v1/sites/{site_id}/events",
        headers=key,
        json={
            "events": [
                {
                    "type": "purchase",
                    "firstName": "Anna",
                    "city": "Berlin",
                    "country": "DE",
                    "product": "Trail Shoes",
                    "amount": 89.9,
                    "currency": "EUR",
                }
            ]
        },
    )
    assert single.status_code == 202 and single.json()["data"] == {"accepted": 1, "duplicates": 0}
    batch = {
        "events": [{"id": str(uuid.uuid4()), "type": "signup"} for _ in range(3)]
        + [{"id": str(uuid.uuid4()), "type": "custom", "name": "trial_started"}]
    }
    first = await client.post(f"/api/v1/sites/{site_id}/events", headers=key, json=batch)
    replay = await client.post(f"/api/v1/sites/{site_id}/events", headers=key, json=batch)
    assert first.json()["data"] == {"accepted": 4, "duplicates": 0}
    assert replay.json()["data"] == {"accepted": 0, "duplicates": 4}
    stored = _stored(database_url, site_id)
    assert len(stored) == 5
    purchase = next(payload for kind, _, payload in stored if kind == "purchase")
    assert purchase == {
        "firstName": "Anna",
        "city": "Berlin",
        "country": "DE",
        "product": "Trail Shoes",
        "amount": 89.9,
        "currency": "EUR",
    }


async def test_clock_skew_is_clamped(client: httpx.AsyncClient, founder: Account, database_url: str) -> None:
    site_id, key = await _site_and_key(client, founder)
    now = datetime.now(UTC)
    await client.post(
        f"/api/v1/sites/{site_id}/events",
        headers=key,
        json={
            "events": [
                {"type": "signup", "occurredAt": (now + timedelta(days=2)).isoformat()},
                {"type": "signup", "occurredAt": (now - timedelta(days=40)).isoformat()},
                {"type": "signup", "occurredAt": (now - timedelta(hours=1)).isoformat()},
            ]
        },
    )
    times = [moment for _, moment, _ in _stored(database_url, site_id)]
    assert len(times) == 3
    assert now - timedelta(days=7, seconds=5) <= times[0] <= now - timedelta(days=6, hours=23)
    assert abs(times[1] - (now - timedelta(hours=1))) < timedelta(seconds=1)
    assert now - timedelta(seconds=5) <= times[2] <= datetime.now(UTC)


@pytest.mark.parametrize(
    "occurred_at",
    [
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01",
        "9999-12-31",
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_clamped(
    client: httpx.AsyncClient, founder: Account, database_url: str, occurred_at: str
) -> None:
    site_id, key = await _site_and_key(client, founder)
    before = datetime.now(UTC)
    response = await client.post(
        f"/api/v1/sites/{site_id}/events", headers=key, json={"events": [{"type": "signup", "occurredAt": occurred_at}]}
    )
    assert response.status_code == 202, response.text
    (stored,) = [moment for _, moment, _ in _stored(database_url, site_id)]
    assert before - timedelta(days=7, seconds=1) <= stored <= datetime.now(UTC)


async def test_text_is_stored_as_plain_text_and_links_only_to_the_site(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site_id, key = await _site_and_key(client, founder)
    domain = (await client.get(f"/api/v1/sites/{site_id}", headers=founder.headers)).json()["data"]["domain"]
    response = await client.post(
        f"/api/v1/sites/{site_id}/events",
        headers=key,
        json={
            "events": [
                {
                    "type": "purchase",
                    "firstName": "<img src=x onerror=alert(1)>Anna",
                    "city": "<b>Berlin</b>",
                    "product": "Trail Shoes<script>alert(1)</script>",
                    "productUrl": "javascript:alert(1)",
                    "url": f"https://{domain}/checkout",
                },
                {
                    "type": "purchase",
                    "firstName": " ",
                    "url": "data:text/html,<script>alert(1)</script>",
                    "productUrl": f"https://www.{domain}/p/1",
                },
            ]
        },
    )
    assert response.status_code == 202, response.text
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT url, payload FROM socialproof.notification_events WHERE site_id = %s"
            " ORDER BY payload ->> 'firstName' NULLS LAST",
            (site_id,),
        ).fetchall()
    assert rows == [
        (f"https://{domain}/checkout", {"firstName": "Anna", "city": "Berlin", "product": "Trail Shoes"}),
        (None, {"productUrl": f"https://www.{domain}/p/1"}),
    ]
    markup = await client.post(
        f"/api/v1/sites/{site_id}/events",
        headers=key,
        json={"events": [{"type": "signup"}, {"type": "custom", "name": "<img src=x onerror=alert(1)>"}]},
    )
    assert markup.status_code == 422, markup.text
    assert [detail["field"] for detail in markup.json()["error"]["details"]] == ["body.events.1.name"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{"type": "custom"}]}, "body.events.0"),
        ({"events": [{"type": "purchase", "country": "germany"}]}, "body.events.0.country"),
        ({"events": []}, "body.events"),
        ({"events": [{"type": "signup"}] * 501}, "body.events"),
        ({"events": [{"type": "pageview"}]}, "body.events.0.type"),
        ({"type": "signup"}, "body.events"),
    ],
)
async def test_bad_events_are_422(
    client: httpx.AsyncClient, founder: Account, body: dict[str, object], field: str
) -> None:
    site_id, key = await _site_and_key(client, founder)
    response = await client.post(f"/api/v1/sites/{site_id}/events", headers=key, json=body)
    assert response.status_code == 422
    fields = [detail["field"] for detail in response.json()["error"]["details"]]
    assert field in fields, fields


async def test_events_need_the_right_site_and_role(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    site_id, key = await _site_and_key(client, founder)
    _, their_key = await _site_and_key(client, other_founder)
    assert (
        await client.post(f"/api/v1/sites/{site_id}/events", headers=their_key, json={"events": [{"type": "signup"}]})
    ).status_code == 404
    investor = await add_member(client, founder, "investor")
    assert (
        await client.post(
            f"/api/v1/sites/{site_id}/events", headers=investor.headers, json={"events": [{"type": "signup"}]}
        )
    ).status_code == 403
    assert (await client.get(f"/api/v1/sites/{site_id}", headers=key)).status_code == 403  # scoped to events


async def test_partitions_are_made_ahead_under_forced_rls(database: Database, database_url: str) -> None:
    def partitions() -> int:
        with psycopg.connect(database_url) as connection:
            return int(
                connection.execute(
                    "SELECT count(*) FROM pg_class WHERE relnamespace = 'socialproof'::regnamespace"
                    " AND relkind IN ('r', 'p') AND relname ~ '^notification_events_[0-9]{4}_[0-9]{2}'"
                ).fetchone()[0]
            )

    before = partitions()
    async with database.engine.begin() as connection:
        created = await ensure_event_partitions(connection, months_ahead=14)
    async with database.engine.begin() as connection:
        again = await ensure_event_partitions(connection, months_ahead=14)
    assert created == partitions() - before and created % 9 == 0 and again == 0  # a month table, 8 hash leaves
    month = (datetime.now(UTC).replace(day=1) + timedelta(days=14 * 31)).strftime("%Y_%m")
    with psycopg.connect(database_url) as connection:
        flags = connection.execute(
            "SELECT bool_and(relrowsecurity AND relforcerowsecurity), count(*) FROM pg_class"
            " WHERE relnamespace = 'socialproof'::regnamespace AND relkind IN ('r', 'p') AND relname ~ %s",
            (f"^notification_events_{month}(_[0-7])?$",),
        ).fetchone()
    assert flags == (True, 9)
