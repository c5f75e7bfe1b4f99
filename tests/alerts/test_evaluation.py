"""Rules evaluated against real metric values, goals and integrations: each kind fires when its condition holds and
not otherwise, at most once per rule, day and subject however often (or however concurrently) it is evaluated, not
again while it holds, not within its cooldown; many rules on the same facts cost the statements of one; after a
metrics refresh through the queue; and when a report is ready."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, text

from northstar.alerts import service as alerts_service
from northstar.core.db import Database
from northstar.core.permissions import Principal, Role
from northstar.integrations import service as integrations_service
from northstar.metrics import service as metrics_service
from northstar.metrics.series import Point, replace_series
from tests.alerts.conftest import Run, evaluate, firings_of, history, inbox_of, make_rule, today, write_points
from tests.conftest import Mailbox
from tests.factories import Account

D = dt.timedelta


async def _titles(client: httpx.AsyncClient, account: Account) -> list[str]:
    return [message["title"] for message in await inbox_of(client, account)]


async def test_a_threshold_fires_once_a_day_while_it_holds_and_again_after_it_stopped(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    day = today()
    await write_points(database, founder, "mrr", {day - D(days=1): 31000, day: 29950})
    below = await make_rule(
        client, founder, {"kind": "threshold", "metric": "mrr", "direction": "below", "value": 30000}
    )
    above = await make_rule(
        client, founder, {"kind": "threshold", "metric": "mrr", "direction": "above", "value": 30000}
    )
    assert await evaluate(database, founder) == 1
    assert await evaluate(database, founder) == 0  # evaluated again (recomputes repeat): nothing more
    fired = await firings_of(database, founder, below["id"])
    assert [(row["day"], row["subject"], row["resolved_at"]) for row in fired] == [(day, "mrr", None)]
    assert fired[0]["title"] == "MRR is below 300.00 USD"
    assert await firings_of(database, founder, above["id"]) == []
    await work()
    messages = await inbox_of(client, founder)
    assert [(m["title"], m["kind"]) for m in messages] == [("MRR is below 300.00 USD", "threshold")]
    assert messages[0]["body"] == (f"MRR is 299.50 USD on {day:%d %B %Y}, below the threshold of 300.00 USD.")
    assert messages[0]["url"].endswith("/app/kpis/mrr")

    rule = (await client.get(f"/api/v1/notifications/rules/{below['id']}", headers=founder.headers)).json()["data"]
    assert rule["lastEvaluatedAt"] is not None and rule["lastError"] is None
    assert rule["updatedAt"] == below["updatedAt"]  # being evaluated is not a change of the rule

    await write_points(database, founder, "mrr", {day: 30500})  # no longer below: resolved, and above fires
    assert await evaluate(database, founder) == 1
    assert (await firings_of(database, founder, below["id"]))[0]["resolved_at"] is not None
    await write_points(database, founder, "mrr", {day: 29000})  # below again the same day: that day's alert is out
    assert await evaluate(database, founder) == 0
    assert len(await firings_of(database, founder, below["id"])) == 1


async def test_the_cooldown_keeps_the_same_alert_from_going_out_again_too_soon(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    day = today()
    await write_points(database, founder, "customers", {day: 5})
    rule = await make_rule(
        client, founder, {"kind": "threshold", "metric": "customers", "direction": "below", "value": 10}
    )
    assert await evaluate(database, founder) == 1
    # that firing was yesterday's, two hours ago, and its condition stopped holding since
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await session.execute(
            text(
                "UPDATE alerts.firings SET day = day - 1, fired_at = now() - interval '2 hours', resolved_at = now()"
                " WHERE rule_id = :rule"
            ),
            {"rule": uuid.UUID(rule["id"])},
        )
    assert await evaluate(database, founder) == 0  # within the default day of cooldown
    path = f"/api/v1/notifications/rules/{rule['id']}"
    assert (await client.patch(path, json={"cooldownMinutes": 60}, headers=founder.headers)).status_code == 200
    assert await evaluate(database, founder) == 1
    assert [row["day"] for row in await firings_of(database, founder, rule["id"])] == [day - D(days=1), day]


async def test_a_change_over_a_window_fires_in_its_direction(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    day = today()
    await write_points(database, founder, "sessions", {day - D(days=7): 1000, day - D(days=1): 990, day: 800})
    down = await make_rule(
        client, founder, {"kind": "change", "metric": "sessions", "direction": "down", "percent": 15, "windowDays": 7}
    )
    up = await make_rule(
        client, founder, {"kind": "change", "metric": "sessions", "direction": "up", "percent": 15, "windowDays": 7}
    )
    too_little = await make_rule(
        client, founder, {"kind": "change", "metric": "sessions", "percent": 25, "windowDays": 7}
    )
    one_day = await make_rule(client, founder, {"kind": "change", "metric": "sessions", "percent": 15, "windowDays": 1})
    no_history = await make_rule(client, founder, {"kind": "change", "metric": "orders", "percent": 1})
    assert await evaluate(database, founder) == 2
    fired = await firings_of(database, founder, down["id"])
    assert fired[0]["title"] == "Sessions fell 20.0 % in 7 days"
    assert [len(await firings_of(database, founder, rule["id"])) for rule in (up, too_little, no_history)] == [0, 0, 0]
    assert (await firings_of(database, founder, one_day["id"]))[0]["title"] == "Sessions fell 19.2 % in 1 day"


async def test_an_anomaly_fires_for_a_flagged_day_once(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    day = today()
    history_days = {day - D(days=back): 100 + back % 5 for back in range(1, 9 * 7)}
    await write_points(database, founder, "sessions", {**history_days, day: 400})
    either = await make_rule(client, founder, {"kind": "anomaly", "metric": "sessions"})
    down = await make_rule(client, founder, {"kind": "anomaly", "metric": "sessions", "direction": "down"})
    monthly = await make_rule(client, founder, {"kind": "anomaly", "metric": "cohort_size"})
    monthly_week = await make_rule(client, founder, {"kind": "anomaly", "metric": "cohort_size", "lookbackDays": 7})
    async with database.tenant_transaction(org_id=founder.org_id) as session:
        await replace_series(
            session,
            org_id=founder.org_id,
            source="monthly",
            points=[Point("cohort_size", "month", day.replace(day=1), 3)],
        )
    assert await evaluate(database, founder) == 1
    assert await evaluate(database, founder) == 0
    fired = await firings_of(database, founder, either["id"])
    assert [(row["day"], row["subject"]) for row in fired] == [(day, "sessions")]
    assert fired[0]["title"] == f"Unusual Sessions on {day:%d %B %Y}"
    assert fired[0]["resolved_at"] is not None  # an event: done as it fires
    assert await firings_of(database, founder, down["id"]) == []
    for unusable in (monthly, monthly_week):  # the second is told the error the first read
        path = f"/api/v1/notifications/rules/{unusable['id']}"
        assert "monthly values only" in (await client.get(path, headers=founder.headers)).json()["data"]["lastError"]


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    """The statements sent through ``database`` meanwhile (the rows of one many-row insert are one)."""
    sent: list[str] = []

    def note(connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", note)


async def test_many_rules_on_one_metric_cost_what_one_does(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    """Rules share their facts: each value and anomaly scan is read once per evaluation, what fires is decided from
    one read of the firings and written at once, so thirty more rules on sessions add no statement, firing or not; and
    each rule fires as it would alone."""
    day = today()
    await write_points(
        database, founder, "sessions", {**{day - D(days=back): 100 + back % 5 for back in range(1, 63)}, day: 400}
    )
    conditions = [
        {"kind": "threshold", "metric": "sessions", "direction": "below", "value": 1000},
        {"kind": "change", "metric": "sessions", "percent": 50, "windowDays": 7},
        {"kind": "anomaly", "metric": "sessions"},
    ]
    alone = [await make_rule(client, founder, condition) for condition in conditions]

    async def evaluated() -> tuple[int, int]:
        with _statements(database) as sent:
            fired = await evaluate(database, founder)
        return fired, len(sent)

    fired, statements = await evaluated()
    assert fired == 3
    nothing_new = await evaluated()
    assert nothing_new[0] == 0
    unusual = f"Unusual Sessions on {day:%d %B %Y}"
    titles = ["Sessions is below 1,000", "Sessions rose 292.2 % in 7 days", unusual]
    alike = [  # other conditions on the same facts, and the same conditions again, five rules each
        (conditions[0] | {"value": 1001}, "Sessions is below 1,001"),
        (conditions[1] | {"percent": 60}, titles[1]),
        (conditions[2] | {"direction": "up"}, unusual),
        *zip(conditions, titles, strict=True),
    ]
    many = [(await make_rule(client, founder, condition), title) for condition, title in alike for _ in range(5)]
    assert await evaluated() == (len(many), statements)
    assert await evaluated() == nothing_new
    for rule, title in [*zip(alone, titles, strict=True), *many]:
        assert [row["title"] for row in await firings_of(database, founder, rule["id"])] == [title]


async def test_evaluations_at_the_same_time_fire_once(
    client: httpx.AsyncClient, founder: Account, database: Database
) -> None:
    """Each decides from the firings it reads once it has the organization's turn (the advisory lock)."""
    await write_points(database, founder, "customers", {today(): 5})
    rule = await make_rule(
        client, founder, {"kind": "threshold", "metric": "customers", "direction": "below", "value": 10}
    )
    assert sorted(await asyncio.gather(*(evaluate(database, founder) for _ in range(3)))) == [0, 0, 1]
    assert len(await firings_of(database, founder, rule["id"])) == 1


async def _goal(client: httpx.AsyncClient, account: Account, **body: Any) -> str:
    response = await client.post("/api/v1/dashboard/goals", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def test_goals_at_risk_and_missed(client: httpx.AsyncClient, founder: Account, database: Database) -> None:
    day = today()
    await write_points(database, founder, "customers", {day - D(days=back): 100 for back in range(0, 30)})
    at_risk = await _goal(
        client,
        founder,
        metric="customers",
        target=200,
        startDate=(day - D(days=10)).isoformat(),
        targetDate=(day + D(days=10)).isoformat(),
    )
    missed = await _goal(
        client,
        founder,
        metric="customers",
        target=150,
        startDate=(day - D(days=20)).isoformat(),
        targetDate=(day - D(days=1)).isoformat(),
    )
    any_goal = await make_rule(client, founder, {"kind": "goal"})
    only_missed = await make_rule(client, founder, {"kind": "goal", "goalId": at_risk, "statuses": ["missed"]})
    this_one = await make_rule(client, founder, {"kind": "goal", "goalId": missed})
    assert await evaluate(database, founder) == 3
    subjects = {row["subject"]: row["title"] for row in await firings_of(database, founder, any_goal["id"])}
    assert subjects == {
        f"goal:{at_risk}:at_risk": f"Goal at risk: Customers to 200 by {day + D(days=10):%d %B %Y}",
        f"goal:{missed}:missed": f"Goal missed: Customers to 150 by {day - D(days=1):%d %B %Y}",
    }
    assert await firings_of(database, founder, only_missed["id"]) == []
    assert [row["subject"] for row in await firings_of(database, founder, this_one["id"])] == [f"goal:{missed}:missed"]


async def _integration(database: Database, account: Account, name: str) -> uuid.UUID:
    """An integration as its sync leaves it (no sync is queued: there is no provider here)."""
    async with database.tenant_transaction(org_id=account.org_id) as session:
        found = await integrations_service.connect(
            session,
            principal=Principal(org_id=account.org_id, role=Role.FOUNDER, user_id=account.user_id),
            provider="stripe",
            name=name,
            credentials={"api_key": "sk_test_x"},
            config={},
            test=False,
            queue_sync=False,
        )
        return found.id


async def _sync_outcome(database: Database, account: Account, integration_id: uuid.UUID, **values: Any) -> None:
    async with database.tenant_transaction(org_id=account.org_id) as session:
        await session.execute(
            text(
                "UPDATE integrations.integrations SET status = :status, last_error = :last_error,"
                " last_success_at = :last_success_at WHERE id = :id"
            ),
            {"id": integration_id, "status": "active", "last_error": None, "last_success_at": None, **values},
        )


async def test_integrations_in_error_or_behind(client: httpx.AsyncClient, founder: Account, database: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    broken = await _integration(database, founder, "Billing")
    behind = await _integration(database, founder, "Shop")
    fresh = await _integration(database, founder, "Traffic")
    await _sync_outcome(database, founder, broken, status="error", last_error="Stripe refused the API key")
    await _sync_outcome(database, founder, behind, last_success_at=now - D(hours=30))
    await _sync_outcome(database, founder, fresh, last_success_at=now - D(hours=1))
    errors = await make_rule(client, founder, {"kind": "integration", "problem": "error"})
    lag = await make_rule(client, founder, {"kind": "integration", "problem": "lag", "hours": 24})
    only_fresh = await make_rule(
        client, founder, {"kind": "integration", "integrationId": str(fresh), "problem": "lag", "hours": 2}
    )
    assert await evaluate(database, founder) == 2
    [error] = await firings_of(database, founder, errors["id"])
    assert (error["subject"], error["title"]) == (f"integration:{broken}:error", "Billing needs attention")
    [late] = await firings_of(database, founder, lag["id"])
    assert (late["subject"], late["title"]) == (f"integration:{behind}:lag", "Shop has not synced for 30 hours")
    assert await firings_of(database, founder, only_fresh["id"]) == []

    await _sync_outcome(database, founder, broken, last_success_at=now)  # repaired: the alert is closed
    await evaluate(database, founder)
    assert (await firings_of(database, founder, errors["id"]))[0]["resolved_at"] is not None


async def test_a_ready_report_is_told_once(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    rule = await make_rule(client, founder, {"kind": "report"})
    await make_rule(client, founder, {"kind": "report"}, enabled=False)
    report_id = uuid.uuid4()
    for expected in (1, 0):
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            fired = await alerts_service.report_ready(
                session, org_id=founder.org_id, report_id=report_id, title="March 2026", url="https://example.com/r/1"
            )
        assert fired == expected
    assert await evaluate(database, founder) == 0  # reports fire when one is ready, never on evaluation
    await work()
    [message] = await inbox_of(client, founder)
    assert (message["title"], message["kind"], message["url"]) == (
        "Report ready: March 2026",
        "report",
        "https://example.com/r/1",
    )
    deliveries = await history(client, founder, ruleId=rule["id"])
    assert sorted((row["channel"], row["status"]) for row in deliveries) == [("email", "sent"), ("in_app", "sent")]


async def test_rules_are_evaluated_after_a_metrics_refresh(
    client: httpx.AsyncClient, founder: Account, database: Database, work: Run, mailbox: Mailbox
) -> None:
    """The metrics module announces its refresh; the alerts manifest's reaction queues an evaluation, once however
    many refreshes happen before it runs."""
    await write_points(database, founder, "orders", {today(): 3})
    await make_rule(client, founder, {"kind": "threshold", "metric": "orders", "direction": "below", "value": 5})
    for _ in range(3):
        async with database.tenant_transaction(org_id=founder.org_id) as session:
            await metrics_service.refresh(session, org_id=founder.org_id, touched=metrics_service.Touched())
    async with database.sessionmaker() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'alerts.evaluate' AND status = 'todo'"
                " AND args->>'org_id' = :org"
            ),
            {"org": str(founder.org_id)},
        )
    assert waiting == 1
    await work()
    assert await _titles(client, founder) == ["Orders is below 5"]
