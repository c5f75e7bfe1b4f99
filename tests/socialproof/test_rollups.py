"""Rollup maintenance and raw retention: partitions across a month boundary, sketches folded exactly once, old
minute rollups pruned, old months dropped only when rolled up (and archived), old visitor salts deleted."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from northstar.core.db import Database
from northstar.socialproof.ingest import EventRow, EventWriter
from northstar.socialproof.models import NO_NOTIFICATION
from northstar.socialproof.service import rollups
from northstar.socialproof.sketch import Sketch
from tests.factories import Account


async def _site(client: httpx.AsyncClient, founder: Account, **settings: object) -> dict[str, str]:
    response = await client.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com", "settings": settings},
    )
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def _writer(app: FastAPI) -> EventWriter:
    writer: EventWriter = app.state.socialproof.writer
    return writer


def _row(
    founder: Account, site: dict[str, str], at: dt.datetime, *, visitor: str = "v1", event_type: str = "page_view"
) -> EventRow:
    return EventRow(
        id=uuid.uuid4(),
        org_id=founder.org_id,
        site_id=uuid.UUID(site["id"]),
        event_type=event_type,
        occurred_at=at,
        visitor_id=visitor,
        url=f"https://{site['domain']}/",
    )


def _first_of_next_month(now: dt.datetime) -> dt.datetime:
    return (now.replace(day=28) + dt.timedelta(days=4)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def test_events_either_side_of_a_month_boundary(
    app: FastAPI, client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site = await _site(client, founder, timezone="UTC")
    boundary = _first_of_next_month(dt.datetime.now(dt.UTC))
    before, after = boundary - dt.timedelta(seconds=1), boundary + dt.timedelta(seconds=1)
    result = await _writer(app).write([_row(founder, site, before), _row(founder, site, after)])
    assert (result.accepted, result.duplicates) == (2, 0)
    with psycopg.connect(database_url) as connection:
        partitions = dict(
            connection.execute(
                "SELECT occurred_at, tableoid::regclass::text FROM socialproof.notification_events WHERE site_id = %s",
                (site["id"],),
            ).fetchall()
        )
        days = connection.execute(
            "SELECT bucket, events FROM socialproof.event_counts WHERE site_id = %s AND grain = 'day' ORDER BY bucket",
            (site["id"],),
        ).fetchall()
    assert partitions[before].startswith(f"socialproof.notification_events_{before:%Y_%m}_")
    assert partitions[after].startswith(f"socialproof.notification_events_{after:%Y_%m}_")
    assert days == [(boundary - dt.timedelta(days=1), 1), (boundary, 1)]


async def test_folding_counts_each_visitor_once(
    app: FastAPI, client: httpx.AsyncClient, founder: Account, database: Database, database_url: str
) -> None:
    site = await _site(client, founder)
    now = dt.datetime.now(dt.UTC)
    writer = _writer(app)
    await writer.write([_row(founder, site, now, visitor=f"v{number}") for number in range(50)])
    await writer.write([_row(founder, site, now, visitor=f"v{number}") for number in range(25, 75)])
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await rollups.fold_visitor_hashes(session) == 2
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await rollups.fold_visitor_hashes(session) == 0  # nothing is folded twice
    with psycopg.connect(database_url) as connection:
        sketches = connection.execute(
            "SELECT grain, registers FROM socialproof.visitor_sketches WHERE site_id = %s AND notification_id = %s",
            (site["id"], NO_NOTIFICATION),
        ).fetchall()
        pending = connection.execute(
            "SELECT count(*) FROM socialproof.visitor_hashes WHERE site_id = %s", (site["id"],)
        ).fetchone()
        hashes = [
            value
            for (value,) in connection.execute(
                "SELECT hashtextextended('v' || n, 0) FROM generate_series(0, 74) n"
            ).fetchall()
        ]
    assert sorted(grain for grain, _ in sketches) == ["day", "hour", "minute"]
    for _, data in sketches:  # the 75 distinct visitors, each once
        assert Sketch.decode(bytes(data)).encode() == Sketch.of(hashes).encode()
        assert Sketch.decode(bytes(data)).estimate() == 75
    assert pending == (0,)


async def test_minute_rollups_are_pruned_after_their_week(
    app: FastAPI, client: httpx.AsyncClient, founder: Account, database: Database, database_url: str
) -> None:
    site = await _site(client, founder)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    await _writer(app).write([_row(founder, site, old)])
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await rollups.fold_visitor_hashes(session)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        assert await rollups.prune_minute_rollups(session, keep_days=7) == 2  # one count, one sketch
    with psycopg.connect(database_url) as connection:
        kept = connection.execute(
            "SELECT grain FROM socialproof.event_counts WHERE site_id = %s UNION ALL"
            " SELECT grain FROM socialproof.visitor_sketches WHERE site_id = %s",
            (site["id"], site["id"]),
        ).fetchall()
    assert sorted(grain for (grain,) in kept) == ["day", "day", "hour", "hour"]


@pytest.fixture
def old_month(database_url: str) -> Iterator[dt.date]:
    """A month long past retention, with its partitions and one raw event, created as the owner."""
    month = dt.date(2024, secrets.choice(range(1, 13)), 1)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SELECT socialproof.ensure_event_partitions(%s)", (month,))
        connection.execute("DELETE FROM socialproof.event_months WHERE month = %s", (month,))
        connection.execute(
            "INSERT INTO socialproof.notification_events (id, org_id, site_id, event_type, occurred_at)"
            " VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'page_view', %s)",
            (dt.datetime(month.year, month.month, 15, tzinfo=dt.UTC),),
        )
    yield month
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("SELECT socialproof.drop_event_month(%s)", (month,))


def _partition_exists(database_url: str, month: dt.date) -> bool:
    with psycopg.connect(database_url) as connection:
        found = connection.execute("SELECT to_regclass(%s)", (f"socialproof.notification_events_{month:%Y_%m}",))
        return found.fetchone() != (None,)


async def test_old_months_are_dropped_only_once_rolled_up(
    database: Database, database_url: str, old_month: dt.date
) -> None:
    async with database.engine.begin() as connection:
        assert old_month not in await rollups.drop_expired_months(connection, retention_days=90)
    assert _partition_exists(database_url, old_month)  # not rolled up yet: kept
    async with database.engine.begin() as connection:
        assert await rollups.mark_rolled_up(connection, fold_started=dt.datetime.now(dt.UTC)) >= 1
        dropped = await rollups.drop_expired_months(connection, retention_days=90)
    assert old_month in dropped
    assert not _partition_exists(database_url, old_month)
    this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    assert this_month not in dropped and _partition_exists(database_url, this_month)
    with psycopg.connect(database_url) as connection:
        record = connection.execute(
            "SELECT rolled_up_at IS NOT NULL, dropped_at IS NOT NULL, archived_at"
            " FROM socialproof.event_months WHERE month = %s",
            (old_month,),
        ).fetchone()
    assert record == (True, True, None)


async def test_a_month_is_kept_until_every_archiver_succeeds(
    database: Database, database_url: str, old_month: dt.date, monkeypatch: pytest.MonkeyPatch
) -> None:
    archived: list[dt.date] = []

    async def failing(_: object, month: dt.date) -> None:
        raise OSError("object storage unreachable")

    async def recording(_: object, month: dt.date) -> None:
        archived.append(month)

    async with database.engine.begin() as connection:
        await rollups.mark_rolled_up(connection, fold_started=dt.datetime.now(dt.UTC))
    monkeypatch.setattr(rollups, "ARCHIVERS", [recording, failing])
    with pytest.raises(OSError, match="unreachable"):
        async with database.engine.begin() as connection:
            await rollups.drop_expired_months(connection, retention_days=90)
    assert _partition_exists(database_url, old_month)
    monkeypatch.setattr(rollups, "ARCHIVERS", [recording])
    async with database.engine.begin() as connection:
        assert old_month in await rollups.drop_expired_months(connection, retention_days=90)
    assert not _partition_exists(database_url, old_month)
    assert archived.count(old_month) == 2
    with psycopg.connect(database_url) as connection:
        record = connection.execute(
            "SELECT archived_at IS NOT NULL FROM socialproof.event_months WHERE month = %s", (old_month,)
        ).fetchone()
    assert record == (True,)


async def test_months_still_receiving_events_are_not_rolled_up(database: Database, database_url: str) -> None:
    now = dt.datetime.now(dt.UTC)
    async with database.engine.begin() as connection:
        await rollups.mark_rolled_up(connection, fold_started=now)
    last_month = (now.replace(day=1) - dt.timedelta(days=1)).replace(day=1).date()
    with psycopg.connect(database_url) as connection:
        rolled = {
            month
            for (month,) in connection.execute(
                "SELECT month FROM socialproof.event_months WHERE rolled_up_at IS NOT NULL"
            ).fetchall()
        }
    assert now.date().replace(day=1) not in rolled
    # Last month is frozen only once events of its last day can no longer arrive (7 days, plus a margin).
    frozen = now >= dt.datetime.combine(now.date().replace(day=1), dt.time(), dt.UTC) + dt.timedelta(days=7, hours=1)
    assert (last_month in rolled) == frozen


async def test_visitor_salts_older_than_yesterday_are_deleted(database: Database, database_url: str) -> None:
    today = dt.datetime.now(dt.UTC).date()
    with psycopg.connect(database_url, autocommit=True) as connection:
        for days in range(4):
            connection.execute(
                "INSERT INTO socialproof.visitor_salts (day, salt) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (today - dt.timedelta(days=days), secrets.token_bytes(32)),
            )
    async with database.engine.begin() as connection:
        assert await rollups.delete_old_salts(connection) >= 2
    with psycopg.connect(database_url) as connection:
        days_left = {day for (day,) in connection.execute("SELECT day FROM socialproof.visitor_salts").fetchall()}
    yesterday = today - dt.timedelta(days=1)
    assert {day for day in days_left if day < yesterday} == set() and {today, yesterday} <= days_left
