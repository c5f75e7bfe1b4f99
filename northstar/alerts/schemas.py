"""Requests and responses of the alerts API (``/api/v1/notifications/...``).

A rule's ``condition`` is one of six kinds, told apart by ``kind``; a value a threshold names is in the metric's
unit, as goals' targets are: minor units of the reporting currency for a money metric (30000 is 300.00 USD).
Slack secrets (a webhook URL, a bot token) go in and never come out.

Conditions are ``WireModel``s: a discriminated union cannot run ``RequestModel``'s NUL check before reading
``kind``, and no field of theirs can hold text (metrics match a pattern, the rest are choices, numbers and ids).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from northstar.core.http import CamelModel, Name, RequestModel, TimeZoneName, WireModel

# a metric as the metrics module names it (mrr, customer_churn_rate, sessions, ...)
Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", examples=["mrr", "customer_churn_rate"])]
Number = Annotated[float, Field(ge=-(10**15), le=10**15, allow_inf_nan=False)]
RuleKind = Literal["threshold", "change", "anomaly", "goal", "integration", "report"]
PersonalChannel = Literal["email", "in_app"]


def _each_once(channels: list[PersonalChannel]) -> list[PersonalChannel]:
    return list(dict.fromkeys(channels))


PersonalChannels = Annotated[list[PersonalChannel], Field(max_length=4), AfterValidator(_each_once)]
Movement = Literal["up", "down", "either"]
GoalStatus = Literal["at_risk", "missed"]
GOAL_STATUSES: tuple[GoalStatus, ...] = ("at_risk", "missed")


class ThresholdCondition(WireModel):
    """The metric's latest value is above (or below) ``value``."""

    kind: Literal["threshold"]
    metric: Metric
    direction: Literal["above", "below"]
    value: Number = Field(description="in the metric's unit: minor units of the reporting currency for money")


class ChangeCondition(WireModel):
    """The metric changed by at least ``percent`` % over the last ``windowDays`` days."""

    kind: Literal["change"]
    metric: Metric
    direction: Movement = "either"
    percent: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    window_days: int = Field(7, ge=1, le=366)


class AnomalyCondition(WireModel):
    """The anomaly detector (``GET /dashboard/anomalies``) flags a day of the metric in the last ``lookbackDays``."""

    kind: Literal["anomaly"]
    metric: Metric
    direction: Movement = "either"
    lookback_days: int = Field(3, ge=1, le=31, description="today and the days before it that are looked at")


class GoalCondition(WireModel):
    """A goal (or any goal) is at risk or missed."""

    kind: Literal["goal"]
    goal_id: uuid.UUID | None = Field(None, description="null: every goal")
    statuses: list[GoalStatus] = Field(default_factory=lambda: list(GOAL_STATUSES), min_length=1, max_length=2)


class IntegrationCondition(WireModel):
    """An integration (or any) is in error, or has not synced successfully for ``hours``."""

    kind: Literal["integration"]
    integration_id: uuid.UUID | None = Field(None, description="null: every integration")
    problem: Literal["error", "lag"] = "error"
    hours: int | None = Field(None, ge=1, le=24 * 30, description="with problem lag: how long without a sync")

    @model_validator(mode="after")
    def _hours_for_lag(self) -> IntegrationCondition:
        if (self.problem == "lag") != (self.hours is not None):
            raise ValueError("hours goes with problem lag, and only with it")
        return self


class ReportCondition(WireModel):
    """A report is ready (the reports module says so)."""

    kind: Literal["report"]


Condition = Annotated[
    ThresholdCondition | ChangeCondition | AnomalyCondition | GoalCondition | IntegrationCondition | ReportCondition,
    Field(discriminator="kind"),
]
Cooldown = Annotated[int, Field(ge=0, le=366 * 24 * 60, description="minutes before the same alert is sent again")]


class RuleCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    condition: Condition
    recipients: list[uuid.UUID] | None = Field(
        None, max_length=100, description="members notified on their own channels; default: you"
    )
    channels: list[uuid.UUID] = Field(default_factory=list, max_length=20, description="shared Slack channels")
    cooldown_minutes: Cooldown = 24 * 60
    enabled: bool = True


class RuleUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=200)
    condition: Condition | None = None
    recipients: list[uuid.UUID] | None = Field(None, max_length=100)
    channels: list[uuid.UUID] | None = Field(None, max_length=20)
    cooldown_minutes: Cooldown | None = None
    enabled: bool | None = None


class RuleOut(CamelModel):
    id: uuid.UUID
    name: str
    condition: Condition
    recipients: list[uuid.UUID]
    channels: list[uuid.UUID]
    cooldown_minutes: int
    enabled: bool
    last_evaluated_at: dt.datetime | None
    last_error: str | None = Field(description="why the rule could not be evaluated last time")
    created_by: uuid.UUID | None
    created_at: dt.datetime
    updated_at: dt.datetime


SlackTarget = Annotated[str, Field(pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$", examples=["C0123456789", "#alerts"])]
Secret = Annotated[str, Field(min_length=1, max_length=2000)]


class ChannelCreate(RequestModel):
    name: Name = Field(min_length=1, max_length=200)
    kind: Literal["slack_webhook", "slack_bot"]
    webhook_url: Secret | None = Field(None, description="slack_webhook: the incoming webhook's URL")
    token: Secret | None = Field(None, description="slack_bot: a bot token (xoxb-…) with chat:write")
    channel: SlackTarget | None = Field(None, description="slack_bot: the channel it posts to")

    @model_validator(mode="after")
    def _fields_of_the_kind(self) -> ChannelCreate:
        given = (self.webhook_url is not None, self.token is not None, self.channel is not None)
        if given != ((True, False, False) if self.kind == "slack_webhook" else (False, True, True)):
            raise ValueError("slack_webhook takes webhookUrl; slack_bot takes token and channel")
        return self


class ChannelUpdate(RequestModel):
    name: Name | None = Field(None, min_length=1, max_length=200)
    webhook_url: Secret | None = None
    token: Secret | None = None
    channel: SlackTarget | None = None
    enabled: bool | None = Field(None, description="true turns a disabled channel back on")


class ChannelOut(CamelModel):
    id: uuid.UUID
    name: str
    kind: str
    channel: str | None = Field(description="the Slack channel a bot posts to")
    status: Literal["active", "disabled"]
    failing_since: dt.datetime | None
    last_error: str | None
    disabled_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _clock_time(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("a time of day without an offset (quiet hours are in your time zone)")
    return value


ClockTime = Annotated[dt.time, AfterValidator(_clock_time)]


class QuietHours(RequestModel):
    """From ``start`` to ``end`` in the member's time zone (``22:00`` to ``07:00`` spans midnight)."""

    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class EmailState(CamelModel):
    status: Literal["active", "disabled"]
    failing_since: dt.datetime | None
    last_error: str | None
    disabled_at: dt.datetime | None


class PreferencesOut(CamelModel):
    time_zone: str | None = Field(description="null: the organization's")
    effective_time_zone: str
    quiet_hours: QuietHours | None
    digest: bool = Field(description="e-mails are collected and sent once a day, at digestHour")
    digest_hour: int
    channels: dict[RuleKind, list[PersonalChannel]]
    email: EmailState


class PreferencesUpdate(RequestModel):
    time_zone: TimeZoneName | None = Field(None, description="null: the organization's")
    quiet_hours: QuietHours | None = Field(None, description="null: none")
    digest: bool | None = None
    digest_hour: int | None = Field(None, ge=0, le=23)
    channels: dict[RuleKind, PersonalChannels] | None = Field(
        None, description="per rule kind, the channels you get it on (kinds left out keep theirs)"
    )
    email_enabled: bool | None = Field(None, description="true turns e-mail back on after it was turned off")


class InboxMessageOut(CamelModel):
    id: uuid.UUID
    kind: str = Field(description="the rule kind, or notice")
    title: str
    body: str
    url: str | None
    read_at: dt.datetime | None
    created_at: dt.datetime


class UnreadOut(CamelModel):
    unread: int


class MarkedOut(CamelModel):
    marked: int


class DeliveryOut(CamelModel):
    id: uuid.UUID
    rule_id: uuid.UUID | None
    rule_name: str | None
    title: str = Field(description="the alert's title, or Daily digest")
    channel: Literal["email", "in_app", "slack"]
    channel_id: uuid.UUID | None = Field(description="the shared channel, for slack")
    user_id: uuid.UUID | None = Field(description="the member, for email and in_app")
    status: str = Field(
        description="queued, held (until notBefore: quiet hours, the digest), sending, retrying, sent, failed, "
        "skipped (channel off), digested (went out in digestId)"
    )
    attempts: int
    last_error: str | None
    not_before: dt.datetime | None
    digest_id: uuid.UUID | None
    sent_at: dt.datetime | None
    created_at: dt.datetime


class UnsubscribeOut(CamelModel):
    email: str
    kind: Literal["all", "threshold", "change", "anomaly", "goal", "integration", "report"]
    unsubscribed: bool = Field(description="whether e-mail of this kind is off now")
