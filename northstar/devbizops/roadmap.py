"""RoadmapAgent's deterministic engine: each open roadmap item's progress, time left and demand in, proposals with
their reason and numbers out.

* **Status.** An item whose work items are all done is proposed ``shipped``; a planned item with work started
  (in progress or done) is proposed ``in_progress``.
* **Slip.** The remaining work items are compared with what the org finishes: its throughput (work items done in
  the last ``THROUGHPUT_WEEKS`` weeks, per week) times the weeks left to the end of the target quarter. When more
  remains than fits, the item is proposed for the first later quarter in which it fits at that pace (the next one
  when nothing was finished lately).
* **Rank.** Open items are ranked by revenue-weighted demand (the ARR of the customers and the open pipeline of the
  deals linked to their work items, in the reporting currency); an item whose rank differs from that order is
  proposed the rank it would have.

Pure: ``docs/devbizops.md`` ("RoadmapAgent") states every rule.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

THROUGHPUT_WEEKS = 8
QUARTERS_AHEAD = 8  # how far a slip looks for a quarter with room
OPEN = ("planned", "in_progress")


@dataclass(frozen=True)
class ItemFacts:
    id: uuid.UUID
    title: str
    status: str
    target_quarter: str  # 2027-Q1
    rank: int
    total: int  # linked work items, canceled ones left out
    done: int
    started: int  # in progress or done
    demand: int  # reporting currency minor units


@dataclass(frozen=True)
class Proposed:
    item_id: uuid.UUID
    title: str
    kind: str  # roadmap_status, roadmap_slip, roadmap_rank
    change: dict[str, Any]
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_end(quarter: str) -> dt.date:
    """The last day of ``2027-Q1``."""
    year, number = int(quarter[:4]), int(quarter[-1])
    first_of_next = dt.date(year + number // 4, number % 4 * 3 + 1, 1)
    return first_of_next - dt.timedelta(days=1)


def next_quarter(quarter: str) -> str:
    year, number = int(quarter[:4]), int(quarter[-1])
    return f"{year + number // 4}-Q{number % 4 + 1}"


def throughput(done_days: list[dt.date], today: dt.date) -> Fraction:
    """Work items done a week, over the last ``THROUGHPUT_WEEKS`` weeks (today included)."""
    since = today - dt.timedelta(weeks=THROUGHPUT_WEEKS)
    return Fraction(sum(1 for day in done_days if since < day <= today), THROUGHPUT_WEEKS)


def _weeks_left(quarter: str, today: dt.date) -> Fraction:
    return Fraction(max(0, (quarter_end(quarter) - today).days + 1), 7)


def propose(items: list[ItemFacts], *, today: dt.date, pace: Fraction) -> list[Proposed]:
    proposals: list[Proposed] = []
    open_items = [item for item in items if item.status in OPEN]
    for item in open_items:
        if item.total and item.done == item.total:
            proposals.append(
                Proposed(item.id, item.title, "roadmap_status", {"status": "shipped"},
                         f"all {item.total} of its work items are done", {"done": item.done, "total": item.total})
            )  # fmt: skip
            continue
        if item.status == "planned" and item.started:
            proposals.append(
                Proposed(item.id, item.title, "roadmap_status", {"status": "in_progress"},
                         f"{item.started} of its {item.total} work items are started or done",
                         {"started": item.started, "total": item.total})
            )  # fmt: skip
        remaining = item.total - item.done
        room = pace * _weeks_left(item.target_quarter, today)
        if remaining and remaining > room:
            target = next_quarter(max(item.target_quarter, quarter_of(today)))
            for _ in range(QUARTERS_AHEAD):
                if not pace or remaining <= pace * _weeks_left(target, today):
                    break
                target = next_quarter(target)
            proposals.append(
                Proposed(
                    item.id,
                    item.title,
                    "roadmap_slip",
                    {"target_quarter": target},
                    f"{remaining} work items remain; at {float(pace):.2f} done a week, the "
                    f"{float(_weeks_left(item.target_quarter, today)):.1f} weeks left in {item.target_quarter} "
                    f"leave room for {float(room):.1f}",
                    {
                        "remaining": remaining,
                        "per_week": round(float(pace), 2),
                        "weeks_left": round(float(_weeks_left(item.target_quarter, today)), 1),
                    },
                )
            )
    ordered = sorted(open_items, key=lambda item: (-item.demand, item.rank))
    current = sorted(open_items, key=lambda item: item.rank)
    for position, item in enumerate(ordered, start=1):
        if current.index(item) + 1 != position:
            ahead = ordered[position] if position < len(ordered) else None
            proposals.append(
                Proposed(
                    item.id,
                    item.title,
                    "roadmap_rank",
                    {"rank": position},
                    f"{item.demand} of ARR and open pipeline (minor units) waits on it"
                    + (
                        f", more than on {ahead.title} ({ahead.demand})" if ahead and ahead.demand < item.demand else ""
                    ),
                    {"demand": item.demand, "rank": item.rank},
                )
            )
    return proposals
