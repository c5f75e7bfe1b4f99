"""Social proof (issue 4): widget ingestion, the widget feed, analytics over millions of raw events, script sizes.

Runs a real ``northstar serve`` (API only: no worker, so no periodic fold competes for the two cores or changes
what the analytics read while they are timed). Baselines are measured in the same run:

* ingestion: plain ``COPY`` of as many equivalent rows into an unindexed table without row-level security (the
  floor no ingestion can beat), and a bare fast-path route (the widget script answered 304) for the HTTP side;
* analytics: the same 30-day totals counted from the raw events with SQL, which is what the rollups avoid.

``NORTHSTAR_BENCH_EVENTS`` sets how many raw events the analytics site gets (default 10 million); a small number
makes a quick run. The analytics events are loaded through ``socialproof.ingest_staged`` itself (what the event
writer runs for every batch), not over HTTP, so 10 million take minutes instead of hours.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import psutil  # type: ignore[import-untyped]
import psycopg
from psycopg import sql
from sqlalchemy import text

from bench.server import PASSWORD, LoadResult, Server, running_server, signup, wrk
from northstar.core.db import APP_ROLE, Database
from northstar.socialproof.ingest import _COPY_STAGE, _CREATE_STAGE
from northstar.socialproof.service import rollups

EVENTS = int(os.environ.get("NORTHSTAR_BENCH_EVENTS", "10000000"))
LOAD_BATCH = 200_000
VISITORS = 200_000
PAGES = 400
UNFOLDED = 3_000  # visitor hash rows left unfolded: under load every flush of the writer leaves some per minute
ANALYTICS_REQUESTS = 50
ANALYTICS_WARMUP = 5
RAW_SQL_RUNS = 3
BATCH_EVENTS = 20
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
LOADER_BUDGET = 2 * 1024
WIDGET_BUDGET = 15 * 1024

# Raw events of the analytics site: mostly page views, popup interactions of its notifications, some purchases.
EVENT_MIX = {"page_view": 0.80, "impression": 0.12, "hover": 0.03, "close": 0.03, "click": 0.012, "purchase": 0.008}
INTERACTIONS = frozenset({"impression", "hover", "close", "click"})
PURCHASES = [
    json.dumps(
        {"firstName": name, "city": city, "country": country, "product": product, "amount": amount, "currency": "EUR"}
    )
    for name, city, country, product, amount in (
        ("Anna", "Hamburg", "DE", "Trail Shoes", 89.9),
        ("Luis", "Madrid", "ES", "Rain Jacket", 129.0),
        ("Mia", "Vienna", "AT", "Wool Socks", 14.5),
        ("Noah", "Lyon", "FR", "Day Pack", 59.0),
    )
]

COLLECT_SCRIPT = """
local site_key, domain, count = "%(site_key)s", "%(domain)s", %(count)d
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
function init(args)
  math.randomseed(os.time() * 1000 + id)
end
local function hex4() return string.format("%%04x", math.random(0, 65535)) end
local function uuid4()
  return hex4() .. hex4() .. "-" .. hex4() .. "-4" .. string.sub(hex4(), 2) .. "-" ..
    string.format("%%x", 8 + math.random(0, 3)) .. string.sub(hex4(), 2) .. "-" .. hex4() .. hex4() .. hex4()
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
function request()
  local events = {}
  for i = 1, count do
    events[i] = '{"id":"' .. uuid4() .. '","type":"page_view","url":"https://' .. domain .. '/p"}'
  end
  local body = '{"siteKey":"' .. site_key .. '","sentAt":"' .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ") ..
    '","events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
"""


# The same batches with custom field values on every event, from identified visitors (so every flush upserts profiles).
PROFILED_SCRIPT = COLLECT_SCRIPT.replace(
    """'","type":"page_view","url":"https://' .. domain .. '/p"}'""",
    """'","type":"page_view","url":"https://' .. domain .. '/p","custom":{"plan":"pro","seats":' ..
      math.random(1, 500) .. ',"vip":' .. (math.random() < 0.5 and "true" or "false") .. ',"company":"ACME"}}'""",
).replace(
    """'","events":['""",
    """'","visitor":{"userId":"u' .. math.random(1, %(visitors)d) .. '"},"events":['""",
)
PROFILED_VISITORS = 50_000


def conninfo(data_dir: Path) -> str:
    """The embedded database as its owner, over the socket named in ``postmaster.pid`` (no new server handle)."""
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres:@/postgres?host={lines[4].strip()}"


class CpuMeter:
    """CPU seconds of the API process and of this server's PostgreSQL during a load: which one is the bottleneck."""

    def __init__(self, api_pid: int, data_dir: Path) -> None:
        self.api = psutil.Process(api_pid)
        self.postmaster = psutil.Process(int((data_dir / "pg" / "postmaster.pid").read_text().split()[0]))
        self.api_s = self.pg_s = 0.0
        self.started: dict[int, float] = {}

    def _postgres(self) -> dict[int, float]:
        times = {}
        for process in [self.postmaster, *self.postmaster.children()]:
            try:
                cpu = process.cpu_times()
            except psutil.Error:
                continue
            times[process.pid] = cpu.user + cpu.system
        return times

    def __enter__(self) -> CpuMeter:
        cpu = self.api.cpu_times()
        self.api_s = -(cpu.user + cpu.system)
        self.started = self._postgres()
        return self

    def __exit__(self, *_: object) -> None:
        cpu = self.api.cpu_times()
        self.api_s += cpu.user + cpu.system
        self.pg_s = sum(seconds - self.started.get(pid, 0.0) for pid, seconds in self._postgres().items())


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


@dataclass
class Merchant:
    """A founder (their own organization) with an HTTP client that carries their token."""

    client: httpx.Client
    email: str

    def post(self, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=headers)
        if response.status_code >= 300:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        data: dict[str, Any] = response.json()["data"]
        return data

    def site(self, name: str, **settings: Any) -> dict[str, Any]:
        domain = f"{name}-{uuid.uuid4().hex[:8]}.example.com"
        return self.post("/api/v1/sites", {"name": name, "domain": domain, "settings": settings})

    def notification(self, site: dict[str, Any], name: str, kind: str, **source: Any) -> dict[str, Any]:
        return self.post(
            f"/api/v1/sites/{site['id']}/notifications",
            {"name": name, "type": kind, "status": "active", "source": source},
        )

    def login(self) -> None:
        """A fresh access token (they live 15 minutes; loading 10 M events takes longer)."""
        response = self.client.post("/api/v1/auth/login", json={"email": self.email, "password": PASSWORD})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['data']['tokens']['accessToken']}"


def merchant(base_url: str, email: str) -> Merchant:
    client = httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {signup(base_url, email)}"})
    return Merchant(client, email)


def _browser(site: dict[str, Any], user_agent: str = CHROME_UA) -> dict[str, str]:
    return {"Origin": f"https://{site['domain']}", "User-Agent": user_agent}


def _stored(database: str, site_id: str) -> int:
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*) FROM socialproof.notification_events WHERE site_id = %s", (site_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def _settled(database: str, site_id: str) -> int:
    """The site's stored rows once the writer has committed what was still in flight when wrk stopped."""
    count = -1
    while True:
        time.sleep(0.5)
        now = _stored(database, site_id)
        if now == count:
            return count
        count = now


# --- 1. ingestion through POST /api/v1/collect --------------------------------------------------------------------


@dataclass
class Collected:
    load: LoadResult
    stored: int
    flushes: int  # writer transactions, counted by the visitor hash rows they left (one per site and minute each)
    api_cpu_s: float
    pg_cpu_s: float


def _collect(
    server: Server,
    database: str,
    site: dict[str, Any],
    events: int,
    seconds: int,
    scratch: Path,
    *,
    template: str = COLLECT_SCRIPT,
) -> Collected:
    script = scratch / f"collect_{events}_{uuid.uuid4().hex[:6]}.lua"
    values = {"site_key": site["siteKey"], "domain": site["domain"], "count": events, "visitors": PROFILED_VISITORS}
    script.write_text(template % values)
    with CpuMeter(server.process.pid, server.data_dir) as cpu:
        result = wrk(f"{server.base_url}/api/v1/collect", seconds=seconds, headers=_browser(site), script=script)
    stored = _settled(database, site["id"])
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*) FROM socialproof.visitor_hashes WHERE site_id = %s", (site["id"],)
        ).fetchone()
    return Collected(result, stored, int(row[0]) if row else 0, cpu.api_s, cpu.pg_s)


def _raw_copy(database: str, rows: int, org_id: str, site_id: str) -> float:
    """Rows/s of plain ``COPY`` of ``rows`` page views (the stored columns) into an unindexed table without RLS."""
    now = datetime.now(UTC).isoformat()
    visitor = uuid.uuid4().hex
    ids = np.random.default_rng(1).bytes(16 * rows).hex()
    data = "".join(
        f"{ids[32 * n : 32 * n + 32]}\t{org_id}\t{site_id}\tpage_view\t\\N\t\\N\t{visitor}\t"
        f"https://shop.example.com/p\t{{}}\t{now}\n"
        for n in range(rows)
    ).encode()
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_raw_events")
        connection.execute("CREATE TABLE bench_raw_events (LIKE socialproof.notification_events INCLUDING DEFAULTS)")
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy(_COPY_STAGE.replace("event_stage", "bench_raw_events")) as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        elapsed = time.perf_counter() - started
        connection.execute("DROP TABLE bench_raw_events")
    return rows / elapsed


def _bare_widget(base_url: str, site: dict[str, Any], seconds: int) -> tuple[LoadResult, str]:
    """The widget script answered 304 from memory: the cheapest fast-path route, the HTTP floor of the others."""
    loader = httpx.get(f"{base_url}/w/{site['siteKey']}.js", timeout=30)
    loader.raise_for_status()
    found = re.search(r"/w/widget-[0-9a-f]+\.js", loader.text)
    if found is None:
        raise RuntimeError(f"no widget path in the loader:\n{loader.text}")
    path = found.group(0)
    etag = httpx.get(f"{base_url}{path}", timeout=30).headers["etag"]
    return wrk(f"{base_url}{path}", seconds=seconds, headers={"If-None-Match": etag}), path


def _collect_measures(name: str, run: Collected, events: int, seconds: int) -> dict[str, Any]:
    stored = run.stored / seconds
    return {
        f"{name}_rps": run.load.requests_per_second,
        f"{name}_events_per_s (wrk requests x {events})": run.load.requests_per_second * events,
        f"{name}_stored_events_per_s (rows in the table / {seconds} s)": stored,
        f"{name}_p50_ms": run.load.p50_ms,
        f"{name}_p99_ms": run.load.p99_ms,
        f"{name}_non_2xx": run.load.non_2xx,
        f"{name}_stored_rows": run.stored,
        f"{name}_rows_per_flush (≈, writer transactions)": run.stored / max(1, run.flushes),
        f"{name}_api_cpu_us_per_event (API process)": 1e6 * run.api_cpu_s / max(1, run.stored),
        f"{name}_pg_cpu_us_per_event (PostgreSQL)": 1e6 * run.pg_cpu_s / max(1, run.stored),
        f"{name}_api_cpu_share (of one core)": run.api_cpu_s / seconds,
    }


def _ingestion(server: Server, database: str, owner: Merchant, seconds: int, scratch: Path) -> dict[str, Any]:
    batched, single = owner.site("batches"), owner.site("singles")
    healthz = wrk(f"{server.base_url}/healthz", seconds=seconds)
    bare, _ = _bare_widget(server.base_url, batched, seconds)
    batches = _collect(server, database, batched, BATCH_EVENTS, seconds, scratch)
    singles = _collect(server, database, single, 1, seconds, scratch)
    with psycopg.connect(database) as connection:
        row = connection.execute("SELECT org_id FROM socialproof.sites WHERE id = %s", (batched["id"],)).fetchone()
    assert row is not None
    raw_rows_per_s = _raw_copy(database, batches.stored, str(row[0]), batched["id"])
    return {
        "healthz_rps": healthz.requests_per_second,
        "healthz_p99_ms": healthz.p99_ms,
        "bare_widget_304_rps (GET /w/widget-….js, If-None-Match)": bare.requests_per_second,
        "bare_widget_304_p50_ms": bare.p50_ms,
        "bare_widget_304_p99_ms": bare.p99_ms,
        **_collect_measures(f"collect_batch{BATCH_EVENTS}", batches, BATCH_EVENTS, seconds),
        **_collect_measures("collect_single", singles, 1, seconds),
        "raw_copy_rows_per_s (same rows, unindexed table, no RLS)": raw_rows_per_s,
        "ingest_to_raw_copy (batches, stored)": batches.stored / seconds / raw_rows_per_s,
        "ingest_to_raw_copy (single events, stored)": singles.stored / seconds / raw_rows_per_s,
        "collect_single_to_bare": singles.load.requests_per_second / bare.requests_per_second,
        "collect_single_to_healthz": singles.load.requests_per_second / healthz.requests_per_second,
        "target: batches ≥ 10,000 events/s stored": _met(batches.stored / seconds >= 10_000),
        "target: single ≥ 2,500 req/s, p99 ≤ 50 ms": _met(
            singles.load.requests_per_second >= 2_500 and singles.load.p99_ms <= 50
        ),
    }


# --- 2. the widget feed -------------------------------------------------------------------------------------------


def _feed(base_url: str, owner: Merchant, seconds: int) -> dict[str, Any]:
    """A site with a recent-activity popup (purchases from the merchant's backend) and a live-visitors counter."""
    site = owner.site("feed", timezone="Europe/Berlin")
    owner.notification(site, "Recent purchases", "recent_activity", eventTypes=["purchase"])
    owner.notification(site, "Live visitors", "live_visitors")
    key = owner.post("/api/v1/api-keys", {"name": "backend", "role": "member", "scopes": ["events:create"]})["key"]
    purchases = [
        {
            "id": str(uuid.uuid4()),
            "type": "purchase",
            **json.loads(PURCHASES[n % len(PURCHASES)]),
            "visitorId": f"customer-{n}",
            "url": f"https://{site['domain']}/checkout",
        }
        for n in range(20)
    ]
    owner.post(f"/api/v1/sites/{site['id']}/events", {"events": purchases}, **{"X-API-Key": key})
    for visitor in range(30):  # 30 browsers on the site now (the visitor id is a hash of address and user agent)
        response = owner.client.post(
            "/api/v1/collect",
            headers=_browser(site, CHROME_UA.replace("124.0.0.0", f"124.0.{visitor}.0")),
            content=json.dumps(
                {
                    "siteKey": site["siteKey"],
                    "events": [{"id": str(uuid.uuid4()), "type": "page_view", "url": f"https://{site['domain']}/p"}],
                }
            ),
        )
        response.raise_for_status()
    page = quote(f"https://{site['domain']}/p", safe="")
    url = f"{base_url}/api/v1/widget/{site['siteKey']}/feed?url={page}"
    sample = httpx.get(url, headers=_browser(site), timeout=30)
    sample.raise_for_status()
    shown = sample.json()["data"]["notifications"]
    result = wrk(url, seconds=seconds, headers=_browser(site))
    few = wrk(url, connections=8, seconds=seconds, headers=_browser(site))  # the same without the queueing
    return {
        "feed_notifications_shown": len(shown),
        "feed_body_bytes": len(sample.content),
        "feed_rps": result.requests_per_second,
        "feed_p50_ms": result.p50_ms,
        "feed_p99_ms": result.p99_ms,
        "feed_non_2xx": result.non_2xx,
        "feed_8_connections_rps": few.requests_per_second,
        "feed_8_connections_p50_ms": few.p50_ms,
        "feed_8_connections_p99_ms": few.p99_ms,
        "target: feed p99 ≤ 10 ms": _met(result.p99_ms <= 10),
    }


# --- 3. analytics over millions of raw events ---------------------------------------------------------------------


class EventLoad:
    """Time-ordered batches of realistic raw events for one site, as ``COPY`` text, generated one batch at a time."""

    def __init__(
        self, *, org_id: str, site: dict[str, Any], notifications: list[str], events: int, end: datetime
    ) -> None:
        self.org_id, self.site_id = org_id, site["id"]
        self.notifications = notifications
        self.events = events
        self.end = end.timestamp()
        self.start = (end - timedelta(days=30)).timestamp()
        self.rng = np.random.default_rng(4)
        self.kinds = list(EVENT_MIX)
        self.weights = np.array(list(EVENT_MIX.values())) / sum(EVENT_MIX.values())
        visitor_ids = self.rng.bytes(16 * VISITORS).hex()
        self.visitors = [visitor_ids[32 * n : 32 * n + 32] for n in range(VISITORS)]
        self.urls = [f"https://{site['domain']}/p/{page}" for page in range(PAGES)]

    def batches(self) -> Iterator[bytes]:
        span = (self.end - self.start) / max(1, -(-self.events // LOAD_BATCH))
        for number, first in enumerate(range(0, self.events, LOAD_BATCH)):
            begin = self.start + number * span
            yield self._rows(min(LOAD_BATCH, self.events - first), begin, begin + span)

    def _rows(self, count: int, begin: float, end: float) -> bytes:
        rng = self.rng
        stamps = np.datetime_as_string(
            (np.sort(rng.uniform(begin, end, count)) * 1e6).astype("datetime64[us]"), unit="us", timezone="UTC"
        ).tolist()
        kinds = rng.choice(len(self.kinds), size=count, p=self.weights).tolist()
        visitors = (VISITORS * rng.random(count) ** 2).astype(np.int64).tolist()  # some visitors come back often
        pages = rng.integers(0, PAGES, count).tolist()
        notes = rng.integers(0, len(self.notifications), count).tolist()
        payloads = rng.integers(0, len(PURCHASES), count).tolist()
        ids = rng.bytes(16 * count).hex()
        prefix = f"\t{self.org_id}\t{self.site_id}\t"
        lines = []
        for n in range(count):
            kind = self.kinds[kinds[n]]
            notification = self.notifications[notes[n]] if kind in INTERACTIONS else "\\N"
            payload = PURCHASES[payloads[n]] if kind == "purchase" else '{"country":"DE"}'
            lines.append(
                f"{ids[32 * n : 32 * n + 32]}{prefix}{kind}\t\\N\t{notification}\t"
                f"{self.visitors[visitors[n]]}\t{self.urls[pages[n]]}\t{payload}\t{stamps[n]}\n"
            )
        return "".join(lines).encode()


def _load(database: str, load: EventLoad) -> dict[str, Any]:
    """Every batch: COPY into ``event_stage``, then ``ingest_staged`` as the app role bound to the org (as
    ``ingest.py _store`` does); ``oldest`` lies before the first event so deduplication looks at everything."""
    oldest = datetime.now(UTC) - timedelta(days=40)
    timings = {"generate": 0.0, "copy": 0.0, "ingest": 0.0}
    stored = 0
    with psycopg.connect(database) as connection:
        with connection.transaction():
            connection.execute(
                "SELECT socialproof.ensure_event_partitions(m::date) FROM generate_series("
                "date_trunc('month', now() - interval '31 days'), now() + interval '1 month', interval '1 month') m"
            )
            connection.execute(_CREATE_STAGE)
            connection.execute(sql.SQL("GRANT SELECT ON event_stage TO {}").format(sql.Identifier(APP_ROLE)))
        started = time.perf_counter()
        batches = load.batches()
        while True:
            generated = time.perf_counter()
            data = next(batches, None)
            timings["generate"] += time.perf_counter() - generated
            if data is None:
                break
            with connection.transaction(), connection.cursor() as cursor:
                copied = time.perf_counter()
                with cursor.copy(_COPY_STAGE) as copy:
                    for offset in range(0, len(data), 1 << 20):
                        copy.write(data[offset : offset + (1 << 20)])
                ingested = time.perf_counter()
                timings["copy"] += ingested - copied
                cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))
                cursor.execute("SELECT set_config('northstar.org_id', %s, true)", (load.org_id,))
                cursor.execute("SELECT count(*) FROM socialproof.ingest_staged(%s, %s)", (load.org_id, oldest))
                row = cursor.fetchone()
                stored += int(row[0]) if row else 0
            timings["ingest"] += time.perf_counter() - ingested
        total = time.perf_counter() - started
    if stored != load.events:
        raise RuntimeError(f"ingest_staged stored {stored} of {load.events} events")
    return {
        "events_loaded": stored,
        "load_rows_per_s (generate + COPY + ingest_staged)": stored / total,
        "load_db_rows_per_s (COPY + ingest_staged)": stored / (timings["copy"] + timings["ingest"]),
        "load_generate_s": timings["generate"],
        "load_copy_s": timings["copy"],
        "load_ingest_staged_s": timings["ingest"],
    }


async def _fold(database: str, org_id: uuid.UUID, *, keep: int = UNFOLDED) -> dict[str, Any]:
    """Fold visitor hashes as the periodic task does, one tenant transaction a batch, leaving the newest unfolded."""
    db = Database(database, pool_size=1)
    try:
        started, folded = time.perf_counter(), 0
        while True:
            async with db.tenant_transaction(org_id=org_id) as session:
                result = await session.execute(text("SELECT count(*) FROM socialproof.visitor_hashes"))
                pending = int(result.scalar_one())
            if pending <= keep or (keep and pending - rollups.FOLD_BATCH < keep):
                break
            async with db.tenant_transaction(org_id=org_id) as session:
                folded += await rollups.fold_visitor_hashes(session)
        elapsed = time.perf_counter() - started
    finally:
        await db.dispose()
    return {
        "hash_rows_folded": folded,
        "fold_rows_per_s": folded / elapsed if elapsed else 0.0,
        "fold_s": elapsed,
        "hash_rows_left_unfolded": pending,
    }


def _vacuum(database: str) -> float:
    """What autovacuum would have done over the month: statistics and visibility, so the timings see steady state."""
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as connection:
        for table in ("notification_events", "event_counts", "visitor_sketches", "visitor_hashes", "conversions"):
            connection.execute(f"VACUUM (ANALYZE) socialproof.{table}")
    return time.perf_counter() - started


def _time_requests(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[list[float], dict[str, Any]]:
    body: dict[str, Any] = {}
    for _ in range(ANALYTICS_WARMUP):
        response = client.get(path, params=params)
        response.raise_for_status()
        body = response.json()["data"]
    durations = []
    for _ in range(ANALYTICS_REQUESTS):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        durations.append((time.perf_counter() - started) * 1000)
    return durations, body


_RAW_COUNTS = (
    "SELECT event_type, count(*) FROM socialproof.notification_events"
    " WHERE site_id = %s AND occurred_at >= %s AND occurred_at < %s GROUP BY event_type"
)
_RAW_VISITORS = (
    "SELECT count(DISTINCT visitor_id) FROM socialproof.notification_events"
    " WHERE site_id = %s AND occurred_at >= %s AND occurred_at < %s"
)


def _raw_totals(
    database: str, org_id: str, site_id: str, start: datetime, end: datetime
) -> tuple[float, dict[str, int], int]:
    """The 30-day totals from raw events (under the tenant policy, as the API reads): milliseconds (median)."""
    durations: list[float] = []
    counts: dict[str, int] = {}
    visitors = 0
    with psycopg.connect(database) as connection:
        for _ in range(RAW_SQL_RUNS):
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(APP_ROLE)))
                cursor.execute("SELECT set_config('northstar.org_id', %s, true)", (org_id,))
                started = time.perf_counter()
                counts = {
                    kind: int(number) for kind, number in cursor.execute(_RAW_COUNTS, (site_id, start, end)).fetchall()
                }
                found = cursor.execute(_RAW_VISITORS, (site_id, start, end)).fetchone()
                durations.append((time.perf_counter() - started) * 1000)
            visitors = int(found[0]) if found else 0
    return statistics.median(durations), counts, visitors


def _analytics(base_url: str, database: str, owner: Merchant) -> dict[str, Any]:
    site = owner.site("analytics", timezone="Europe/Berlin")
    kinds: list[tuple[str, str, dict[str, Any]]] = [
        ("Recent purchases", "recent_activity", {"eventTypes": ["purchase"]}),
        ("Live visitors", "live_visitors", {}),
        ("Bought today", "period_counter", {"eventTypes": ["purchase"], "period": "today"}),
        ("Reviews", "review_highlight", {"eventTypes": ["review"]}),
        ("Free shipping", "announcement", {}),
    ]
    notifications = [owner.notification(site, name, kind, **source)["id"] for name, kind, source in kinds]
    with psycopg.connect(database) as connection:
        row = connection.execute("SELECT org_id FROM socialproof.sites WHERE id = %s", (site["id"],)).fetchone()
    assert row is not None
    org_id = str(row[0])
    results = _load(
        database, EventLoad(org_id=org_id, site=site, notifications=notifications, events=EVENTS, end=datetime.now(UTC))
    )
    results |= asyncio.run(_fold(database, uuid.UUID(org_id)))
    results["vacuum_analyze_s"] = _vacuum(database)
    owner.login()
    path = f"/api/v1/sites/{site['id']}/analytics"
    today = datetime.now(UTC).date()
    variants = {
        "analytics_30d_by_day": {},
        "analytics_7d_by_hour": {"granularity": "hour", "start": str(today - timedelta(days=6)), "end": str(today)},
        "analytics_30d_one_notification": {"notificationId": notifications[0]},
    }
    bodies = {}
    for name, params in variants.items():
        durations, bodies[name] = _time_requests(owner.client, path, params)
        results |= {
            f"{name}_p50_ms": statistics.median(durations),
            f"{name}_p95_ms": _percentile(durations, 0.95),
            f"{name}_max_ms": max(durations),
        }
    asyncio.run(_fold(database, uuid.UUID(org_id), keep=0))  # fold the rest: what the unfolded hashes cost
    _vacuum(database)
    durations, _ = _time_requests(owner.client, path, {})
    results |= {
        "analytics_30d_by_day_all_folded_p50_ms": statistics.median(durations),
        "analytics_30d_by_day_all_folded_p95_ms": _percentile(durations, 0.95),
    }
    answer = bodies["analytics_30d_by_day"]
    raw_ms, counts, visitors = _raw_totals(
        database, org_id, site["id"], datetime.fromisoformat(answer["start"]), datetime.fromisoformat(answer["end"])
    )
    totals = answer["totals"]
    served = {
        "page_view": totals["pageViews"],
        "impression": totals["impressions"],
        "hover": totals["hovers"],
        "click": totals["clicks"],
        "close": totals["closes"],
        "purchase": None,
    }
    results |= {
        "raw_sql_30d_totals_ms (count by type + count DISTINCT visitor_id, median)": raw_ms,
        "raw_sql_to_analytics_p50": raw_ms / results["analytics_30d_by_day_p50_ms"],
        "analytics_counts_match_raw": "yes"
        if all(served[kind] in (None, number) for kind, number in counts.items())
        else f"no: {served} vs {counts}",
        "analytics_unique_visitors (HLL) / exact": f"{totals['uniqueVisitors']:,} / {visitors:,}",
        "analytics_unique_visitors_error_pct": 100 * (totals["uniqueVisitors"] - visitors) / max(1, visitors),
        "analytics_conversions": totals["conversions"],
        "target: analytics p95 ≤ 100 ms (all three)": _met(all(results[f"{name}_p95_ms"] <= 100 for name in variants)),
    }
    return results


# --- 4. script sizes ----------------------------------------------------------------------------------------------


def _raw_size(client: httpx.Client, path: str) -> tuple[int, int]:
    """Bytes on the wire with ``Accept-Encoding: gzip``, and the same body compressed by ``gzip -9``."""
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        response.raise_for_status()
        if response.headers.get("content-encoding") != "gzip":
            raise RuntimeError(f"{path} was not served gzipped")
        wire = b"".join(response.iter_raw())
    return len(wire), len(gzip.compress(gzip.decompress(wire), compresslevel=9, mtime=0))


def _sizes(base_url: str, owner: Merchant) -> dict[str, Any]:
    site = owner.site("sizes")
    with httpx.Client(base_url=base_url, timeout=30) as client:
        loader_path = f"/w/{site['siteKey']}.js"
        found = re.search(r"/w/widget-[0-9a-f]+\.js", client.get(loader_path).text)
        assert found is not None
        loader, loader_gzip9 = _raw_size(client, loader_path)
        widget, widget_gzip9 = _raw_size(client, found.group(0))
    return {
        "loader_gzip_bytes (as served)": loader,
        "loader_gzip9_bytes": loader_gzip9,
        "widget_gzip_bytes (as served)": widget,
        "widget_gzip9_bytes": widget_gzip9,
        f"loader ≤ {LOADER_BUDGET:,} B": "pass" if loader <= LOADER_BUDGET else "**fail**",
        f"widget ≤ {WIDGET_BUDGET:,} B": "pass" if widget <= WIDGET_BUDGET else "**fail**",
    }


# --- 5. visitor profiles and custom fields (issue 14) -------------------------------------------------------------


def _profiled(database: str, site_id: str) -> tuple[int, int]:
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*), coalesce(sum(page_views), 0) FROM socialproof.visitor_profiles WHERE site_id = %s",
            (site_id,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def profiles_run(seconds: int = 10) -> dict[str, Any]:
    """Collection with custom-field validation and profile updates on, beside part 1's collection in the same run.

    Part 1's number is ``POST /collect`` with batches of 20 anonymous page views on a server with visitor profiles
    turned off (``NORTHSTAR_SOCIALPROOF__VISITOR_PROFILES=false``: the writer runs ``ingest_staged`` alone, as in part
    1). The measured path is a second server with profiles on, three custom fields defined, and the same batches
    carrying four custom values on every event from 50,000 identified visitors: every event is validated against
    the definitions and every flush upserts the profiles it touched. The plain batches on that server show what the
    profile upsert costs without custom values."""
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    with (
        running_server("serve", NORTHSTAR_SOCIALPROOF__VISITOR_PROFILES="false") as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        database = conninfo(server.data_dir)
        shop = merchant(server.base_url, "bench-part1@example.com")
        part1 = _collect(server, database, shop.site("part1"), BATCH_EVENTS, seconds, Path(scratch))
        results |= _collect_measures("part1_collect_batch20", part1, BATCH_EVENTS, seconds)
    results["machine_load_1m_between"] = os.getloadavg()[0]
    with running_server("serve") as server, tempfile.TemporaryDirectory() as scratch:
        database = conninfo(server.data_dir)
        shop = merchant(server.base_url, "bench-profiles@example.com")
        for field in (
            {"name": "Plan", "key": "plan", "type": "enum", "options": ["free", "pro", "team"], "default": "free"},
            {"name": "Seats", "key": "seats", "type": "number"},
            {"name": "VIP", "key": "vip", "type": "boolean"},
            {"name": "Company", "key": "company", "type": "text", "required": True},
        ):
            shop.post("/api/v1/custom-fields", field)
        plain_site, custom_site = shop.site("plain"), shop.site("custom")
        plain = _collect(server, database, plain_site, BATCH_EVENTS, seconds, Path(scratch))
        custom = _collect(server, database, custom_site, BATCH_EVENTS, seconds, Path(scratch), template=PROFILED_SCRIPT)
        profiles, page_views = _profiled(database, custom_site["id"])
        results |= _collect_measures("profiles_plain_batch20", plain, BATCH_EVENTS, seconds)
        results |= _collect_measures("profiles_custom_batch20", custom, BATCH_EVENTS, seconds)
        results["profiles_custom_profiles (rows)"] = profiles
        results["profiles_custom_page_views_on_profiles (= stored rows)"] = page_views
    ratio = custom.stored / max(1, part1.stored)
    results["custom_and_profiles_to_part1 (stored events)"] = ratio
    results["plain_with_profiles_to_part1 (stored events)"] = plain.stored / max(1, part1.stored)
    results["target: custom fields + profiles ≥ 0.9 x part 1"] = _met(ratio >= 0.9)
    results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


def run(seconds: int = 10) -> dict[str, Any]:
    with running_server("serve") as server, tempfile.TemporaryDirectory() as scratch:
        database = conninfo(server.data_dir)
        shop = merchant(server.base_url, "bench-socialproof@example.com")
        analyst = merchant(server.base_url, "bench-analytics@example.com")
        results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
        results |= _sizes(server.base_url, shop)
        results |= _ingestion(server, database, shop, seconds, Path(scratch))
        results |= _feed(server.base_url, shop, seconds)
        results["machine_load_1m_before_analytics"] = os.getloadavg()[0]
        results |= _analytics(server.base_url, database, analyst)
        results["machine_load_1m_at_end"] = os.getloadavg()[0]
    results |= {f"profiles: {name}": value for name, value in profiles_run(seconds).items()}
    return results


if __name__ == "__main__":
    import sys

    chosen = profiles_run if sys.argv[1:] == ["profiles"] else run
    for name, value in chosen().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
