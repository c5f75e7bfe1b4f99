"""The console: the KPIx dashboard page rendered on the server for the demo org, against the JSON dashboard it
shows (same run, same server, same user), and what a first visit to it downloads.

The page is measured as a browser gets it (session cookie, gzip), the JSON as an API client does (bearer token);
both answer from the same service calls, so the ratio is the price of rendering HTML. Transfer counts every byte of
the page and of each script and stylesheet it loads, compressed as served.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.platform import server_url
from bench.server import fresh_database, running_server, wrk
from northstar.demo.showcase import seed_showcase
from northstar.settings import Settings

SECRET = secrets.token_urlsafe(32)
SAMPLES = 300
CONNECTIONS = 16
ASSET = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="(/app/static/[^"]+)"')


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _latencies(client: httpx.Client, path: str, headers: dict[str, str]) -> list[float]:
    """Milliseconds per request, one at a time (the server's render time plus a loopback round trip)."""
    client.get(path, headers=headers).raise_for_status()  # warm: templates compiled, caches filled
    timings = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return timings


def _first_load_bytes(client: httpx.Client, cookie: str) -> dict[str, int]:
    """Bytes on the wire of the page and everything it loads, gzipped as served."""
    headers = {"cookie": cookie, "accept-encoding": "gzip"}
    page = client.get("/app/", headers=headers)
    sizes = {"html": page.num_bytes_downloaded}
    for url in sorted(set(ASSET.findall(page.text))):
        kind = "js" if ".js" in url else "css"
        sizes[kind] = sizes.get(kind, 0) + client.get(url, headers={"accept-encoding": "gzip"}).num_bytes_downloaded
    return sizes


def _wrk_script(directory: Path, name: str, header: str) -> Path:
    script = directory / f"{name}.lua"
    script.write_text(
        f'wrk.headers["{header.split(":", 1)[0]}"] = "{header.split(":", 1)[1].strip()}"\n'
        'wrk.headers["Accept-Encoding"] = "gzip"\n'
    )
    return script


def run(seconds: int = 10) -> dict[str, Any]:
    with (
        server_url() as database_server,
        tempfile.TemporaryDirectory() as scratch,
        fresh_database(database_server, "bench_console") as database_url,
    ):
        common = {"DATABASE_URL": database_url, "NORTHSTAR_AUTH__SECRET_KEY": SECRET}
        with running_server("serve", None, args=("--workers", "1"), **common) as server:
            settings = Settings(database_url=database_url, data_dir=Path(scratch))
            started = time.perf_counter()
            seeded = asyncio.run(seed_showcase(database_url, settings)).org
            seed_seconds = time.perf_counter() - started
            _, email, password = next(user for user in seeded.users if user[0] == "founder")
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                login = client.post("/api/v1/auth/login", json={"email": email, "password": password})
                token = login.json()["data"]["tokens"]["accessToken"]
                cookie = f"ns_access={token}"
                page = _latencies(client, "/app/", {"cookie": cookie, "accept-encoding": "gzip"})
                json = _latencies(client, "/api/v1/dashboard", {"authorization": f"Bearer {token}"})
                transfer = _first_load_bytes(client, cookie)
            page_load = wrk(
                f"{server.base_url}/app/",
                connections=CONNECTIONS,
                seconds=seconds,
                script=_wrk_script(Path(scratch), "page", f"Cookie: {cookie}"),
            )
            json_load = wrk(
                f"{server.base_url}/api/v1/dashboard",
                connections=CONNECTIONS,
                seconds=seconds,
                script=_wrk_script(Path(scratch), "json", f"Authorization: Bearer {token}"),
            )
    return {
        "demo_seed_s": seed_seconds,
        "page_p50_ms": statistics.median(page),
        "page_p95_ms": _percentile(page, 0.95),
        "json_dashboard_p50_ms": statistics.median(json),
        "json_dashboard_p95_ms": _percentile(json, 0.95),
        f"page{CONNECTIONS}_rps": page_load.requests_per_second,
        f"page{CONNECTIONS}_errors": page_load.non_2xx,
        f"json_dashboard{CONNECTIONS}_rps": json_load.requests_per_second,
        "page_to_json_throughput": page_load.requests_per_second / json_load.requests_per_second,
        "first_load_html_bytes_gz": transfer["html"],
        "first_load_js_bytes_gz": transfer.get("js", 0),
        "first_load_css_bytes_gz": transfer.get("css", 0),
        "first_load_total_kb_gz": sum(transfer.values()) / 1024,
    }


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:40} {value:14,.2f}" if isinstance(value, float) else f"{name:40} {value}")
