"""Time limits on the database: a request waits a bounded time and then answers 503, a worker's job does not.

A hung or killed server is in ``tests/faults``; here the server is fine but a request cannot get what it needs.
"""

from __future__ import annotations

import threading
import time

import psycopg
from sqlalchemy import text

from northstar.app import create_app
from northstar.core.db import Database
from northstar.core.dbguard import database_problem
from northstar.settings import Settings
from tests.conftest import running
from tests.factories import Account, create_project


async def test_a_row_locked_elsewhere_is_a_503_with_retry_after_not_a_hang(
    settings: Settings, founder: Account, database_url: str
) -> None:
    impatient = settings.model_copy(update={"db": settings.db.model_copy(update={"lock_timeout_seconds": 0.2})})
    async with running(create_app(impatient)) as client:
        project = await create_project(client, founder)
        with psycopg.connect(database_url) as holder:  # another transaction holds the row
            holder.execute("SELECT 1 FROM core.projects WHERE id = %s FOR UPDATE", (project["id"],))
            response = await client.patch(
                f"/api/v1/projects/{project['id']}", json={"name": "Renamed"}, headers=founder.headers
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "database_busy"
        assert int(response.headers["retry-after"]) >= 1
        assert "lock" not in response.text  # no driver text reaches the client
        renamed = await client.patch(
            f"/api/v1/projects/{project['id']}", json={"name": "Renamed"}, headers=founder.headers
        )
        assert renamed.status_code == 200


async def test_requests_run_under_a_statement_timeout_and_workers_under_their_own(
    settings: Settings, database_url: str
) -> None:
    application = create_app(settings)
    async with running(application):
        database: Database = application.state.database
        async with database.sessionmaker() as session, session.begin():
            assert await session.scalar(text("SHOW statement_timeout")) == "5s"
            assert await session.scalar(text("SHOW lock_timeout")) == "3s"
    worker = Database(database_url, pool_size=1, statement_timeout=settings.db.worker_statement_timeout_seconds)
    try:
        async with worker.sessionmaker() as session, session.begin():
            assert await session.scalar(text("SHOW statement_timeout")) == "0"
    finally:
        await worker.dispose()


def test_a_deadlock_is_a_409_to_try_again_not_a_500(database_url: str) -> None:
    """Two transactions each holding what the other waits for: PostgreSQL rolls one back, which answers 409."""
    refused: list[psycopg.Error] = []
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        first.execute("SELECT pg_advisory_xact_lock(8611)")
        second.execute("SELECT pg_advisory_xact_lock(8612)")

        def first_waits() -> None:
            try:
                first.execute("SELECT pg_advisory_xact_lock(8612)")
            except psycopg.Error as exc:
                refused.append(exc)
                first.rollback()

        waiting = threading.Thread(target=first_waits)
        waiting.start()
        time.sleep(0.3)
        try:
            second.execute("SELECT pg_advisory_xact_lock(8611)")
        except psycopg.Error as exc:
            refused.append(exc)
            second.rollback()
        waiting.join()
    assert len(refused) == 1 and isinstance(refused[0], psycopg.errors.DeadlockDetected)
    problem = database_problem(refused[0])
    assert problem is not None and (problem.status, problem.code) == (409, "write_conflict")
    assert "deadlock" not in problem.message
