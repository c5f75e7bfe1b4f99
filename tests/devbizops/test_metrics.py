"""The DORA and flow metrics against the reference calculation, over 50 repositories by 12 months of generated
history in a time zone with daylight saving: every point of every scope must match exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
from sqlalchemy import text

from northstar.core.db import Database
from northstar.demo.engineering_history import generate
from northstar.devbizops import service
from northstar.metrics import service as metrics_service
from tests.devbizops.conftest import create_team, store_history
from tests.devbizops.reference import reference
from tests.factories import Account

ZONE = "America/New_York"


async def test_every_metric_of_every_scope_matches_the_reference(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    teams = [await create_team(client, founder, f"Team {index}") for index in range(5)]
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await metrics_service.update_policy(session, org_id=founder.org_id, changes={"timezone": ZONE})
        today = await metrics_service.org_today(session, org_id=founder.org_id)
    history = generate(repositories=50, months=12, end=today, teams=teams)
    await store_history(database, founder, history)
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        written = await service.recompute(session, org_id=founder.org_id)
        rows = (
            await session.execute(
                text("SELECT metric, grain, dims, day, value FROM metrics.kpis WHERE source = 'engineering'")
            )
        ).all()
    stored = {(row.metric, row.grain, row.dims, row.day): Decimal(row.value) for row in rows}
    expected = reference(history.batch, history.teams, ZONE, today)
    assert written == len(stored)
    assert set(stored) == set(expected), {
        "missing": sorted(set(expected) - set(stored))[:5],
        "extra": sorted(set(stored) - set(expected))[:5],
    }
    wrong = {key: (stored[key], expected[key]) for key in expected if stored[key] != expected[key]}
    assert wrong == {}, dict(list(wrong.items())[:10])
    scopes = {dims for _, _, dims, _ in stored}
    assert len([dims for dims in scopes if dims.startswith("repo=")]) == 50
    assert len([dims for dims in scopes if dims.startswith("team=")]) == 5
    bands = {value for (metric, _, _, _), value in stored.items() if metric.endswith("_band")}
    assert bands >= {Decimal(4), Decimal(3), Decimal(2)}  # the fixture reaches several bands
    months = {day for (_, grain, _, day) in stored if grain == "month"}
    assert len(months) >= 12
    assert dt.date.today().replace(day=1) in months or today.replace(day=1) in months
