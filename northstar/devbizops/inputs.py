"""What engineering sources hand DevBizOps, whatever the provider: the unified engineering model's records.

A sync page of GitHub, GitLab, Jira or Linear normalises into an ``EngineeringBatch``: repositories, changes (pull or
merge requests, with their reviews), deployments, incidents, work items and the people who appear in them.
``service.store_batch`` keeps each keyed by integration and the source's id, so syncing the same object again
updates it. Times are aware datetimes; a repository is named by its source id (``repository``) wherever a record
belongs to one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

ChangeState = Literal["open", "closed", "merged"]
DeploymentStatus = Literal["pending", "success", "failure"]
WorkStatus = Literal["todo", "in_progress", "done", "canceled"]


@dataclass(frozen=True)
class Repository:
    external_id: str
    name: str  # "owner/name" (GitHub), the project's path (GitLab)
    url: str | None = None
    default_branch: str | None = None
    archived: bool = False
    created_at: dt.datetime | None = None


@dataclass(frozen=True)
class Review:
    reviewer: str
    state: str  # approved, changes_requested, commented
    submitted_at: dt.datetime


@dataclass(frozen=True)
class Change:
    """A pull or merge request; ``first_commit_at`` is its earliest commit's authored time."""

    external_id: str
    repository: str
    number: int
    title: str
    state: ChangeState
    created_at: dt.datetime
    author: str | None = None
    body: str | None = None
    url: str | None = None
    first_commit_at: dt.datetime | None = None
    merged_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    merge_sha: str | None = None
    additions: int | None = None
    deletions: int | None = None
    updated_at: dt.datetime | None = None
    reviews: tuple[Review, ...] = ()


@dataclass(frozen=True)
class Deployment:
    """A deployment to an environment; ``finished_at`` is when it reached its final status."""

    external_id: str
    repository: str
    environment: str
    production: bool
    status: DeploymentStatus
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    sha: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Incident:
    external_id: str
    title: str
    started_at: dt.datetime
    repository: str | None = None
    resolved_at: dt.datetime | None = None
    url: str | None = None


@dataclass(frozen=True)
class WorkItem:
    external_id: str
    key: str  # what people write to mention it: "PROJ-12", "ENG-7", "acme/api#12"
    title: str
    status: WorkStatus
    created_at: dt.datetime
    body: str | None = None
    url: str | None = None
    repository: str | None = None
    assignee: str | None = None
    labels: tuple[str, ...] = ()
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class Person:
    external_id: str
    login: str
    name: str | None = None


@dataclass
class EngineeringBatch:
    repositories: list[Repository] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    work_items: list[WorkItem] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.repositories, self.changes, self.deployments, self.incidents, self.work_items, self.people))


@dataclass(frozen=True)
class Ticket:
    """A ticket an approved proposal files in a tracker (Jira, Linear), or adds to an existing one as a comment."""

    title: str
    description: str  # plain text, paragraphs separated by blank lines
    labels: tuple[str, ...] = ()
    priority: str = "medium"  # high, medium, low
