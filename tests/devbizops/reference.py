"""The engineering metrics computed a second way, straight from docs/devbizops.md ("Metrics"), to check the engine:
each scope's records are picked out first, then every month is worked out from them alone, with ``Decimal``
arithmetic and the standard library's median."""

from __future__ import annotations

import datetime as dt
import statistics
import zoneinfo
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from northstar.devbizops.inputs import Change, Deployment, EngineeringBatch

Key = tuple[str, str, str, dt.date]  # (metric, grain, dims, day)


def _hours(seconds: list[float]) -> Decimal:
    middle = Decimal(str(statistics.median(seconds)))
    return (middle / Decimal(3600)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _span(start: dt.datetime, end: dt.datetime) -> float:
    return float(max(0, int((end - start).total_seconds())))


def _member(scopes: Callable[[str | None], set[str]], scope: str) -> Callable[[str | None], bool]:
    def mine(repo: str | None) -> bool:
        return scope in scopes(repo)

    return mine


def _within(month: Callable[[dt.datetime], dt.date], current: dt.date) -> Callable[[dt.datetime], bool]:
    def in_month(moment: dt.datetime) -> bool:
        return month(moment) == current

    return in_month


def reference(batch: EngineeringBatch, teams: dict[str, Any], zone: str, today: dt.date) -> dict[Key, Decimal]:
    tz = zoneinfo.ZoneInfo(zone)

    def day(moment: dt.datetime) -> dt.date:
        return moment.astimezone(tz).date()

    def month(moment: dt.datetime) -> dt.date:
        return day(moment).replace(day=1)

    def month_start(first: dt.date) -> dt.datetime:
        return dt.datetime(first.year, first.month, 1, tzinfo=tz)

    def following(first: dt.date) -> dt.date:
        return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)

    names = {repo.external_id: repo.name for repo in batch.repositories}

    def scopes(repo: str | None) -> set[str]:
        if repo is None:
            return {""}
        found = {"", f"repo={names.get(repo, repo)}"}
        if teams.get(repo) is not None:
            found.add(f"team={teams[repo]}")
        return found

    final = [d for d in batch.deployments if d.production and d.status in ("success", "failure")]

    def finished(deployment: Deployment) -> dt.datetime:
        return deployment.finished_at or deployment.created_at

    successes = [d for d in final if d.status == "success"]
    failing = {d.external_id for d in final if d.status == "failure"}
    for incident in batch.incidents:
        if incident.repository is None:
            continue
        before = [d for d in successes if d.repository == incident.repository and finished(d) <= incident.started_at]
        if before:
            failing.add(max(before, key=finished).external_id)

    def shipping(change: Change) -> dt.datetime | None:
        assert change.merged_at is not None
        after = [
            finished(d) for d in successes if d.repository == change.repository and finished(d) >= change.merged_at
        ]
        return min(after) if after else None

    # each merged change that a deployment shipped: (merged, shipped)
    shipped = {
        change.external_id: (change.merged_at, at)
        for change in batch.changes
        if change.merged_at is not None and (at := shipping(change)) is not None
    }
    out: dict[Key, Decimal] = {}
    every_scope = set().union(*(scopes(repo.external_id) for repo in batch.repositories), {""})
    for scope in every_scope:
        mine = _member(scopes, scope)
        deployments = [d for d in final if mine(d.repository)]
        changes = [c for c in batch.changes if mine(c.repository)]
        incidents = [i for i in batch.incidents if mine(i.repository)]
        done = [w for w in batch.work_items if w.status == "done" and w.completed_at and mine(w.repository)]
        reviews = [(c, r) for c in changes for r in c.reviews if r.reviewer != c.author]

        def open_at_end(change: Change, first: dt.date) -> bool:
            end = month_start(following(first))
            ended = change.merged_at or change.closed_at
            return change.created_at < end and (ended is None or ended >= end)

        active = {month(finished(d)) for d in deployments}
        active |= {month(i.resolved_at) for i in incidents if i.resolved_at}
        active |= {month(r.submitted_at) for _, r in reviews}
        active |= {month(c.merged_at) for c in changes if c.merged_at}
        active |= {month(w.completed_at) for w in done if w.completed_at}
        for change in changes:
            walk = month(change.created_at)
            while walk <= today.replace(day=1):
                if open_at_end(change, walk):
                    active.add(walk)
                walk = following(walk)
        if not active:
            continue
        current = min(active)
        while current <= today.replace(day=1):
            in_month = _within(month, current)
            succeeded = [d for d in deployments if d.status == "success" and in_month(finished(d))]
            days = {day(finished(d)) for d in deployments if d.status == "success"}
            values: dict[str, Decimal] = {
                "deployments": Decimal(len(succeeded)),
                "deployment_days": Decimal(len({day(finished(d)) for d in succeeded})),
                "throughput": Decimal(sum(1 for c in changes if c.merged_at and in_month(c.merged_at))),
                "work_in_progress": Decimal(sum(1 for c in changes if open_at_end(c, current))),
                "reviews": Decimal(sum(1 for _, r in reviews if in_month(r.submitted_at))),
                "work_items_done": Decimal(sum(1 for w in done if w.completed_at and in_month(w.completed_at))),
            }
            # deployment frequency band: the weeks starting in the month, up to today
            weeks = []
            monday = current
            while monday.weekday() != 0:
                monday += dt.timedelta(days=1)
            while monday < following(current) and monday <= today:
                weeks.append(len([offset for offset in range(7) if monday + dt.timedelta(days=offset) in days]))
                monday += dt.timedelta(days=7)
            if weeks and statistics.median(weeks) >= 3:
                values["deployment_frequency_band"] = Decimal(4)
            elif weeks and statistics.median([min(week, 1) for week in weeks]) >= 1:
                values["deployment_frequency_band"] = Decimal(3)
            else:
                values["deployment_frequency_band"] = Decimal(2 if succeeded else 1)
            reviewers = {r.reviewer for _, r in reviews if in_month(r.submitted_at)}
            if reviewers:
                values["review_load"] = (values["reviews"] / len(reviewers)).quantize(Decimal("0.01"), ROUND_HALF_UP)
            landed = [c for c in changes if c.external_id in shipped and in_month(shipped[c.external_id][1])]
            if landed:
                lead = [_span(c.first_commit_at or c.created_at, shipped[c.external_id][1]) for c in landed]
                values["lead_time_hours"] = _hours(lead)
                middle = statistics.median(lead)
                values["lead_time_band"] = Decimal(
                    4 if middle < 86400 else 3 if middle < 7 * 86400 else 2 if middle < 4380 * 3600 else 1
                )
                values["deploy_time_hours"] = _hours([_span(*shipped[c.external_id]) for c in landed])
                coding = [_span(c.first_commit_at, c.created_at) for c in landed if c.first_commit_at]
                if coding:
                    values["coding_time_hours"] = _hours(coding)
                firsts: dict[str, tuple[dt.datetime, dt.datetime, dt.datetime]] = {}  # (opened, reviewed, merged)
                for c in landed:
                    merged = shipped[c.external_id][0]
                    reviewed_at = [
                        r.submitted_at for r in c.reviews if r.reviewer != c.author and r.submitted_at <= merged
                    ]
                    if reviewed_at:
                        firsts[c.external_id] = (c.created_at, min(reviewed_at), merged)
                if firsts:
                    values["pickup_time_hours"] = _hours([_span(opened, first) for opened, first, _ in firsts.values()])
                    values["review_time_hours"] = _hours([_span(first, merged) for _, first, merged in firsts.values()])
            ended = [d for d in deployments if in_month(finished(d))]
            if ended:
                rate = Decimal(sum(1 for d in ended if d.external_id in failing)) / Decimal(len(ended))
                values["change_failure_rate"] = (rate * 100).quantize(Decimal("0.0001"), ROUND_HALF_UP)
                values["change_failure_band"] = Decimal(
                    4
                    if rate <= Decimal("0.15")
                    else 3
                    if rate <= Decimal("0.30")
                    else 2
                    if rate <= Decimal("0.45")
                    else 1
                )
            restored = [
                _span(i.started_at, i.resolved_at) for i in incidents if i.resolved_at and in_month(i.resolved_at)
            ]
            if restored:
                values["time_to_restore_hours"] = _hours(restored)
                middle = statistics.median(restored)
                values["time_to_restore_band"] = Decimal(
                    4 if middle < 3600 else 3 if middle < 86400 else 2 if middle < 7 * 86400 else 1
                )
            for metric, value in values.items():
                out[(metric, "month", scope, current)] = value
            current = following(current)
    for metric, moments in (
        ("deployments", [finished(d) for d in successes]),
        ("throughput", [c.merged_at for c in batch.changes if c.merged_at]),
    ):
        if moments:
            counts: dict[dt.date, int] = {}
            for moment in moments:
                counts[day(moment)] = counts.get(day(moment), 0) + 1
            walk = min(counts)
            while walk <= today:
                out[(metric, "day", "", walk)] = Decimal(counts.get(walk, 0))
                walk += dt.timedelta(days=1)
    return out
