"""Data service (issue 3): enqueue latency under load, import and export throughput against plain COPY, memory.

Runs the real platform (``northstar run``: API + one worker on the embedded PostgreSQL). Baselines are measured
in the same run: ``/healthz`` for the HTTP side, and plain ``COPY`` of the same rows into / out of an
unindexed table without row-level security for the data side (the floor no import or export can beat).
"""

from __future__ import annotations

import csv
import os
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.server import running_server, signup, wrk
from northstar.core.db import start_embedded_postgres

ROWS = int(os.environ.get("BENCH_ROWS", "2000000"))
GENERATE_BODY = (
    '{"rows": 1000, "columns": [{"name": "id", "type": "int"}, '
    '{"name": "plan", "type": "enum", "values": ["free", "pro"]}]}'
)
COLUMNS = ["id", "customer", "email", "plan", "amount", "quantity", "ratio", "active", "created_on", "note"]


def _write_csv(path: Path, rows: int) -> None:
    """A 10-column CSV (ints, text, decimal, float, bool, date) written in blocks."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        block = 100_000
        for start in range(0, rows, block):
            writer.writerows(
                (
                    n,
                    f"Customer {n % 9973}",
                    f"user{n}@example.com",
                    ("free", "pro", "team")[n % 3],
                    f"{(n % 100_000) / 100:.2f}",
                    n % 17,
                    (n % 1000) / 1000,
                    n % 2 == 0,
                    f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}",
                    "ok" if n % 5 else "",
                )
                for n in range(start, min(rows, start + block))
            )


class PeakMemory:
    """Samples the resident memory of a process tree (the worker) while a job runs."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                worker = max(
                    (p for p in processes if "worker" in " ".join(p.cmdline())),
                    key=lambda p: p.memory_info().rss,
                    default=None,
                )
                if worker is not None:
                    self.peak = max(self.peak, worker.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


def _wait(client: httpx.Client, job_id: str) -> dict[str, Any]:
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/status/{job_id}").json()["data"]
        if job["status"] in ("completed", "failed", "cancelled"):
            if job["status"] != "completed":
                raise RuntimeError(f"job {job_id} {job['status']}: {job['errorMessage']}")
            return job
        time.sleep(0.2)


def _duration(job: dict[str, Any]) -> float:
    return (datetime.fromisoformat(job["finishedAt"]) - datetime.fromisoformat(job["startedAt"])).total_seconds()


def _plain_copy(conninfo: str, path: Path) -> tuple[float, float]:
    """Seconds to COPY the CSV into a plain table, and to COPY that table out to CSV (the floors)."""
    types = ["bigint", "text", "text", "text", "numeric(12,2)", "bigint", "double precision", "boolean", "date", "text"]
    definition = ", ".join(f"{name} {kind}" for name, kind in zip(COLUMNS, types, strict=True))
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_copy")
        connection.execute(f"CREATE TABLE bench_copy ({definition})")
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY bench_copy FROM STDIN (FORMAT csv, HEADER)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        copy_in = time.perf_counter() - started
        started = time.perf_counter()
        with connection.cursor() as cursor, cursor.copy("COPY bench_copy TO STDOUT (FORMAT csv)") as copy:
            for _ in copy:
                pass
        copy_out = time.perf_counter() - started
        connection.execute("DROP TABLE bench_copy")
    return copy_in, copy_out


def _enqueue_under_load(seconds: int) -> dict[str, Any]:
    """``POST /generate`` at 64 connections against ``/healthz``; API only, so no worker competes for CPU."""
    with running_server("serve") as server, tempfile.TemporaryDirectory() as scratch:
        headers = {"Authorization": f"Bearer {signup(server.base_url, 'bench-enqueue@example.com')}"}
        script = Path(scratch) / "generate.lua"
        script.write_text(
            f"wrk.method = 'POST'\nwrk.body = '{GENERATE_BODY}'\nwrk.headers['Content-Type'] = 'application/json'\n"
        )
        baseline = wrk(f"{server.base_url}/healthz", seconds=seconds)
        enqueue = wrk(f"{server.base_url}/api/v1/generate", seconds=seconds, headers=headers, script=script)
    return {
        "healthz_rps": baseline.requests_per_second,
        "generate_rps": enqueue.requests_per_second,
        "generate_p50_ms": enqueue.p50_ms,
        "generate_p99_ms": enqueue.p99_ms,
        "generate_errors": enqueue.non_2xx,
    }


def _import_and_export() -> dict[str, Any]:
    results: dict[str, Any] = {"rows": ROWS}
    with running_server("run") as server, tempfile.TemporaryDirectory() as scratch:
        headers = {"Authorization": f"Bearer {signup(server.base_url, 'bench-jobs@example.com')}"}
        source = Path(scratch) / "ten_columns.csv"
        _write_csv(source, ROWS)
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=300) as client:
            with source.open("rb") as body:
                upload = client.post(
                    "/api/v1/upload?filename=ten_columns.csv", content=body, headers={"content-type": "text/csv"}
                ).json()["data"]
            memory = PeakMemory(server.process.pid)
            imported = _wait(client, upload["jobId"])
            results["import_rows_per_s"] = ROWS / _duration(imported)
            results["import_peak_rss_mb"] = memory.stop() / 2**20
            dataset = imported["result"]["datasetId"]
            for file_format in ("csv", "parquet"):
                memory = PeakMemory(server.process.pid)
                job_id = client.post(
                    "/api/v1/export", json={"source": {"type": "dataset", "id": dataset}, "format": file_format}
                ).json()["data"]["jobId"]
                exported = _wait(client, job_id)
                results[f"export_{file_format}_rows_per_s"] = ROWS / _duration(exported)
                results[f"export_{file_format}_peak_rss_mb"] = memory.stop() / 2**20
        copy_in, copy_out = _plain_copy(start_embedded_postgres(server.data_dir), source)
    results["plain_copy_in_rows_per_s"] = ROWS / copy_in
    results["plain_copy_out_rows_per_s"] = ROWS / copy_out
    results["import_to_plain_copy"] = results["import_rows_per_s"] / results["plain_copy_in_rows_per_s"]
    results["export_csv_to_plain_copy"] = results["export_csv_rows_per_s"] / results["plain_copy_out_rows_per_s"]
    return results


def run(seconds: int = 10) -> dict[str, Any]:
    return _enqueue_under_load(seconds) | _import_and_export()


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:32} {value:14,.2f}")
