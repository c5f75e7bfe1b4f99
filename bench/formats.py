"""File formats (issue 3): import parse+validate+COPY-encode rows/s, export writers rows/s, peak memory.

Baselines measured in the same run: Arrow's bare CSV parse of the same file (no validation, no row
numbers), and Arrow's bare CSV write of the same batches (no formula guard). The data is a realistic
10-column mix: two integers, a 2-decimal price, a name, a boolean, a date, a UTC timestamp, a 4-decimal
score, a city and a code (about 110 bytes a row).

Run alone with ``python -m bench.formats``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from northstar.datasets.formats import (
    EXPORT_FORMATS,
    ExportFormat,
    ReadLimits,
    detect_file,
    open_writer,
    read_batches,
    to_copy_csv,
)

IMPORT_ROWS = 2_000_000
EXPORT_ROWS = 2_000_000
MEMORY_ROWS = 10_000_000
CHUNK_ROWS = 250_000  # divides the row counts above
REPEATS = 2
REPO = Path(__file__).resolve().parents[1]
CITIES = np.array(["Paris", "Berlin", "New York", "São Paulo", "Lagos", "Tokyo", "Zürich"])


def sample_batch(start: int, rows: int) -> pa.RecordBatch:
    rng = np.random.default_rng(start)
    seconds = rng.integers(0, 10**8, rows).astype("timedelta64[s]")
    return pa.RecordBatch.from_pydict(
        {
            "id": np.arange(start, start + rows),
            "qty": rng.integers(0, 1000, rows),
            "price": np.round(rng.random(rows) * 100, 2),
            "name": pa.array(np.char.add("customer ", rng.integers(0, 100_000, rows).astype(str))),
            "active": rng.random(rows) > 0.5,
            "day": np.datetime64("2020-01-01") + rng.integers(0, 1500, rows).astype("timedelta64[D]"),
            "seen_at": pa.array((np.datetime64("2020-01-01T00:00:00") + seconds).astype("datetime64[us]")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "score": np.round(rng.normal(size=rows), 4),
            "city": pa.array(CITIES[rng.integers(0, len(CITIES), rows)]),
            "code": pa.array(np.char.add("C-", rng.integers(0, 10**6, rows).astype(str))),
        }
    )


def sample_batches(rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, rows, CHUNK_ROWS):
        yield sample_batch(start, min(CHUNK_ROWS, rows - start))


def write_sample_csv(path: Path, rows: int) -> None:
    """The input file: one chunk of rows printed by Arrow, repeated (cheap to build, same shape as unique rows)."""
    chunk = sample_batch(0, CHUNK_ROWS)
    body = pa.BufferOutputStream()
    pa_csv.write_csv(chunk, body, pa_csv.WriteOptions(include_header=False))
    with path.open("wb") as file:
        file.write(",".join(f'"{name}"' for name in chunk.schema.names).encode() + b"\n")
        for _ in range(rows // CHUNK_ROWS):
            file.write(body.getvalue())


def best_seconds(action: Callable[[], object], *, repeats: int = REPEATS) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def _import(path: Path) -> dict[str, Any]:
    fmt = detect_file(path)
    limits = ReadLimits()

    def arrow_parse_only() -> None:
        options = pa_csv.ReadOptions(block_size=limits.max_line_bytes, use_threads=False)
        for _ in pa_csv.open_csv(str(path), read_options=options):
            pass

    def parse_and_validate() -> None:
        for _ in read_batches(path, fmt):
            pass

    def parse_validate_encode() -> None:
        for batch in read_batches(path, fmt):
            to_copy_csv(batch.rows)

    batches = [batch.rows for batch, _ in zip(read_batches(path, fmt), range(8), strict=False)]
    sample_rows = sum(batch.num_rows for batch in batches)
    encode = best_seconds(lambda: [to_copy_csv(batch) for batch in batches])
    return {
        "import_rows": IMPORT_ROWS,
        "import_file_mb": round(path.stat().st_size / 2**20, 1),
        "baseline_arrow_parse_only_rows_per_s": round(IMPORT_ROWS / best_seconds(arrow_parse_only)),
        "parse_validate_rows_per_s": round(IMPORT_ROWS / best_seconds(parse_and_validate)),
        "copy_encode_rows_per_s": round(sample_rows / encode),
        "parse_validate_copy_encode_rows_per_s": round(IMPORT_ROWS / best_seconds(parse_validate_encode)),
    }


def _export(directory: Path) -> dict[str, Any]:
    batches = list(sample_batches(EXPORT_ROWS))
    schema = batches[0].schema
    results: dict[str, Any] = {"export_rows": EXPORT_ROWS}

    def bare_arrow_csv() -> None:
        with pa_csv.CSVWriter(str(directory / "bare.csv"), schema) as writer:
            for batch in batches:
                writer.write_batch(batch)

    results["baseline_arrow_write_csv_rows_per_s"] = round(EXPORT_ROWS / best_seconds(bare_arrow_csv, repeats=1))
    for fmt in EXPORT_FORMATS:

        def export(fmt: ExportFormat = fmt) -> None:
            with open(directory / f"export.{fmt}", "wb") as sink, open_writer(fmt, sink, schema) as writer:
                for batch in batches:
                    writer.write(batch)

        repeats = REPEATS if fmt in ("csv", "parquet") else 1
        results[f"export_{fmt}_rows_per_s"] = round(EXPORT_ROWS / best_seconds(export, repeats=repeats))
    return results


_MEMORY_CHILD = """
import json, resource, sys, time
from northstar.datasets.formats import detect_file, open_writer, read_batches, to_copy_csv
source, target = sys.argv[1], sys.argv[2]
started = time.perf_counter()
rows = 0
fmt = detect_file(source)
with open(target, "wb") as sink:
    writer = None
    for batch in read_batches(source, fmt):
        to_copy_csv(batch.rows)
        if writer is None:
            writer = open_writer("parquet", sink, batch.rows.schema)
        writer.write(batch.rows)
        rows += batch.rows.num_rows
    writer.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
try:  # ru_maxrss can carry the parent's high-water mark across fork+exec; VmHWM belongs to this process only
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
except (OSError, StopIteration):
    pass
print(json.dumps({"rows": rows, "peak_rss_mb": peak, "seconds": time.perf_counter() - started}))
"""


def _memory(directory: Path) -> dict[str, Any]:
    """Import a 10-million-row CSV (validate, COPY-encode) and export it to Parquet, in a child process."""
    source = directory / "ten_million.csv"
    write_sample_csv(source, MEMORY_ROWS)
    completed = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, str(source), str(directory / "out.parquet")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(completed.stdout)
    return {
        "memory_rows": report["rows"],
        "memory_file_mb": round(source.stat().st_size / 2**20),
        "memory_peak_rss_mb": round(report["peak_rss_mb"]),
        "memory_run_rows_per_s": round(report["rows"] / report["seconds"]),
    }


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="northstar-bench-formats-") as scratch:
        directory = Path(scratch)
        source = directory / "import.csv"
        write_sample_csv(source, IMPORT_ROWS)
        results = _import(source)
        os.remove(source)
        results |= _export(directory)
        results |= _memory(directory)
    return results


if __name__ == "__main__":
    started = time.perf_counter()
    for name, value in run().items():
        print(f"{name}: {value:,}" if isinstance(value, int) else f"{name}: {value}")
    print(f"total seconds: {time.perf_counter() - started:.1f}")
