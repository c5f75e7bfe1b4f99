"""A generated engineering history: repositories in teams, months of pull requests with reviews, production
deployments (one in eight failing), incidents and finished work items, the same for the same seed. The DevBizOps
tests check the metrics on it against their reference, and the benchmark recomputes it."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from northstar.devbizops.inputs import Change, Deployment, EngineeringBatch, Incident, Repository, Review, WorkItem


@dataclass
class History:
    batch: EngineeringBatch
    teams: dict[str, uuid.UUID | None] = field(default_factory=dict)  # repository source id -> team


def generate(
    *, repositories: int, months: int, end: dt.date, teams: list[uuid.UUID], seed: int = 7, per_month: int = 6
) -> History:
    """``per_month`` pull requests a repository a month on average, ending at ``end``."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible history, not secrets
    batch = EngineeringBatch()
    history = History(batch)
    start = dt.datetime.combine(end, dt.time(), dt.UTC) - dt.timedelta(days=30 * months)
    span = (dt.datetime.combine(end, dt.time(), dt.UTC) - start).total_seconds()
    for number in range(repositories):
        repo_id = str(10_000 + number)
        batch.repositories.append(Repository(external_id=repo_id, name=f"acme/service-{number:03d}"))
        history.teams[repo_id] = teams[number % len(teams)] if teams and number % 7 else None
        # deployments: a few a week, one in eight failing
        moment = start + dt.timedelta(hours=rng.randint(1, 48))
        deploys: list[dt.datetime] = []
        while moment.timestamp() < start.timestamp() + span:
            failed = rng.random() < 0.125
            finished = moment + dt.timedelta(minutes=rng.randint(2, 30))
            batch.deployments.append(
                Deployment(
                    external_id=f"{repo_id}-d{len(deploys)}",
                    repository=repo_id,
                    environment="production",
                    production=True,
                    status="failure" if failed else "success",
                    created_at=moment,
                    finished_at=finished if rng.random() < 0.95 else None,
                )
            )
            deploys.append(moment)
            moment += dt.timedelta(hours=rng.randint(6, 96))
        for index in range(rng.randint(per_month * months // 2, per_month * months * 3 // 2)):
            created = start + dt.timedelta(seconds=rng.uniform(0, span))
            first_commit = created - dt.timedelta(minutes=rng.randint(0, 3000)) if rng.random() < 0.9 else None
            reviews = tuple(
                Review(
                    reviewer=rng.choice(["ana", "bo", "cy", "dee", "eli", "author-0"]),
                    state="approved",
                    submitted_at=created + dt.timedelta(minutes=rng.randint(5, 4000)),
                )
                for _ in range(rng.randint(0, 3))
            )
            fate = rng.random()
            merged = created + dt.timedelta(minutes=rng.randint(30, 9000)) if fate < 0.8 else None
            closed = merged or (created + dt.timedelta(days=rng.randint(1, 20)) if fate < 0.9 else None)
            batch.changes.append(
                Change(
                    external_id=f"{repo_id}-p{index}",
                    repository=repo_id,
                    number=index + 1,
                    title=f"Change {index}",
                    state="merged" if merged else "closed" if closed else "open",
                    created_at=created,
                    author=f"author-{index % 3}",
                    first_commit_at=first_commit,
                    merged_at=merged,
                    closed_at=closed,
                    reviews=reviews,
                )
            )
        for index in range(rng.randint(0, months // 2)):
            started = start + dt.timedelta(seconds=rng.uniform(0, span))
            resolved = started + dt.timedelta(minutes=rng.randint(5, 3000)) if rng.random() < 0.9 else None
            batch.incidents.append(
                Incident(
                    external_id=f"{repo_id}-i{index}",
                    repository=repo_id if rng.random() < 0.9 else None,
                    title="Outage",
                    started_at=started,
                    resolved_at=resolved,
                )
            )
        for index in range(rng.randint(0, per_month * months // 2)):
            created = start + dt.timedelta(seconds=rng.uniform(0, span))
            batch.work_items.append(
                WorkItem(
                    external_id=f"{repo_id}-w{index}",
                    key=f"acme/service-{number:03d}#{1000 + index}",
                    title="Work",
                    status="done",
                    created_at=created,
                    repository=repo_id,
                    completed_at=created + dt.timedelta(days=rng.randint(0, 30)),
                )
            )
    return history
