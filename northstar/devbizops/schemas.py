"""Requests and responses of the DevBizOps API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import Field

from northstar.core.http import CamelModel, RequestModel

ScopeKind = Literal["overall", "team", "repository"]
Band = Literal["elite", "high", "medium", "low"]


class RepositoryOut(CamelModel):
    id: uuid.UUID
    integration_id: uuid.UUID
    name: str
    url: str | None
    default_branch: str | None
    archived: bool
    team_id: uuid.UUID | None


class RepositoryUpdate(RequestModel):
    team_id: uuid.UUID | None = Field(description="one of the organization's teams, or null for none")


class DoraMetric(CamelModel):
    """A DORA metric's latest month with a value, its band there, and its value per month of the report."""

    value: Any = Field(description="the latest month's value (hours, a percentage, or deployments)")
    band: Band | None
    month: dt.date | None
    trend: list[Any]


class ScopeOut(CamelModel):
    kind: ScopeKind
    name: str
    dims: str = Field(description="the KPI store's dims of this scope's series: '', 'repo=<name>' or 'team=<id>'")
    months: list[dt.date]
    deployment_frequency: DoraMetric
    lead_time_hours: DoraMetric
    change_failure_rate: DoraMetric
    time_to_restore_hours: DoraMetric
    flow: dict[str, list[Any]] = Field(
        description="per month: deployments, throughput, workInProgress, reviews, reviewLoad, workItemsDone, and the "
        "cycle time's phases (codingTimeHours, pickupTimeHours, reviewTimeHours, deployTimeHours)"
    )


class RecomputeOut(CamelModel):
    points: int
