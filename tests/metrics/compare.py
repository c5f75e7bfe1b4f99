"""Comparing the engine's output with the reference's: money and counts exactly, rates to their tolerance."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from northstar.metrics.engine import CohortRow, Computation, Month

# percentages to 0.01 percentage points, the quick ratio (a plain ratio) to 0.0001
TOLERANCE = {
    "customer_churn_rate": 0.01,
    "gross_mrr_churn_rate": 0.01,
    "net_mrr_churn_rate": 0.01,
    "nrr": 0.01,
    "grr": 0.01,
    "quick_ratio": 0.0001,
}


def differences(engine: dict[str, object], reference: dict[str, object]) -> list[str]:
    """The fields where the engine and the reference disagree, as readable lines."""
    found = []
    if set(engine) != set(reference):
        found.append(f"keys: engine {sorted(engine)}, reference {sorted(reference)}")
    for key, expected in reference.items():
        got = engine.get(key)
        tolerance = TOLERANCE.get(key)
        if tolerance is not None and isinstance(got, int | float) and isinstance(expected, int | float):
            if abs(got - expected) > tolerance + 1e-9:
                found.append(f"{key}: engine {got}, reference {expected}")
        elif got != expected or type(got) is not type(expected):
            found.append(f"{key}: engine {got!r}, reference {expected!r}")
    return found


def month_differences(engine: Sequence[Month], reference: Sequence[dict[str, object]]) -> list[str]:
    if len(engine) != len(reference):
        return [f"{len(engine)} months from the engine, {len(reference)} from the reference"]
    found: list[str] = []
    for got, expected in zip(engine, reference, strict=True):
        found.extend(f"{expected['month']} {text}" for text in differences(dataclasses.asdict(got), expected))
    return found


def cohort_differences(engine: Sequence[CohortRow], reference: Sequence[dict[str, object]]) -> list[str]:
    got = {(row.cohort.isoformat(), row.k): dataclasses.asdict(row) for row in engine}
    expected = {(str(row["cohort"]), int(str(row["k"]))): row for row in reference}
    found = [f"row {key} only from the engine" for key in sorted(got.keys() - expected.keys())]
    found += [f"row {key} only from the reference" for key in sorted(expected.keys() - got.keys())]
    for key in sorted(got.keys() & expected.keys()):
        found.extend(f"cohort {key} {text}" for text in differences(got[key], expected[key]))
    return found


def movement_rows(computation: Computation) -> list[tuple[str, dt.date, str, int]]:
    return sorted((m.customer, m.day, m.kind, m.amount) for m in computation.movements)
