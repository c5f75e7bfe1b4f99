"""The KPIx coach and alerts (issue 13): a monthly report's fact sheet and deterministic narrative, a video
report, 1,000 alert rules evaluated after a recompute, and one alert fanned out to 1,000 members' inboxes.

Runs a real ``northstar run`` on a fresh data dir with a generated Stripe account of ``NORTHSTAR_BENCH_CUSTOMERS``
customers (default 10,000) over 36 months, stored and computed in-process as the KPIx bench does. Baselines measured
in the same run:

* narrative: the dashboard's headline cards (``GET /dashboard``'s query), the cheapest read of the same metrics;
* video: the video's own length (the real-time factor is render time over video time; a monthly report's video
  runs 60 to 90 s);
* rule evaluation: the same evaluation with no rule firing (the second pass: every alert already told);
* fan-out: the same alert to one member (the worker's own delivery time for a single message).

Rules and members are written straight into the tables (1,000 sign-ups would measure password hashing); the alert
is fired by ``alerts.service.report_ready``, and latency is from the call to each inbox message being readable (and
pushed: the events go out on the same commit). The fan-out is measured before the rules are
evaluated, while the worker has nothing else to send.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from bench.kpix import MONTHS, Founder, _batch_of, _months_ago, _org_of
from bench.server import running_server
from bench.socialproof import conninfo, server_database
from northstar import modules  # noqa: F401 - the modules' grants, which decide whom an alert reaches, as in the server
from northstar.accounts.models import User
from northstar.accounts.service import pii
from northstar.alerts import service as alerts_service
from northstar.alerts.service import evaluation
from northstar.core.db import Database
from northstar.demo.stripe_account import Account, generate, rates_body
from northstar.metrics import queries, service
from northstar.reports import playbook, video, writer
from northstar.reports.service import coaching, generation
from northstar.settings import Settings

RUNS = 7
RULES = 1_000
FAN_OUT = 1_000
RULE_SHAPES = (  # a mix of what founders watch, 1,000 in all
    ("threshold", {"metric": "mrr", "direction": "below", "value": 1}),
    ("threshold", {"metric": "customers", "direction": "above", "value": 1}),
    ("change", {"metric": "mrr", "direction": "either", "percent": 1, "window_days": 7}),
    ("change", {"metric": "arr", "direction": "down", "percent": 5, "window_days": 30}),
    ("anomaly", {"metric": "mrr", "direction": "either", "lookback_days": 3}),
    ("goal", {"goal_id": None, "statuses": ["at_risk", "missed"]}),
)


def _video_spec(found: coaching.Insights) -> video.VideoSpec:
    """The video of the month's report, as the report job builds it."""
    sheet = found.sheet
    written = generation.Written(
        found.narrative.title, found.narrative, list(sheet.facts), found.steps, "deterministic", (), sheet
    )
    return generation.video_of("monthly_report", sheet.month, sheet.source.today, written)


async def _measure(database: Database, org_id: uuid.UUID) -> dict[str, Any]:
    last_month = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)

    async def narrative() -> coaching.Insights:
        async with database.tenant_transaction(org_id=org_id) as session:
            return await coaching.insights(session, org_id=org_id, month=last_month, model=None)

    async def headline() -> queries.Headline:
        async with database.tenant_transaction(org_id=org_id) as session:
            return await queries.headline(session, org_id=org_id, investor=False)

    async def timed(action: Any) -> float:
        started = time.perf_counter()
        await action()
        return time.perf_counter() - started

    first = await timed(narrative)  # right after the recompute: PostgreSQL has no statistics of the new rows yet
    stories = sorted([await timed(narrative) for _ in range(RUNS)])
    cards = sorted([await timed(headline) for _ in range(RUNS)])
    found = await narrative()
    sheet_only = []
    for _ in range(RUNS):
        started = time.perf_counter()
        writer.write(found.sheet, playbook.next_steps(found.sheet))
        sheet_only.append(time.perf_counter() - started)
    spec = _video_spec(found)
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        made = video.render_video(spec, Path(scratch))
        rendered = time.perf_counter() - started
    return {
        "facts": len(found.sheet.facts),
        "baseline_headline_cards_p50_ms": 1000 * statistics.median(cards),
        "monthly_facts_and_narrative_first_ms": 1000 * first,
        "monthly_facts_and_narrative_p50_ms": 1000 * statistics.median(stories),
        "monthly_facts_and_narrative_max_ms": 1000 * stories[-1],
        "writer_and_playbook_alone_p50_ms": 1000 * statistics.median(sheet_only),
        "video_seconds": made.duration_seconds,
        "video_narrated": made.narrated,
        "video_render_s": rendered,
        "video_real_time_factor": rendered / made.duration_seconds,
    }


def _founder_of(data_dir: Path, org_id: uuid.UUID) -> uuid.UUID:
    with psycopg.connect(conninfo(data_dir)) as connection:
        row = connection.execute(
            "SELECT user_id FROM core.memberships WHERE org_id = %s AND role = 'founder'", (org_id,)
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def _write_rules(data_dir: Path, org_id: uuid.UUID, founder: uuid.UUID) -> None:
    with psycopg.connect(conninfo(data_dir)) as connection, connection.cursor() as cursor:
        for number in range(RULES):
            kind, params = RULE_SHAPES[number % len(RULE_SHAPES)]
            rule_id = uuid.uuid4()
            cursor.execute(
                "INSERT INTO alerts.rules (id, org_id, name, kind, params, cooldown_minutes, created_by)"
                " VALUES (%s, %s, %s, %s, %s, 1440, %s)",
                (rule_id, org_id, f"bench rule {number}", kind, Jsonb(params), founder),
            )
            cursor.execute(
                "INSERT INTO alerts.rule_recipients (org_id, rule_id, user_id) VALUES (%s, %s, %s)",
                (org_id, rule_id, founder),
            )


def _write_members(data_dir: Path, org_id: uuid.UUID) -> list[uuid.UUID]:
    """1,000 members of the org, who get report alerts in the console only."""
    members = [uuid.uuid4() for _ in range(FAN_OUT)]
    settings = Settings(data_dir=data_dir)  # the server's key seals the e-mail addresses as sign-up does
    with psycopg.connect(conninfo(data_dir)) as connection, connection.cursor() as cursor:
        for user_id in members:
            user = User(id=user_id)
            pii.seal_email(settings, user, f"bench-{user_id.hex}@example.com")
            cursor.execute(
                "INSERT INTO auth.users (id, email_encrypted, email_encryption_key_id, email_blind_index,"
                " password_hash) VALUES (%s, %s, %s, %s, 'bench')",
                (user_id, user.email_encrypted, user.email_encryption_key_id, user.email_blind_index),
            )
            cursor.execute(
                "INSERT INTO core.memberships (id, org_id, user_id, role) VALUES (%s, %s, %s, 'member')",
                (uuid.uuid4(), org_id, user_id),
            )
            cursor.execute(
                "INSERT INTO alerts.preferences (org_id, user_id, channels) VALUES (%s, %s, %s)",
                (org_id, user_id, Jsonb({"report": ["in_app"]})),
            )
    return members


def _report_rule(data_dir: Path, org_id: uuid.UUID, recipients: list[uuid.UUID]) -> None:
    with psycopg.connect(conninfo(data_dir)) as connection, connection.cursor() as cursor:
        cursor.execute("DELETE FROM alerts.rules WHERE org_id = %s AND kind = 'report'", (org_id,))
        rule_id = uuid.uuid4()
        cursor.execute(
            "INSERT INTO alerts.rules (id, org_id, name, kind, params, cooldown_minutes)"
            " VALUES (%s, %s, 'bench reports', 'report', '{}', 0)",
            (rule_id, org_id),
        )
        for user_id in recipients:
            cursor.execute(
                "INSERT INTO alerts.rule_recipients (org_id, rule_id, user_id) VALUES (%s, %s, %s)",
                (org_id, rule_id, user_id),
            )


async def _fan_out(database: Database, data_dir: Path, org_id: uuid.UUID, recipients: list[uuid.UUID]) -> list[float]:
    """Seconds from an alert's firing to each recipient's inbox message, delivered by the server's worker."""
    _report_rule(data_dir, org_id, recipients)
    title = f"bench {uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    async with database.tenant_transaction(org_id=org_id) as session:
        await alerts_service.report_ready(session, org_id=org_id, report_id=uuid.uuid4(), title=title, url="/app/")
    seen: list[float] = []
    with psycopg.connect(conninfo(data_dir)) as connection:
        while len(seen) < len(recipients) and time.perf_counter() - started < 60:
            count = connection.execute(
                "SELECT count(*) FROM alerts.inbox WHERE org_id = %s AND title = %s",
                (org_id, f"Report ready: {title}"),
            ).fetchone()
            reached = int(count[0]) if count else 0
            seen += [time.perf_counter() - started] * (reached - len(seen))
            if len(seen) < len(recipients):
                await asyncio.sleep(0.01)
    return sorted(seen)


async def _alerts(database: Database, data_dir: Path, org_id: uuid.UUID) -> dict[str, Any]:
    founder = _founder_of(data_dir, org_id)
    # the fan-out first, alone: after the evaluation the worker is still sending its alerts
    single = await _fan_out(database, data_dir, org_id, [founder])
    many = await _fan_out(database, data_dir, org_id, _write_members(data_dir, org_id))
    _write_rules(data_dir, org_id, founder)

    async def evaluate() -> int:
        async with database.tenant_transaction(org_id=org_id) as session:
            return await evaluation.evaluate(session, org_id=org_id)

    started = time.perf_counter()
    fired = await evaluate()
    first = time.perf_counter() - started
    again = []
    for _ in range(3):
        started = time.perf_counter()
        await evaluate()
        again.append(time.perf_counter() - started)
    return {
        "rules": RULES,
        "rules_evaluated_first_pass_s": first,
        "alerts_fired_first_pass": fired,
        "baseline_rules_evaluated_nothing_new_s": statistics.median(again),
        "baseline_one_recipient_latency_s": single[-1] if single else float("nan"),
        "fan_out_recipients_reached": len(many),
        "fan_out_p50_s": statistics.median(many) if many else float("nan"),
        "fan_out_p99_s": many[round(0.99 * (len(many) - 1))] if many else float("nan"),
        "fan_out_last_s": many[-1] if many else float("nan"),
    }


async def _prepare_and_measure(
    data_dir: Path, org_id: uuid.UUID, integration_id: uuid.UUID, account: Account
) -> dict[str, Any]:
    database = server_database(data_dir)
    try:
        async with database.tenant_transaction(org_id=org_id) as session:
            await service.store_batch(session, org_id=org_id, integration_id=integration_id, batch=_batch_of(account))
        async with database.tenant_transaction(org_id=org_id) as session:
            await service.recompute(session, org_id=org_id)
        results = {"customers": len(account.customers)} | await _measure(database, org_id)
        return results | await _alerts(database, data_dir, org_id)
    finally:
        await database.dispose()


def run() -> dict[str, Any]:
    customers = int(os.environ.get("NORTHSTAR_BENCH_CUSTOMERS", "10000"))
    with running_server("run") as server:
        founder = Founder(server.base_url, "bench-coach@example.com")
        integration = founder.connect_stripe({}, test=False)
        account = generate(customers=customers, months=MONTHS, seed=13, start=_months_ago(MONTHS))
        founder.send("PUT", "/api/v1/metrics/fx-rates", rates_body(account.fx_rates))
        org_id = _org_of(server, integration["id"])
        results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
        results |= asyncio.run(_prepare_and_measure(server.data_dir, org_id, uuid.UUID(integration["id"]), account))
        results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
