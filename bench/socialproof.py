"""Social proof (issue 4): widget ingestion, the widget feed, analytics over millions of raw events, script sizes.

Runs a real ``northstar serve`` (API only: no worker, so no periodic fold competes for the two cores or changes
what the analytics read while they are timed). Baselines are measured in the same run:

* ingestion: plain ``COPY`` of as many equivalent rows into an unindexed table without row-level security (the
  floor no ingestion can beat), and a bare fast-path route (the widget script answered 304) for the HTTP side;
* analytics: the same 30-day totals counted from the raw events with SQL, which is what the rollups avoid.

``NORTHSTAR_BENCH_EVENTS`` sets how many raw events the analytics site gets (default 10 million); a small number
makes a quick run. The analytics events are loaded through ``socialproof.ingest_staged`` itself (what the event
writer runs for every batch), not over HTTP, so 10 million take minutes instead of hours.

Archival: a month of ``NORTHSTAR_BENCH_ARCHIVE_EVENTS`` raw events (default 10 million, loaded with
``generate_series``) archived to Parquet in local object storage and verified by reading back, against a plain
``COPY (SELECT …) TO STDOUT`` of the same month whose output is thrown away (the floor of any export); the peak
resident memory of this process is sampled while it runs (``python -m bench.socialproof archival`` runs only this).
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
from contextlib import contextmanager
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
from northstar.core.db import APP_ROLE, Database, to_async_url
from northstar.core.queue import tasks_using
from northstar.core.storage import LocalObjectStore
from northstar.settings import Settings
from northstar.socialproof.ingest import _COPY_STAGE, _CREATE_STAGE
from northstar.socialproof.service import archives, rollups

EVENTS = int(os.environ.get("NORTHSTAR_BENCH_EVENTS", "10000000"))
ARCHIVE_EVENTS = int(os.environ.get("NORTHSTAR_BENCH_ARCHIVE_EVENTS", "10000000"))
ARCHIVE_MONTH = datetime(2020, 3, 1, tzinfo=UTC)
ARCHIVE_RATE_TARGET = 500_000
ARCHIVE_MEMORY_TARGET_MB = 500
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

# wrk's Lua: per-thread random seeds, event ids, a text/plain POST (what sendBeacon sends)
LUA_PRELUDE = """
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
"""
COLLECT_SCRIPT = (
    LUA_PRELUDE
    + """function request()
  local events = {}
  for i = 1, count do
    events[i] = '{"id":"' .. uuid4() .. '","type":"page_view","url":"https://' .. domain .. '/p"}'
  end
  local body = '{"siteKey":"' .. site_key .. '","sentAt":"' .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ") ..
    '","events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
"""
)

# A/B collection: each request is a new visitor (a random first-party id on a persistentVisitorId site) who saw a
# tested notification's variant; every fifth event is a click.
AB_COLLECT_SCRIPT = (
    LUA_PRELUDE
    + """
local notification, variants = "%(notification)s", {%(variants)s}
function request()
  local events = {}
  local variant = variants[math.random(1, #variants)]
  for i = 1, count do
    local kind = (i %% 5 == 0) and "click" or "impression"
    local shown = (variant ~= "") and (',"variantId":"' .. variant .. '"') or ""
    events[i] = '{"id":"' .. uuid4() .. '","type":"' .. kind .. '","url":"https://' .. domain ..
      '/p","notificationId":"' .. notification .. '"' .. shown .. '}'
  end
  local visitor = hex4() .. hex4() .. hex4() .. hex4() .. hex4() .. hex4() .. hex4() .. hex4()
  local body = '{"siteKey":"' .. site_key .. '","sentAt":"' .. os.date("!%%Y-%%m-%%dT%%H:%%M:%%SZ") ..
    '","visitor":{"localId":"' .. visitor .. '"},"events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format(nil, nil, nil, body)
end
"""
)


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


def server_database(data_dir: Path) -> Database:
    """The embedded database of the server on ``data_dir``, with that server's settings: its secret key (kept in the
    data dir) is what opens the personal data it encrypted."""
    return Database(conninfo(data_dir), settings=Settings(data_dir=data_dir))


class CpuMeter:
    """CPU seconds of the API's processes and of this server's PostgreSQL during a load: which one is the bottleneck.

    ``northstar serve`` is a supervisor whose children answer the requests, so the API's CPU is that of the whole
    process tree, less the PostgreSQL processes the supervisor may have started (counted apart); ``tree=False``
    counts one process alone (a worker running in the benchmark's own process, beside servers it started)."""

    def __init__(self, api_pid: int, data_dir: Path, *, tree: bool = True) -> None:
        self.api = psutil.Process(api_pid)
        self.tree = tree
        self.postmaster = psutil.Process(int((data_dir / "pg" / "postmaster.pid").read_text().split()[0]))
        self.api_s = self.pg_s = 0.0
        self.started_api: dict[int, float] = {}
        self.started_pg: dict[int, float] = {}

    @staticmethod
    def _times(processes: list[psutil.Process]) -> dict[int, float]:
        times = {}
        for process in processes:
            try:
                cpu = process.cpu_times()
            except psutil.Error:
                continue
            times[process.pid] = cpu.user + cpu.system
        return times

    def _postgres(self) -> dict[int, float]:
        return self._times([self.postmaster, *self.postmaster.children()])

    def _api(self, postgres: dict[int, float]) -> dict[int, float]:
        processes = [self.api, *self.api.children(recursive=True)] if self.tree else [self.api]
        return self._times([process for process in processes if process.pid not in postgres])

    def __enter__(self) -> CpuMeter:
        self.started_pg = self._postgres()
        self.started_api = self._api(self.started_pg)
        return self

    def __exit__(self, *_: object) -> None:
        postgres = self._postgres()
        self.pg_s = sum(seconds - self.started_pg.get(pid, 0.0) for pid, seconds in postgres.items())
        self.api_s = sum(seconds - self.started_api.get(pid, 0.0) for pid, seconds in self._api(postgres).items())


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
        f"https://shop.example.com/p\t{{}}\t{now}\t\\N\n"
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


def _ab_collect(
    server: Server, database: str, owner: Merchant, seconds: int, scratch: Path, *, tested: bool
) -> Collected:
    """Batches of impressions and clicks of a notification, each request a new visitor: with ``tested``, of a
    running A/B test's two variants (the variant on every event, exposures and clicks counted per visitor)."""
    site = owner.site("ab-tested" if tested else "ab-untested", persistentVisitorId=True)
    notification = owner.notification(site, "Buyers", "recent_activity", eventTypes=["purchase"])
    variants = ['""']
    if tested:
        test = owner.post(
            f"/api/v1/sites/{site['id']}/ab-tests",
            {
                "name": "Headline",
                "notificationId": notification["id"],
                "variants": [
                    {"name": "Control", "isControl": True, "weight": 50},
                    {"name": "Short", "weight": 50, "message": "{{firstName}} bought {{product}}"},
                ],
            },
        )
        owner.post(f"/api/v1/sites/{site['id']}/ab-tests/{test['id']}/start", {})
        variants = [f'"{variant["id"]}"' for variant in test["variants"]]
    script = scratch / f"ab_collect_{tested}.lua"
    script.write_text(
        AB_COLLECT_SCRIPT
        % {
            "site_key": site["siteKey"],
            "domain": site["domain"],
            "count": BATCH_EVENTS,
            "notification": notification["id"],
            "variants": ", ".join(variants),
        }
    )
    with CpuMeter(server.process.pid, server.data_dir) as cpu:
        result = wrk(f"{server.base_url}/api/v1/collect", seconds=seconds, headers=_browser(site), script=script)
    stored = _settled(database, site["id"])
    return Collected(result, stored, 0, cpu.api_s, cpu.pg_s)


def _ab_collection(
    server: Server, database: str, owner: Merchant, seconds: int, scratch: Path, part1_stored_per_s: float
) -> dict[str, Any]:
    """Collection with A/B assignment on, beside part 1's batch collection measured in the same run."""
    plain = _ab_collect(server, database, owner, seconds, scratch, tested=False)
    tested = _ab_collect(server, database, owner, seconds, scratch, tested=True)
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT coalesce(sum(exposures), 0), coalesce(sum(clicks), 0) FROM socialproof.ab_test_counts"
        ).fetchone()
    exposures, clicks = (int(row[0]), int(row[1])) if row else (0, 0)
    tested_per_s = tested.stored / seconds
    return {
        f"ab_collect_batch{BATCH_EVENTS}_stored_events_per_s (a running test, new visitor each request)": tested_per_s,
        "ab_collect_rps": tested.load.requests_per_second,
        "ab_collect_p99_ms": tested.load.p99_ms,
        "ab_collect_non_2xx": tested.load.non_2xx,
        "ab_collect_exposed_visitors_counted": exposures,
        "ab_collect_clicking_visitors_counted": clicks,
        "ab_collect_pg_cpu_us_per_event": 1e6 * tested.pg_cpu_s / max(1, tested.stored),
        "untested_interactions_stored_events_per_s (same events, no test)": plain.stored / seconds,
        "ab_collect_to_part1_batches": tested_per_s / part1_stored_per_s,
        "ab_collect_to_untested_interactions": tested.stored / max(1, plain.stored),
        "target: A/B collection ≥ 0.9 x part 1 collection": _met(tested_per_s >= 0.9 * part1_stored_per_s),
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
            lines.append(  # no A/B variant, device or custom values: the stage's last three columns
                f"{ids[32 * n : 32 * n + 32]}{prefix}{kind}\t\\N\t{notification}\t"
                f"{self.visitors[visitors[n]]}\t{self.urls[pages[n]]}\t{payload}\t{stamps[n]}\t\\N\t\\N\t\\N\n"
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
    results |= _erasure(database, owner, site)  # last: it deletes from what the analytics read
    return results


# --- 5. erasure of one visitor (GDPR) -------------------------------------------------------------------------------


def _visitor_rows(database: str, site_id: str, limit: int = 3) -> list[tuple[str, int]]:
    """The site's busiest visitors and their event counts (the loaded ones return often: some have thousands)."""
    with psycopg.connect(database) as connection:
        rows = connection.execute(
            "SELECT visitor_id, count(*) FROM socialproof.notification_events WHERE site_id = %s"
            " GROUP BY visitor_id ORDER BY count(*) DESC LIMIT %s",
            (site_id, limit),
        ).fetchall()
    return [(str(visitor), int(count)) for visitor, count in rows]


def _erasure(database: str, owner: Merchant, site: dict[str, Any]) -> dict[str, Any]:
    """``POST /privacy/requests`` erasing one visitor (their events and conversions, and the audit trail's mentions),
    against the same DELETE run as the database owner with no API, RLS or audit around it (the baseline)."""
    (busiest, busiest_events), (second, second_events), (third, third_events) = _visitor_rows(database, site["id"])
    with psycopg.connect(database) as connection:
        total = connection.execute(
            "SELECT count(*) FROM socialproof.notification_events WHERE site_id = %s", (site["id"],)
        ).fetchone()
        started = time.perf_counter()
        connection.execute(
            "DELETE FROM socialproof.notification_events WHERE site_id = %s AND visitor_id = %s", (site["id"], second)
        )
        connection.commit()
        raw_ms = 1000 * (time.perf_counter() - started)
    owner.login()
    timings = []
    for visitor in (third, busiest):  # the first erasure an API process answers also warms it (imports, mappers)
        started = time.perf_counter()
        response = owner.client.post(
            "/api/v1/privacy/requests", json={"kind": "erasure", "subjectType": "visitor_hash", "subject": visitor}
        )
        timings.append(1000 * (time.perf_counter() - started))
        if response.status_code != 200:
            raise RuntimeError(f"erasure: {response.status_code} {response.text}")
    first_ms, api_ms = timings
    erased = response.json()["data"]["result"]["notification_events"]
    if erased != busiest_events:
        raise RuntimeError(f"erasure removed {erased} of the visitor's {busiest_events} events")
    return {
        "erasure_site_events": int(total[0]) if total else 0,
        "erasure_visitor_events": busiest_events,
        f"erasure_first_api_ms (first request of the process; {third_events} events)": first_ms,
        "erasure_api_ms (one visitor, POST /privacy/requests)": api_ms,
        f"erasure_raw_delete_ms (owner, no API; {second_events} events)": raw_ms,
        "target: erasure of one visitor ≤ 2 s": _met(api_ms <= 2000),
    }


def run_erasure() -> dict[str, Any]:
    """Only what the erasure needs: ``NORTHSTAR_BENCH_EVENTS`` events loaded into one site, then one erasure."""
    with running_server("serve") as server:
        database = conninfo(server.data_dir)
        owner = merchant(server.base_url, "bench-erasure@example.com")
        site = owner.site("erasure")
        notifications = [owner.notification(site, "Recent purchases", "recent_activity", eventTypes=["purchase"])["id"]]
        with psycopg.connect(database) as connection:
            row = connection.execute("SELECT org_id FROM socialproof.sites WHERE id = %s", (site["id"],)).fetchone()
        assert row is not None
        results = _load(
            database,
            EventLoad(org_id=str(row[0]), site=site, notifications=notifications, events=EVENTS, end=datetime.now(UTC)),
        )
        results["vacuum_analyze_s"] = _vacuum(database)
        results |= _erasure(database, owner, site)
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


_LOAD_ARCHIVE_MONTH = """
    INSERT INTO socialproof.notification_events
      (id, org_id, site_id, event_type, event_name, notification_id, visitor_id, url, payload, occurred_at,
       received_at)
    SELECT gen_random_uuid(), o.org_id, o.site_id,
           (ARRAY['page_view', 'impression', 'hover', 'close', 'click', 'purchase'])[1 + (n * 7) %% 6],
           CASE WHEN n %% 50 = 0 THEN 'newsletter' END,
           CASE WHEN n %% 5 = 0 THEN o.notification_id END,
           'v' || (n %% 200000), 'https://shop.example.com/p/' || (n %% 400),
           CASE WHEN n %% 100 = 0 THEN %(purchase)s::jsonb ELSE '{}'::jsonb END,
           %(start)s::timestamptz + (n::bigint * %(step)s::bigint) * interval '1 microsecond',
           %(start)s::timestamptz + (n::bigint * %(step)s::bigint) * interval '1 microsecond' + interval '2 seconds'
    FROM generate_series(%(first)s, %(last)s) n
    JOIN (SELECT g, gen_random_uuid() AS org_id, gen_random_uuid() AS site_id, gen_random_uuid() AS notification_id
          FROM generate_series(0, 49) g) o ON o.g = n %% 50"""


class PeakMemory:
    """The highest resident set size of this process, sampled every 20 ms while the block runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.at_start = self.process.memory_info().rss
        self._done = False

    def _sample(self) -> None:
        while not self._done:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        import threading

        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done = True
        self._thread.join()


def _load_archive_month(database: str, rows: int) -> float:
    """The month's partition filled with ``rows`` events of 50 orgs in batches; returns the seconds it took."""
    step = int(timedelta(days=31).total_seconds() * 1_000_000 // rows)
    started = time.perf_counter()
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("SELECT socialproof.ensure_event_partitions(%s)", (ARCHIVE_MONTH.date(),))
        for first in range(0, rows, 1_000_000):
            params = {
                "purchase": PURCHASES[0],
                "start": ARCHIVE_MONTH,
                "step": step,
                "first": first,
                "last": min(first + 1_000_000, rows) - 1,
            }
            connection.execute(_LOAD_ARCHIVE_MONTH, params)
        connection.execute(f"VACUUM (ANALYZE) socialproof.notification_events_{ARCHIVE_MONTH:%Y_%m}")
    return time.perf_counter() - started


def _copy_out(database: str) -> float:
    """Seconds to stream the month out as CSV and throw it away: the floor of any export of it."""
    start, end = archives.month_range(ARCHIVE_MONTH.date())
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(archives.select_month(start, end))
    started = time.perf_counter()
    with psycopg.connect(database) as connection, connection.cursor() as cursor, cursor.copy(statement) as copy:
        for _ in copy:
            pass
    return time.perf_counter() - started


async def _archive(database: str, root: Path) -> tuple[float, float, int]:
    """Write and verify the month's archive (what the retention task does before a drop): seconds for each, size."""
    db = Database(to_async_url(database), pool_size=2)
    store = LocalObjectStore(root)
    try:
        async with db.engine.begin() as connection:
            started = time.perf_counter()
            archive_id = await archives.write_archive(
                connection, ARCHIVE_MONTH.date(), store=store, row_group_rows=65_536
            )
            written = time.perf_counter()
            await archives.verify_archive(connection, archive_id, store=store)
            verified = time.perf_counter()
            size = int(
                await connection.scalar(
                    text("SELECT size_bytes FROM socialproof.archives WHERE id = :id"), {"id": archive_id}
                )
                or 0
            )
    finally:
        await db.dispose()
    return written - started, verified - written, size


def _archival(database: str, scratch: Path, rows: int = ARCHIVE_EVENTS) -> dict[str, Any]:
    load_s = _load_archive_month(database, rows)
    copy_s = _copy_out(database)
    with PeakMemory() as memory:
        write_s, verify_s, size = asyncio.run(_archive(database, scratch / "objects"))
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute("SELECT socialproof.drop_event_month(%s)", (ARCHIVE_MONTH.date(),))
    rate = rows / (write_s + verify_s)
    peak_mb = memory.peak / 2**20
    return {
        "archival: events in the month": rows,
        "archival: load with generate_series (s)": load_s,
        "archival: baseline COPY out, thrown away (rows/s)": rows / copy_s,
        "archival: write Parquet zstd + upload (rows/s)": rows / write_s,
        "archival: read back + verify (s)": verify_s,
        "archival: archive and verify (rows/s)": rate,
        "archival: archive size (MB)": size / 2**20,
        "archival: peak RSS of the archiving process (MB)": peak_mb,
        "archival: RSS growth while archiving (MB)": (memory.peak - memory.at_start) / 2**20,
        f"archival ≥ {ARCHIVE_RATE_TARGET:,} rows/s": _met(rate >= ARCHIVE_RATE_TARGET),
        f"archival peak memory < {ARCHIVE_MEMORY_TARGET_MB} MB": _met(peak_mb < ARCHIVE_MEMORY_TARGET_MB),
    }


WEBHOOK_ENDPOINTS = 10
WEBHOOK_MESSAGES = 300  # each to every endpoint, after the latency samples': 8,000 deliveries in all
WEBHOOK_LATENCY_SAMPLES = 500
WEBHOOK_CONCURRENCY = 32


async def _receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The merchant's receiver: reads the body, answers 200 "ok" (the least a real receiver does)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve_receiver(port: int) -> None:
    import uvicorn

    uvicorn.run(_receiver, host="127.0.0.1", port=port, log_level="warning", http="httptools", loop="uvloop")


def _webhook_bench(server: Server, database: str) -> dict[str, Any]:
    """``_webhooks`` for a new merchant, with the receiver in a process of its own."""
    import multiprocessing

    from bench.server import free_port

    owner = merchant(server.base_url, "bench-webhooks@example.com")
    org_id = uuid.UUID(owner.client.get("/api/v1/organizations").json()["data"][0]["id"])
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=_serve_receiver, args=(port,), daemon=True)
    receiver.start()
    try:
        for _ in range(100):
            try:
                httpx.post(f"http://127.0.0.1:{port}/", content=b"{}")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        return asyncio.run(_webhooks(database, server.data_dir, org_id, port))
    finally:
        receiver.terminate()


async def _webhooks(database: str, data_dir: Path, org_id: uuid.UUID, port: int) -> dict[str, Any]:
    """Outbound webhooks: the latency of emitting one event to 10 endpoints (deliveries inserted, jobs queued,
    committed) plus signing its 10 messages, beside the same tenant transaction committing nothing; then the fan-out
    of those deliveries and 3,000 more by a Procrastinate worker (32 at a time, in this process) to a receiver in
    another process on loopback."""
    from northstar.core.outbound import close_posting_sessions
    from northstar.core.permissions import Principal, Role
    from northstar.core.queue import close_queue, open_queue, queue_app
    from northstar.modules import MANIFESTS  # every module's tables and tasks, as in the API and the worker
    from northstar.settings import get_settings
    from northstar.webhooks import service as webhooks
    from northstar.webhooks.service import endpoints
    from northstar.webhooks.signing import new_message_id, sign

    assert MANIFESTS
    base = get_settings()
    settings = base.model_copy(
        update={"outbound": base.outbound.model_copy(update={"allow_private_networks": True, "allow_http": True})}
    )
    db = Database(database, settings=settings, pool_size=8)
    pool = await open_queue(db, max_size=8)
    try:
        principal = Principal(org_id=org_id, role=Role.FOUNDER)
        async with db.tenant_transaction(org_id=org_id) as session:
            for number in range(WEBHOOK_ENDPOINTS):
                await endpoints.create_endpoint(
                    session,
                    principal=principal,
                    url=f"http://127.0.0.1:{port}/hooks/{number}",
                    description="bench",
                    event_types=["event.received"],
                )
        data = {"id": str(uuid.uuid4()), "type": "purchase", "details": {"firstName": "Anna", "city": "Hamburg"}}
        body = json.dumps({"type": "event.received", "data": data}).encode()
        keys = [os.urandom(24)]
        bare, emitted, signed = [], [], []
        for _ in range(WEBHOOK_LATENCY_SAMPLES):
            started = time.perf_counter()
            async with db.tenant_transaction(org_id=org_id) as session:
                await session.execute(text("SELECT 1"))
            bare.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            async with db.tenant_transaction(org_id=org_id) as session:
                await webhooks.emit(session, org_id=org_id, event_type="event.received", data=data)
            emitted.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            for _ in range(WEBHOOK_ENDPOINTS):
                sign(keys, message_id=new_message_id(), body=body)
            signed.append((time.perf_counter() - started) * 1000)
        one_endpoint = [emit / WEBHOOK_ENDPOINTS for emit in emitted]
        async with db.tenant_transaction(org_id=org_id) as session:  # more, emitted at once (one transaction)
            for _ in range(WEBHOOK_MESSAGES):
                await webhooks.emit(session, org_id=org_id, event_type="event.received", data=data)
        deliveries = (WEBHOOK_LATENCY_SAMPLES + WEBHOOK_MESSAGES) * WEBHOOK_ENDPOINTS
        with tasks_using(db), CpuMeter(os.getpid(), data_dir, tree=False) as cpu:
            started = time.perf_counter()
            await queue_app.run_worker_async(
                wait=False,
                install_signal_handlers=False,
                listen_notify=False,
                concurrency=WEBHOOK_CONCURRENCY,
                queues=["webhooks"],
            )
            elapsed = time.perf_counter() - started
        async with db.tenant_transaction(org_id=org_id) as session:
            succeeded = int(
                (
                    await session.execute(
                        text("SELECT count(*) FROM webhooks.webhook_deliveries WHERE status = 'succeeded'")
                    )
                ).scalar_one()
            )
    finally:
        await close_posting_sessions()
        await close_queue(pool)
        await db.dispose()
    sign_and_enqueue = [emit + sign for emit, sign in zip(emitted, signed, strict=True)]
    p99 = _percentile(sign_and_enqueue, 0.99)
    rate = succeeded / elapsed
    return {
        "webhooks_emit_baseline_empty_tenant_commit_p99_ms": _percentile(bare, 0.99),
        f"webhooks_emit_to_{WEBHOOK_ENDPOINTS}_endpoints_commit_p50_ms": statistics.median(emitted),
        f"webhooks_emit_to_{WEBHOOK_ENDPOINTS}_endpoints_commit_p99_ms": _percentile(emitted, 0.99),
        f"webhooks_sign_{WEBHOOK_ENDPOINTS}_messages_p99_ms": _percentile(signed, 0.99),
        f"webhooks_sign_and_enqueue_one_event_to_{WEBHOOK_ENDPOINTS}_endpoints_p99_ms": p99,
        "webhooks_sign_and_enqueue_per_delivery_p99_ms": _percentile(one_endpoint, 0.99)
        + _percentile(signed, 0.99) / WEBHOOK_ENDPOINTS,
        "p99 signing + enqueue ≤ 5 ms (one event, all its endpoints)": _met(p99 <= 5),
        "webhooks_fanout_deliveries": succeeded,
        "webhooks_fanout_of_deliveries_queued": deliveries,
        "webhooks_fanout_deliveries_per_s": rate,
        "webhooks_fanout_worker_cpu_s (this process)": cpu.api_s,
        "webhooks_fanout_postgres_cpu_s": cpu.pg_s,
        "fan-out ≥ 500 deliveries/s": _met(rate >= 500),
    }


# --- 5. visitor profiles and custom fields (issue 14) -------------------------------------------------------------


def _profiled(database: str, site_id: str) -> tuple[int, int]:
    with psycopg.connect(database) as connection:
        row = connection.execute(
            "SELECT count(*), coalesce(sum(page_views), 0) FROM socialproof.visitor_profiles WHERE site_id = %s",
            (site_id,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


CUSTOM_FIELDS = (
    {"name": "Plan", "key": "plan", "type": "enum", "options": ["free", "pro", "team"], "default": "free"},
    {"name": "Seats", "key": "seats", "type": "number"},
    {"name": "VIP", "key": "vip", "type": "boolean"},
    {"name": "Company", "key": "company", "type": "text", "required": True},
)


def profiles_run(seconds: int = 10) -> dict[str, Any]:
    """Collection with custom-field validation, then with profile updates too, beside part 1's in the same run.

    Part 1's number is ``POST /collect`` with batches of 20 anonymous page views on a server with visitor profiles
    turned off (``NORTHSTAR_SOCIALPROOF__VISITOR_PROFILES=false``: the writer runs ``ingest_staged`` alone, as in part
    1). On the same server, with four custom fields defined, the same batches carry four custom values on every
    event from 50,000 identified visitors: every event is validated against the definitions (the target's path).
    A second server has profiles on: the same custom batches also upsert the profiles each flush touched, and the
    plain batches there show what the profile upsert costs without custom values."""
    results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
    with (
        running_server("serve", NORTHSTAR_SOCIALPROOF__VISITOR_PROFILES="false") as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        database = conninfo(server.data_dir)
        shop = merchant(server.base_url, "bench-part1@example.com")
        part1 = _collect(server, database, shop.site("part1"), BATCH_EVENTS, seconds, Path(scratch))
        for field in CUSTOM_FIELDS:  # defined after part 1's run, which must not pay for them
            shop.post("/api/v1/custom-fields", field)
        validated = _collect(
            server, database, shop.site("validated"), BATCH_EVENTS, seconds, Path(scratch), template=PROFILED_SCRIPT
        )
        results |= _collect_measures("part1_collect_batch20", part1, BATCH_EVENTS, seconds)
        results |= _collect_measures("custom_values_validated_batch20", validated, BATCH_EVENTS, seconds)
    results["machine_load_1m_between"] = os.getloadavg()[0]
    with running_server("serve") as server, tempfile.TemporaryDirectory() as scratch:
        database = conninfo(server.data_dir)
        shop = merchant(server.base_url, "bench-profiles@example.com")
        for field in CUSTOM_FIELDS:
            shop.post("/api/v1/custom-fields", field)
        plain_site, custom_site = shop.site("plain"), shop.site("custom")
        plain = _collect(server, database, plain_site, BATCH_EVENTS, seconds, Path(scratch))
        custom = _collect(server, database, custom_site, BATCH_EVENTS, seconds, Path(scratch), template=PROFILED_SCRIPT)
        profiles, page_views = _profiled(database, custom_site["id"])
        results |= _collect_measures("profiles_plain_batch20", plain, BATCH_EVENTS, seconds)
        results |= _collect_measures("profiles_custom_batch20", custom, BATCH_EVENTS, seconds)
        results["profiles_custom_profiles (rows)"] = profiles
        results["profiles_custom_page_views_on_profiles (= stored rows)"] = page_views
    validation = validated.stored / max(1, part1.stored)
    results["custom_values_validated_to_part1 (stored events)"] = validation
    results["custom_and_profiles_to_part1 (stored events)"] = custom.stored / max(1, part1.stored)
    results["plain_with_profiles_to_part1 (stored events)"] = plain.stored / max(1, part1.stored)
    results["target: custom-field validation ≥ 0.9 x part 1"] = _met(validation >= 0.9)
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
        part1 = results[f"collect_batch{BATCH_EVENTS}_stored_events_per_s (rows in the table / {seconds} s)"]
        results |= _ab_collection(server, database, shop, seconds, Path(scratch), part1)
        results |= _feed(server.base_url, shop, seconds)
        results["machine_load_1m_before_analytics"] = os.getloadavg()[0]
        results |= _analytics(server.base_url, database, analyst)
        results |= _webhook_bench(server, database)
        results["machine_load_1m_before_archival"] = os.getloadavg()[0]
        results |= _archival(database, Path(scratch))
        results["machine_load_1m_at_end"] = os.getloadavg()[0]
    results |= {f"profiles: {name}": value for name, value in profiles_run(seconds).items()}
    return results


@contextmanager
def _archival_database() -> Iterator[str]:
    """A migrated database of its own on ``NORTHSTAR_BENCH_DATABASE_URL``'s server (dropped after), else the embedded
    one of a ``northstar serve`` (whose start can outlast its readiness wait on a loaded machine)."""
    server_url = os.environ.get("NORTHSTAR_BENCH_DATABASE_URL")
    if not server_url:
        with running_server("serve") as server:
            yield conninfo(server.data_dir)
        return
    from sqlalchemy.engine import make_url

    from northstar.migrations import upgrade

    name = f"northstar_bench_archival_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_archival() -> dict[str, Any]:
    """Only the archival measures."""
    with _archival_database() as database, tempfile.TemporaryDirectory() as scratch:
        results: dict[str, Any] = {"machine_load_1m_at_start": os.getloadavg()[0]}
        results |= _archival(database, Path(scratch))
        results["machine_load_1m_at_end"] = os.getloadavg()[0]
    return results


def run_webhooks() -> dict[str, Any]:
    """The webhooks part alone (``python -m bench.socialproof webhooks``)."""
    with running_server("serve") as server:
        return _webhook_bench(server, conninfo(server.data_dir))


if __name__ == "__main__":
    import sys

    only = {"erasure": run_erasure, "archival": run_archival, "webhooks": run_webhooks, "profiles": profiles_run}
    for name, value in only.get(" ".join(sys.argv[1:]), run)().items():
        print(f"{name:60} {value:>14,.2f}" if isinstance(value, float) else f"{name:60} {value:>14}")
