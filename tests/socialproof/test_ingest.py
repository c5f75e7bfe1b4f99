"""The group-commit writer: acknowledged only once stored, one bad request cannot sink the others, bounded memory,
and an unreachable database fails requests (retry is safe) instead of holding events in memory."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from northstar.core.db import to_libpq_url
from northstar.settings import Settings
from northstar.socialproof.ingest import EventRejected, EventRow, EventWriter, IngestUnavailable
from tests.conftest import free_port
from tests.factories import Account


async def _site_id(client: httpx.AsyncClient, founder: Account) -> uuid.UUID:
    response = await client.post(
        "/api/v1/sites",
        headers=founder.headers,
        json={"name": "Shop", "domain": f"shop-{secrets.token_hex(4)}.example.com"},
    )
    return uuid.UUID(response.json()["data"]["id"])


def _rows(founder: Account, site_id: uuid.UUID, count: int, *, event_type: str = "page_view") -> list[EventRow]:
    now = dt.datetime.now(dt.UTC)
    return [
        EventRow(
            id=uuid.uuid4(),
            org_id=founder.org_id,
            site_id=site_id,
            event_type=event_type,
            occurred_at=now,
            visitor_id=f"visitor-{number}",
        )
        for number in range(count)
    ]


def _stored(database_url: str, site_id: uuid.UUID) -> int:
    with psycopg.connect(database_url) as connection:
        found = connection.execute(
            "SELECT count(*) FROM socialproof.notification_events WHERE site_id = %s", (site_id,)
        ).fetchone()
    return int(found[0]) if found else 0


async def test_concurrent_writes_are_batched_and_each_answered(
    app: FastAPI, client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site_id = await _site_id(client, founder)
    writer: EventWriter = app.state.socialproof.writer
    batches = [_rows(founder, site_id, 3) for _ in range(60)]
    results = await asyncio.gather(*(writer.write(rows) for rows in batches))
    assert [(result.accepted, result.duplicates) for result in results] == [(3, 0)] * 60
    assert _stored(database_url, site_id) == 180
    replayed = await asyncio.gather(*(writer.write(rows) for rows in batches[:10]))
    assert [(result.accepted, result.duplicates) for result in replayed] == [(0, 3)] * 10


async def test_one_bad_request_does_not_sink_the_batch(
    app: FastAPI, client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    site_id = await _site_id(client, founder)
    writer: EventWriter = app.state.socialproof.writer
    bad = _rows(founder, site_id, 1, event_type="x" * 40)  # longer than the column: the database refuses it
    outcomes = await asyncio.gather(
        writer.write(_rows(founder, site_id, 2)),
        writer.write(bad),
        writer.write(_rows(founder, site_id, 3)),
        return_exceptions=True,
    )
    assert [getattr(outcome, "accepted", None) for outcome in outcomes] == [2, None, 3]
    assert isinstance(outcomes[1], EventRejected)
    assert _stored(database_url, site_id) == 5


async def test_an_unreachable_database_fails_the_request(settings: Settings, founder: Account) -> None:
    config = settings.socialproof.model_copy(update={"ingest_timeout_seconds": 5.0})
    writer = EventWriter(f"postgresql://northstar@127.0.0.1:{free_port()}/nowhere?connect_timeout=2", config)
    try:
        with pytest.raises(IngestUnavailable) as raised:
            await writer.write(_rows(founder, uuid.uuid4(), 2))
        assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "1"}
    finally:
        await writer.close()


async def test_memory_is_bounded(settings: Settings, database_url: str, founder: Account) -> None:
    config = settings.socialproof.model_copy(update={"ingest_max_pending": 10})
    writer = EventWriter(to_libpq_url(database_url), config)
    try:
        with pytest.raises(IngestUnavailable, match="Too many events"):
            await writer.write(_rows(founder, uuid.uuid4(), 11))
    finally:
        await writer.close()
