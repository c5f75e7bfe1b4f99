"""Idempotency-Key with Stripe's semantics."""

from __future__ import annotations

import asyncio

import httpx
import psycopg

from tests.factories import Account


async def test_same_key_and_body_replays_the_first_response(client: httpx.AsyncClient, founder: Account) -> None:
    headers = {**founder.headers, "Idempotency-Key": "create-1"}
    first = await client.post("/api/v1/projects", json={"name": "Once"}, headers=headers)
    second = await client.post("/api/v1/projects", json={"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    listed = (await client.get("/api/v1/projects", headers=founder.headers)).json()
    assert listed["meta"]["total"] == 1


async def test_same_key_other_body_is_422(client: httpx.AsyncClient, founder: Account) -> None:
    headers = {**founder.headers, "Idempotency-Key": "create-2"}
    await client.post("/api/v1/projects", json={"name": "A"}, headers=headers)
    other = await client.post("/api/v1/projects", json={"name": "B"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_to_the_caller(
    client: httpx.AsyncClient, founder: Account, other_founder: Account
) -> None:
    for account in (founder, other_founder):
        response = await client.post(
            "/api/v1/projects", json={"name": "Mine"}, headers={**account.headers, "Idempotency-Key": "shared-key"}
        )
        assert response.status_code == 201
        assert "idempotent-replayed" not in response.headers


async def test_concurrent_duplicate_is_409(client: httpx.AsyncClient, founder: Account) -> None:
    headers = {**founder.headers, "Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *[client.post("/api/v1/projects", json={"name": "Race"}, headers=headers) for _ in range(6)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    created = (await client.get("/api/v1/projects", headers=founder.headers)).json()["meta"]["total"]
    assert created == 1


async def test_failed_validation_does_not_burn_the_key(client: httpx.AsyncClient, founder: Account) -> None:
    headers = {**founder.headers, "Idempotency-Key": "fix-and-retry"}
    bad = await client.post("/api/v1/projects", json={"name": ""}, headers=headers)
    assert bad.status_code == 422
    good = await client.post("/api/v1/projects", json={"name": "Fixed"}, headers=headers)
    assert good.status_code == 201


async def test_key_too_long_is_rejected(client: httpx.AsyncClient, founder: Account) -> None:
    response = await client.post(
        "/api/v1/projects", json={"name": "x"}, headers={**founder.headers, "Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 422


async def test_a_lock_left_by_a_request_that_never_finished_is_taken_over(
    client: httpx.AsyncClient, founder: Account, database_url: str
) -> None:
    """A request whose process died (or whose database went away before it could release its key) leaves the key
    locked; a retry after twice the request timeout runs, while a younger lock still answers 409."""
    headers = {**founder.headers, "Idempotency-Key": "orphaned"}
    first = await client.post("/api/v1/projects", json={"name": "Orphan"}, headers=headers)
    assert first.status_code == 201
    with psycopg.connect(database_url, autocommit=True) as connection:  # as the crash would have left it
        connection.execute(
            "UPDATE core.idempotency_keys SET response_status = NULL, response_body = NULL,"
            " created_at = now() - interval '59 seconds' WHERE key = 'orphaned'"
        )
    young = await client.post("/api/v1/projects", json={"name": "Orphan"}, headers=headers)
    assert young.status_code == 409 and young.json()["error"]["code"] == "idempotency_in_progress"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE core.idempotency_keys SET created_at = now() - interval '61 seconds' WHERE key = 'orphaned'"
        )
    other_body = await client.post("/api/v1/projects", json={"name": "Other"}, headers=headers)
    assert other_body.status_code == 422
    retried = await client.post("/api/v1/projects", json={"name": "Orphan"}, headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    replayed = await client.post("/api/v1/projects", json={"name": "Orphan"}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.json() == retried.json()
