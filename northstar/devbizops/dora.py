"""The DORA and flow metrics engine: the unified engineering model in, monthly KPI points out.

Every rule, with the DORA performance bands, is in ``docs/devbizops.md`` ("Metrics"); this module is its
implementation, and a reference calculation in the tests is the other, written apart. The engine is pure: facts and
the organization's time zone in, points out; ``service.py`` reads the facts and stores the points under the KPI
store's ``engineering`` source. Each metric is reported overall (``dims`` ""), per repository (``repo=<name>``)
and per team (``team=<id>``). Durations are exact medians of whole seconds, shown as hours rounded half up to two
places; a rate is a percentage rounded half up to four.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from northstar.metrics.service import Point

SOURCE = "engineering"
HOUR = 3600
# DORA performance bands as stored numbers (docs/devbizops.md, "Bands")
ELITE, HIGH, MEDIUM, LOW = 4, 3, 2, 1
BAND_NAMES = {ELITE: "elite", HIGH: "high", MEDIUM: "medium", LOW: "low"}
LEAD_TIME_BANDS = ((24 * HOUR, ELITE), (7 * 24 * HOUR, HIGH), (4380 * HOUR, MEDIUM))  # under each bound
RESTORE_BANDS = ((HOUR, ELITE), (24 * HOUR, HIGH), (7 * 24 * HOUR, MEDIUM))
FAILURE_BANDS = ((Fraction(15, 100), ELITE), (Fraction(30, 100), HIGH), (Fraction(45, 100), MEDIUM))  # at most
DAILY_DEPLOYER_DAYS = 3  # a median week with this many days deploying is "on demand"
MONTH_METRICS = (
    "deployments",
    "deployment_days",
    "deployment_frequency_band",
    "lead_time_hours",
    "lead_time_band",
    "change_failure_rate",
    "change_failure_band",
    "time_to_restore_hours",
    "time_to_restore_band",
    "coding_time_hours",
    "pickup_time_hours",
    "review_time_hours",
    "deploy_time_hours",
    "throughput",
    "work_in_progress",
    "reviews",
    "review_load",
    "work_items_done",
)
DAY_METRICS = ("deployments", "throughput")  # also per day, overall, for anomalies


class RepoKey(NamedTuple):
    integration_id: uuid.UUID
    external_id: str


@dataclass(frozen=True)
class ChangeFact:
    repo: RepoKey
    created_at: dt.datetime
    author: str | None
    first_commit_at: dt.datetime | None
    merged_at: dt.datetime | None
    closed_at: dt.datetime | None
    reviews: tuple[tuple[str, dt.datetime], ...] = ()  # (reviewer, submitted at)


@dataclass(frozen=True)
class DeploymentFact:
    key: tuple[uuid.UUID, str]  # (integration, the deployment's source id)
    repo: RepoKey
    succeeded: bool
    at: dt.datetime  # when it finished (created, when the source gives no finish)


@dataclass(frozen=True)
class IncidentFact:
    repo: RepoKey | None
    started_at: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class Facts:
    repositories: dict[RepoKey, tuple[str, uuid.UUID | None]]  # -> (name, team)
    changes: Sequence[ChangeFact] = ()
    deployments: Sequence[DeploymentFact] = ()  # production deployments in a final state
    incidents: Sequence[IncidentFact] = ()
    work_items_done: Sequence[tuple[RepoKey | None, dt.datetime]] = ()


@dataclass
class _Month:
    deployments: int = 0
    final_deployments: int = 0
    failed: int = 0
    deploy_days: set[dt.date] = field(default_factory=set)
    lead: list[int] = field(default_factory=list)
    coding: list[int] = field(default_factory=list)
    pickup: list[int] = field(default_factory=list)
    review: list[int] = field(default_factory=list)
    deploy: list[int] = field(default_factory=list)
    restore: list[int] = field(default_factory=list)
    throughput: int = 0
    wip: int = 0
    reviews: int = 0
    reviewers: set[str] = field(default_factory=set)
    done: int = 0


def median(values: list[int]) -> Fraction:
    """The median of whole numbers, exactly (the mean of the middle two for an even count)."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Fraction(ordered[middle])
    return Fraction(ordered[middle - 1] + ordered[middle], 2)


def rounded(value: Fraction, places: int) -> str:
    """``value`` rounded half up (away from zero) to ``places`` decimals, as a decimal string."""
    scale = 10**places
    scaled = value * scale
    whole = (2 * abs(scaled.numerator) + scaled.denominator) // (2 * scaled.denominator)
    whole = whole if scaled >= 0 else -whole
    sign, digits = ("-" if whole < 0 else ""), str(abs(whole)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def band(value: Fraction, bounds: Iterable[tuple[Fraction | int, int]], *, inclusive: bool = False) -> int:
    for bound, found in bounds:
        if value < bound or (inclusive and value == bound):
            return found
    return LOW


def seconds(start: dt.datetime, end: dt.datetime) -> int:
    """Whole seconds from ``start`` to ``end``, never negative (a clock skew at the source is not a negative time)."""
    return max(0, int((end - start).total_seconds()))


class _Calendar:
    def __init__(self, zone: str, today: dt.date) -> None:
        self.zone = zoneinfo.ZoneInfo(zone)
        self.today = today

    def day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.zone).date()

    def month(self, moment: dt.datetime) -> dt.date:
        return self.day(moment).replace(day=1)

    def month_end(self, month: dt.date) -> dt.datetime:
        return dt.datetime.combine(_next(month), dt.time(), self.zone)


class _Ledger:
    """Each scope's month records: a record lands in the overall scope, its repository's and its team's."""

    def __init__(self, facts: Facts, calendar: _Calendar) -> None:
        self.repositories = facts.repositories
        self.calendar = calendar
        self.months: dict[str, dict[dt.date, _Month]] = defaultdict(lambda: defaultdict(_Month))

    def scopes(self, repo: RepoKey | None) -> list[str]:
        if repo is None:
            return [""]
        name, team = self.repositories.get(repo, (repo.external_id, None))
        return ["", f"repo={name}"] + ([f"team={team}"] if team is not None else [])

    def of(self, repo: RepoKey | None, month: dt.date) -> list[_Month]:
        return [self.months[scope][month] for scope in self.scopes(repo)]

    def at(self, repo: RepoKey | None, moment: dt.datetime) -> list[_Month]:
        return self.of(repo, self.calendar.month(moment))


class _Shipped:
    """Each repository's successful production deployments in time order: which one shipped a merge, and which one
    an incident followed."""

    def __init__(self, deployments: Iterable[DeploymentFact]) -> None:
        self.deployments: dict[RepoKey, list[DeploymentFact]] = defaultdict(list)
        for deployment in deployments:
            if deployment.succeeded:
                self.deployments[deployment.repo].append(deployment)
        for found in self.deployments.values():
            found.sort(key=lambda deployment: deployment.at)
        self.times = {repo: [deployment.at for deployment in found] for repo, found in self.deployments.items()}

    def first_from(self, repo: RepoKey, moment: dt.datetime) -> DeploymentFact | None:
        """The first deployment at or after ``moment``: it ships everything merged before it."""
        times = self.times.get(repo, [])
        position = bisect.bisect_left(times, moment)
        return self.deployments[repo][position] if position < len(times) else None

    def last_before(self, repo: RepoKey, moment: dt.datetime) -> DeploymentFact | None:
        times = self.times.get(repo, [])
        position = bisect.bisect_right(times, moment) - 1
        return self.deployments[repo][position] if position >= 0 else None


def compute(facts: Facts, *, zone: str, today: dt.date) -> list[Point]:
    """Every monthly point of every scope, and the daily overall deployments and throughput."""
    calendar = _Calendar(zone, today)
    ledger = _Ledger(facts, calendar)
    daily: dict[str, dict[dt.date, int]] = {metric: defaultdict(int) for metric in DAY_METRICS}
    shipped = _Shipped(facts.deployments)

    failed = {deployment.key: deployment for deployment in facts.deployments if not deployment.succeeded}
    for deployment in facts.deployments:
        for month in ledger.at(deployment.repo, deployment.at):
            month.final_deployments += 1
            if deployment.succeeded:
                month.deployments += 1
                month.deploy_days.add(calendar.day(deployment.at))
        if deployment.succeeded:
            daily["deployments"][calendar.day(deployment.at)] += 1
    for incident in facts.incidents:
        if incident.resolved_at is not None:
            for month in ledger.at(incident.repo, incident.resolved_at):
                month.restore.append(seconds(incident.started_at, incident.resolved_at))
        cause = shipped.last_before(incident.repo, incident.started_at) if incident.repo else None
        if cause is not None:
            failed.setdefault(cause.key, cause)
    for deployment in failed.values():
        for month in ledger.at(deployment.repo, deployment.at):
            month.failed += 1
    for change in facts.changes:
        _change(change, ledger, shipped, daily)
    for repo, completed in facts.work_items_done:
        for month in ledger.at(repo, completed):
            month.done += 1

    points: list[Point] = []
    for scope, by_month in ledger.months.items():
        points.extend(_scope_points(scope, by_month, calendar))
    for metric, days in daily.items():
        if days:
            first = min(days)
            every = (first + dt.timedelta(days=offset) for offset in range((today - first).days + 1))
            points.extend(Point(metric, "day", day, days.get(day, 0)) for day in every)
    return points


def _change(change: ChangeFact, ledger: _Ledger, shipped: _Shipped, daily: dict[str, dict[dt.date, int]]) -> None:
    """A change's part: its reviews, its merge (throughput), the months it was open at the end of (work in
    progress), and, once a production deployment shipped it, its lead time and flow phases."""
    calendar = ledger.calendar
    reviews = [(reviewer, moment) for reviewer, moment in change.reviews if reviewer != change.author]
    for reviewer, moment in reviews:
        for record in ledger.at(change.repo, moment):
            record.reviews += 1
            record.reviewers.add(reviewer)
    ended = change.merged_at or change.closed_at
    month = calendar.month(change.created_at)
    last = calendar.month(ended) if ended else calendar.today.replace(day=1)
    while month <= last:
        if ended is None or ended >= calendar.month_end(month):
            for record in ledger.of(change.repo, month):
                record.wip += 1
        month = _next(month)
    if change.merged_at is None:
        return
    for record in ledger.at(change.repo, change.merged_at):
        record.throughput += 1
    daily["throughput"][calendar.day(change.merged_at)] += 1
    deployment = shipped.first_from(change.repo, change.merged_at)
    if deployment is None:
        return
    deployed = deployment.at
    started = change.first_commit_at or change.created_at
    first_review = min((moment for _, moment in reviews if moment <= change.merged_at), default=None)
    for record in ledger.at(change.repo, deployed):
        record.lead.append(seconds(started, deployed))
        record.deploy.append(seconds(change.merged_at, deployed))
        if change.first_commit_at is not None:
            record.coding.append(seconds(change.first_commit_at, change.created_at))
        if first_review is not None:
            record.pickup.append(seconds(change.created_at, first_review))
            record.review.append(seconds(first_review, change.merged_at))


def _next(month: dt.date) -> dt.date:
    return (month + dt.timedelta(days=32)).replace(day=1)


def _scope_points(scope: str, by_month: dict[dt.date, _Month], calendar: _Calendar) -> list[Point]:
    """A scope's monthly points, from its first month with anything to the current month."""
    points: list[Point] = []
    month = min(by_month)
    current = calendar.today.replace(day=1)
    while month <= current:
        record = by_month.get(month, _Month())
        values: dict[str, int | str] = {
            "deployments": record.deployments,
            "deployment_days": len(record.deploy_days),
            "deployment_frequency_band": _frequency_band(month, record, by_month, calendar),
            "throughput": record.throughput,
            "work_in_progress": record.wip,
            "reviews": record.reviews,
            "work_items_done": record.done,
        }
        if record.reviewers:
            values["review_load"] = rounded(Fraction(record.reviews, len(record.reviewers)), 2)
        if record.lead:
            lead = median(record.lead)
            values["lead_time_hours"] = rounded(lead / HOUR, 2)
            values["lead_time_band"] = band(lead, LEAD_TIME_BANDS)
        for metric, samples in (
            ("coding_time_hours", record.coding),
            ("pickup_time_hours", record.pickup),
            ("review_time_hours", record.review),
            ("deploy_time_hours", record.deploy),
        ):
            if samples:
                values[metric] = rounded(median(samples) / HOUR, 2)
        if record.final_deployments:
            rate = Fraction(record.failed, record.final_deployments)
            values["change_failure_rate"] = rounded(rate * 100, 4)
            values["change_failure_band"] = band(rate, FAILURE_BANDS, inclusive=True)
        if record.restore:
            restore = median(record.restore)
            values["time_to_restore_hours"] = rounded(restore / HOUR, 2)
            values["time_to_restore_band"] = band(restore, RESTORE_BANDS)
        points.extend(
            Point(metric, "month", month, value if isinstance(value, int) else Decimal(value), scope)
            for metric, value in values.items()
        )
        month = _next(month)
    return points


def _frequency_band(month: dt.date, record: _Month, by_month: dict[dt.date, _Month], calendar: _Calendar) -> int:
    """Fourkeys' rule on the weeks (Monday to Sunday) that start in the month and have started by today: on demand
    when the median week deploys on three days or more, weekly when most weeks deploy, monthly when the month does."""
    following = _next(month)
    days = record.deploy_days | by_month.get(following, _Month()).deploy_days
    monday = month + dt.timedelta(days=(7 - month.weekday()) % 7)
    weeks = []
    while monday < following and monday <= calendar.today:
        weeks.append(sum(1 for offset in range(7) if monday + dt.timedelta(days=offset) in days))
        monday += dt.timedelta(days=7)
    if weeks and median(weeks) >= DAILY_DEPLOYER_DAYS:
        return ELITE
    if weeks and median([1 if week else 0 for week in weeks]) >= 1:
        return HIGH
    return MEDIUM if record.deployments else LOW
