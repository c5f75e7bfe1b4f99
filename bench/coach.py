"""The KPIx coach (issue 13): a monthly report's fact sheet and deterministic narrative, and a 60 s video report.

Runs a real ``northstar run`` on a fresh data dir with a generated Stripe account of ``NORTHSTAR_BENCH_CUSTOMERS``
customers (default 10,000) over 36 months, stored and computed in-process as the KPIx bench does. Baselines measured
in the same run:

* narrative: the dashboard's headline cards (``GET /dashboard``'s query), the cheapest read of the same metrics;
* video: the video's own length (the real-time factor is render time over video time; a monthly report's video
  runs 60 to 90 s).
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

from bench.kpix import MONTHS, Founder, _batch_of, _months_ago, _org_of
from bench.server import running_server
from bench.socialproof import conninfo
from northstar.core.db import Database
from northstar.demo.stripe_account import Account, generate, rates_body
from northstar.metrics import queries, service
from northstar.reports import playbook, video, writer
from northstar.reports.service import coaching, generation

RUNS = 7


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


async def _prepare_and_measure(
    data_dir: Path, org_id: uuid.UUID, integration_id: uuid.UUID, account: Account
) -> dict[str, Any]:
    database = Database(conninfo(data_dir))
    try:
        async with database.tenant_transaction(org_id=org_id) as session:
            await service.store_batch(session, org_id=org_id, integration_id=integration_id, batch=_batch_of(account))
        async with database.tenant_transaction(org_id=org_id) as session:
            await service.recompute(session, org_id=org_id)
        return {"customers": len(account.customers)} | await _measure(database, org_id)
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
