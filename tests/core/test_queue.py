"""The job queue: jobs commit or roll back with the caller's transaction; periodic cleanup per tenant."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from procrastinate.jobs import Job

from northstar.accounts import tasks
from northstar.core.db import Database
from northstar.core.idempotency import purge_expired_keys
from northstar.core.queue import default_retry, enqueue, runtime
from tests.factories import Account


async def _jobs_for(database_url: str, marker: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE args->>'invitation_id' = %s", (marker,))
        ).fetchone()
    return int(row[0]) if row else 0


class Rollback(Exception):
    pass


async def test_job_exists_exactly_when_its_transaction_commits(
    database: Database, founder: Account, database_url: str
) -> None:
    kept, dropped = str(uuid.uuid4()), str(uuid.uuid4())
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await enqueue(
            session,
            tasks.send_invitation_email,
            org_id=founder.org_id,
            invitation_id=kept,
            org_name="x",
            accept_url="x",
        )

    async def enqueue_then_fail() -> None:
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            await enqueue(
                session,
                tasks.send_invitation_email,
                org_id=founder.org_id,
                invitation_id=dropped,
                org_name="x",
                accept_url="x",
            )
            raise Rollback

    with pytest.raises(Rollback):
        await enqueue_then_fail()
    assert await _jobs_for(database_url, kept) == 1
    assert await _jobs_for(database_url, dropped) == 0


def test_default_retry_backs_off_exponentially() -> None:
    strategy = default_retry()

    def wait_after(attempts: int) -> float | None:
        job = Job(
            id=1, queue="default", lock=None, queueing_lock=None, task_name="t", attempts=attempts, task_kwargs={}
        )
        decision = strategy.get_retry_decision(exception=RuntimeError(), job=job)
        if decision is None:
            return None
        assert decision.retry_at is not None
        return (decision.retry_at - datetime.now(UTC)).total_seconds()

    waits = [wait_after(n) for n in range(4)]
    assert all(w is not None for w in waits)
    assert [round(w) for w in waits if w is not None] == [2, 4, 8, 16]
    assert wait_after(5) is None


async def test_periodic_cleanup_runs_per_tenant(
    client: httpx.AsyncClient, database: Database, founder: Account, other_founder: Account, database_url: str
) -> None:
    await client.post("/api/v1/projects", json={"name": "x"}, headers={**founder.headers, "Idempotency-Key": "old"})
    await client.post(
        "/api/v1/projects", json={"name": "x"}, headers={**other_founder.headers, "Idempotency-Key": "old"}
    )
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute(
            "UPDATE core.idempotency_keys SET created_at = now() - interval '2 days' WHERE org_id = %s",
            (founder.org_id,),
        )
        await conn.execute(
            "UPDATE auth.refresh_tokens SET expires_at = now() - interval '3 days' WHERE org_id = %s", (founder.org_id,)
        )
        await conn.commit()
    runtime.database = database
    assert await purge_expired_keys(timestamp=0) >= 1
    assert await tasks.purge_expired_sessions(timestamp=0) >= 1
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        left = await (
            await conn.execute(
                "SELECT org_id FROM core.idempotency_keys WHERE org_id IN (%s, %s)",
                (founder.org_id, other_founder.org_id),
            )
        ).fetchall()
    assert [row[0] for row in left] == [other_founder.org_id]
