"""DevBizOps (issue 15): a GitHub backfill of 20,000 pull requests from the fake against its rate limit, a full
DORA and flow recompute of 50 repositories over 12 months, the investor dashboard written and rendered over them,
and TechTranslator's deterministic reading of a 60-minute call.

Runs a real ``northstar run`` (API and worker) on a fresh data dir. Baselines measured in the same run:

* backfill: the fake's rate limit is the ceiling. ``NORTHSTAR_BENCH_GITHUB_RATE`` requests a second (default 400) in
  one-second windows, stated in ``X-RateLimit-*`` as GitHub states it; a perfect client needing the same requests
  per pull request would reach ``ceiling_prs_per_s``, and the backfill is reported against it. The requests each
  pull request costs (its list page share, its reviews, and its commits once merged) say what the same sync costs
  against GitHub's real 5,000 requests an hour.
* recompute: reading the unified model alone (``engineering_facts``), the part of a recompute that no engine can
  avoid; the engine and the KPI store's write are the rest. ``NORTHSTAR_BENCH_DORA_PER_MONTH`` pull requests a
  repository a month (default 30: about 18,000 pull requests, 12,000 deployments).
* investor dashboard: InvestorDashboardAgent's deterministic writing over the recompute's org (its facts gathered
  from the KPI store, the engineering metrics and the roadmap), and rendering its page and PDF; baseline: reading the
  overall DORA report it starts from.
* TechTranslator: a generated 60-minute call (two speakers, 150 words a minute, a request every minute or so) read
  in-process, with 5,000 existing work items to check for duplicates; baselines: parsing the call into utterances
  alone, and the same reading with no work items.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import statistics
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from bench.server import Server, running_server, signup
from bench.socialproof import server_database
from northstar.core.db import Database, settings_of
from northstar.demo.engineering_history import generate
from northstar.demo.github_api import FakeGitHub
from northstar.demo.loopback import serving
from northstar.devbizops import service, translator
from northstar.devbizops.service import investors as investors_service
from northstar.integrations.sync import seal
from northstar.reports import rendering

REPOSITORIES = 50
MONTHS = 12
RECOMPUTES = 5
DASHBOARDS = 3
LOOPBACK = {"NORTHSTAR_OUTBOUND__ALLOW_PRIVATE_NETWORKS": "true", "NORTHSTAR_OUTBOUND__ALLOW_HTTP": "true"}


def _github(pulls: int, rate: int) -> FakeGitHub:
    """``pulls`` pull requests over 50 repositories and 12 months: four in five merged, with up to two reviews."""
    fake = FakeGitHub(limit=rate, window_seconds=1.0)
    chance = random.Random(15)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=30 * MONTHS)
    for number in range(REPOSITORIES):
        fake.add_repo(f"service-{number:03d}")
    for index in range(pulls):
        created = start + dt.timedelta(minutes=chance.randint(0, 30 * MONTHS * 24 * 60))
        merged = created + dt.timedelta(hours=chance.randint(1, 72)) if chance.random() < 0.8 else None
        fake.add_pull(
            f"service-{index % REPOSITORIES:03d}",
            created=created,
            first_commit=created - dt.timedelta(hours=chance.randint(0, 48)),
            reviews=[(f"reviewer-{chance.randint(0, 9)}", created + dt.timedelta(hours=1))] * chance.randint(0, 2),
            merged=merged,
        )
    return fake


async def _backfill(server: Server, token: str) -> dict[str, Any]:
    pulls = int(os.environ.get("NORTHSTAR_BENCH_PRS", "20000"))
    rate = int(os.environ.get("NORTHSTAR_BENCH_GITHUB_RATE", "400"))
    fake = _github(pulls, rate)
    async with (
        serving(fake.app) as url,
        httpx.AsyncClient(base_url=server.base_url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as api,
    ):
        started = time.perf_counter()
        connected = await api.post(
            "/api/v1/integrations",
            json={
                "provider": "github",
                "name": "GitHub",
                "credentials": {"accessToken": fake.token, "webhookSecret": "bench"},
                "config": {"owner": fake.owner, "baseUrl": url, "requestsPerSecond": 1000, "concurrency": 16},
                "test": False,
            },
        )
        connected.raise_for_status()
        integration = connected.json()["data"]["id"]
        while True:
            runs = (await api.get(f"/api/v1/integrations/{integration}/runs")).json()["data"]
            if runs and runs[0]["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.25)
        elapsed = time.perf_counter() - started
    if runs[0]["status"] != "succeeded":
        raise RuntimeError(f"the backfill failed: {runs[0]['error']}")
    answered = len(fake.vendor.seen) - fake.limited - fake.not_modified
    per_pull = answered / pulls
    return {
        "backfill_pull_requests": runs[0]["fetched"]["pull_requests"],
        "backfill_seconds": elapsed,
        "backfill_prs_per_s": pulls / elapsed,
        "fake_rate_limit_requests_per_s": rate,
        "requests_per_pr": per_pull,
        "ceiling_prs_per_s": rate / per_pull,
        "backfill_share_of_ceiling": (pulls / elapsed) / (rate / per_pull),
        "requests_refused_for_spent_limit": fake.limited,
        "prs_per_hour_at_githubs_5000_requests": 5000 / per_pull,
    }


def _org(server: Server, token: str) -> uuid.UUID:
    me = httpx.get(f"{server.base_url}/api/v1/organization", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    me.raise_for_status()
    return uuid.UUID(me.json()["data"]["id"])


async def _recompute(server: Server, org_id: uuid.UUID) -> dict[str, Any]:
    per_month = int(os.environ.get("NORTHSTAR_BENCH_DORA_PER_MONTH", "30"))
    history = generate(
        repositories=REPOSITORIES, months=MONTHS, end=dt.date.today(), teams=[], per_month=per_month, seed=15
    )
    database = server_database(server.data_dir)
    try:
        async with database.tenant_transaction(org_id=org_id) as session:
            # a paused GitHub integration, as connecting leaves it: the history stands for what its syncs wrote
            integration_id = uuid.uuid4()
            await session.execute(
                text(
                    "INSERT INTO integrations.integrations (id, org_id, provider, name, status, config,"
                    " credentials_encrypted) VALUES (:id, :org, 'github', 'GitHub', 'paused', '{}', :sealed)"
                ),
                {"id": integration_id, "org": org_id, "sealed": seal(settings_of(session), integration_id, {})},
            )
            await service.store_batch(session, org_id=org_id, integration_id=integration_id, batch=history.batch)
        reads, runs, points = [], [], 0
        for _ in range(RECOMPUTES):
            async with database.tenant_transaction(org_id=org_id) as session:
                started = time.perf_counter()
                await service.engineering_facts(session)
                reads.append(time.perf_counter() - started)
            async with database.tenant_transaction(org_id=org_id) as session:
                started = time.perf_counter()
                points = await service.recompute(session, org_id=org_id)
                runs.append(time.perf_counter() - started)
        dashboard = await _dashboard(database, org_id)
    finally:
        await database.dispose()
    return dashboard | {
        "recompute_pull_requests": len(history.batch.changes),
        "recompute_deployments": len(history.batch.deployments),
        "recompute_points_written": points,
        "recompute_p50_s": statistics.median(runs),
        "recompute_max_s": max(runs),
        "baseline_read_model_p50_s": statistics.median(reads),
    }


async def _dashboard(database: Database, org_id: uuid.UUID) -> dict[str, Any]:
    """InvestorDashboardAgent over the same org, deterministic: gathering its facts and writing it, then rendering
    its page and PDF (the reports module's part). Baseline: reading the overall DORA report alone."""
    reads, builds, renders = [], [], []
    for _ in range(DASHBOARDS):
        async with database.tenant_transaction(org_id=org_id) as session:
            started = time.perf_counter()
            await service.dora_report(session, org_id=org_id, months=investors_service.TREND_MONTHS, kind="overall")
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            dashboard = await investors_service.build(session, org_id=org_id, org_name="Bench")
            written = await investors_service.write(session, org_id=org_id, dashboard=dashboard, model=None, spent=[])
            document = investors_service.document(written, org_name="Bench")
            builds.append(time.perf_counter() - started)
        started = time.perf_counter()
        rendering.html(document)
        rendering.pdf(document)
        renders.append(time.perf_counter() - started)
    return {
        "dashboard_facts": len(dashboard.facts),
        "dashboard_charts": len(dashboard.charts),
        "dashboard_write_p50_s": statistics.median(builds),
        "dashboard_render_html_pdf_p50_s": statistics.median(renders),
        "baseline_dashboard_dora_read_p50_s": statistics.median(reads),
    }


CALL_MINUTES = 60
WORDS_A_MINUTE = 150
TRANSLATIONS = 5
FILLER_WORDS = [
    "so",
    "yeah",
    "we",
    "looked",
    "at",
    "the",
    "numbers",
    "last",
    "quarter",
    "and",
    "the",
    "team",
    "has",
    "been",
    "growing",
    "quite",
    "a",
    "lot",
    "since",
    "the",
    "spring",
    "our",
    "onboarding",
    "went",
    "fine",
    "overall",
    "the",
    "people",
    "in",
    "finance",
    "are",
    "happy",
    "with",
    "the",
    "reports",
    "we",
    "get",
    "every",
    "monday",
]
ASKS = (
    "We need SSO with Okta for all {n} employees before we sign.",
    "Is there a way to export the weekly report to CSV so that finance can reconcile it?",
    "It would be great to have a Slack alert when a sync fails.",
    "We can't renew unless we get an audit log of every change an admin makes.",
    "Could you add a webhook whenever a deal is won?",
    "We'd love a dark mode, eventually.",
    "Our contractors should only see the {n} projects they are assigned to.",
    "We need invoices in euros for our German entity.",
)


def _call(seed: int = 15) -> str:
    """A 60-minute call: two speakers taking turns, about 150 words a minute, one ask about every minute."""
    chance = random.Random(seed)
    lines, words = [], 0
    while words < CALL_MINUTES * WORDS_A_MINUTE:
        minute = words // WORDS_A_MINUTE
        speaker = "Priya (Globex)" if chance.random() < 0.6 else "Sam (Northstar)"
        said = " ".join(chance.choice(FILLER_WORDS) for _ in range(chance.randint(12, 40))).capitalize() + "."
        if speaker.startswith("Priya") and chance.random() < 0.45:
            said += " " + chance.choice(ASKS).format(n=chance.randint(5, 900))
        lines.append(f"[{minute // 60:02d}:{minute % 60:02d}] {speaker}: {said}")
        words += len(said.split())
    return "\n".join(lines) + "\n"


def _translate() -> dict[str, Any]:
    call = _call()
    items = [(f"ENG-{index}", f"{_tracker_title(index)}") for index in range(5000)]
    parses, bare, full = [], [], []
    found: list[translator.Requirement] = []
    for _ in range(TRANSLATIONS):
        started = time.perf_counter()
        translator.parse(call)
        parses.append(time.perf_counter() - started)
        started = time.perf_counter()
        found = translator.translate(call, customer="Globex")
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        translator.duplicates(translator.translate(call, customer="Globex"), items)
        full.append(time.perf_counter() - started)
    return {
        "call_words": len(call.split()),
        "call_characters": len(call),
        "requirements_found": len(found),
        "translate_with_5000_work_items_p50_ms": 1000 * statistics.median(full),
        "translate_with_5000_work_items_max_ms": 1000 * max(full),
        "baseline_translate_without_work_items_p50_ms": 1000 * statistics.median(bare),
        "baseline_parse_only_p50_ms": 1000 * statistics.median(parses),
    }


def _tracker_title(index: int) -> str:
    """Work item titles of a busy tracker: product areas and verbs, a few like the call's asks."""
    areas = ("billing", "reports", "login", "search", "export", "API", "mobile", "alerts", "onboarding", "settings")
    verbs = ("Fix", "Add", "Improve", "Refactor", "Document", "Speed up", "Redesign", "Remove")
    return f"{verbs[index % len(verbs)]} {areas[(index * 7) % len(areas)]} step {index}"


def run() -> dict[str, Any]:
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    results |= _translate()
    with running_server("run", **LOOPBACK) as server:
        results |= asyncio.run(_backfill(server, signup(server.base_url, "bench-github@example.com")))
        token = signup(server.base_url, "bench-dora@example.com")
        org_id = _org(server, token)
        results |= asyncio.run(_recompute(server, org_id))
    results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
