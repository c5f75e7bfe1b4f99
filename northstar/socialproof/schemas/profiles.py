"""Visitor profiles, custom field definitions and the audience rules of a notification's targeting."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from northstar.core.http import CamelModel, Name, RequestModel
from northstar.socialproof.customfields import KEY_PATTERN, MAX_TEXT, FieldDefinition, canonical

FieldType = Literal["text", "number", "boolean", "date", "enum"]
FieldKey = Annotated[str, Field(pattern=KEY_PATTERN, description="lower case, digits and _; used as {{custom.key}}")]
Option = Annotated[str, Field(min_length=1, max_length=100)]
CustomValue = Annotated[str, Field(max_length=MAX_TEXT)] | bool | int | float
CustomValues = Annotated[
    dict[Annotated[str, Field(max_length=40)], CustomValue | None],
    Field(max_length=50, description="custom field values by key, checked against the organization's definitions"),
]
Score = Annotated[float, Field(ge=0, le=100)]


def _check_default(field_type: str, options: list[str], default: Any) -> Any:
    """The default in its stored form, so a field never hands events a value it would refuse."""
    if default is None:
        return None
    return canonical(FieldDefinition(key="default", field_type=field_type, options=tuple(options)), default)


class CustomFieldCreate(RequestModel):
    name: Annotated[Name, Field(min_length=1, max_length=100)]
    key: FieldKey
    type: FieldType
    options: list[Option] = Field(default_factory=list, max_length=50, description="enum: the allowed values")
    required: bool = Field(False, description="events that carry custom values must carry this one (or a default)")
    default: CustomValue | None = Field(None, description="given to events that carry custom values but not this one")

    @model_validator(mode="after")
    def _consistent(self) -> CustomFieldCreate:
        if (self.type == "enum") != bool(self.options):
            raise ValueError("options are given exactly for enum fields")
        if len(set(self.options)) != len(self.options):
            raise ValueError("options must be different from each other")
        self.default = _check_default(self.type, self.options, self.default)
        return self


class CustomFieldUpdate(RequestModel):
    """The key and type stay as created: stored values and templates refer to them."""

    name: Annotated[Name, Field(min_length=1, max_length=100)] | None = None
    options: list[Option] | None = Field(None, min_length=1, max_length=50)
    required: bool | None = None
    default: CustomValue | None = None


class CustomFieldOut(CamelModel):
    id: uuid.UUID
    name: str
    key: str
    type: FieldType
    options: list[str]
    required: bool
    default: Any
    created_at: datetime
    updated_at: datetime


class VisitorProfileOut(CamelModel):
    id: uuid.UUID
    visitor_id: str = Field(description="the visitor's keyed hash (see docs/socialproof.md, Visitors)")
    first_seen_at: datetime
    last_seen_at: datetime
    session_count: int
    returning: bool = Field(description="more than one session")
    page_views: int
    clicks: int
    conversions: int = Field(description="purchases and signups")
    behavior_score: float = Field(description="0-100; formula in docs/socialproof.md")
    country: str | None
    device: str | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime


CustomOperator = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists"]


class CustomRule(RequestModel):
    """One condition on a profile's custom value: ``{"key": "plan", "operator": "in", "value": ["pro"]}``."""

    key: FieldKey
    operator: CustomOperator = "eq"
    value: CustomValue | list[CustomValue] | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> CustomRule:
        if self.operator == "exists":
            if self.value is not None:
                raise ValueError("exists takes no value")
        elif self.operator == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("in takes a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.operator} takes one value")
        elif self.operator in ("gt", "gte", "lt", "lte") and isinstance(self.value, bool):
            raise ValueError(f"{self.operator} compares numbers or dates")
        return self


class Audience(RequestModel):
    """Who, by their visitor profile, sees the notification (checked by ``POST /api/v1/widget/audience``)."""

    score_min: Score | None = Field(None, description="behaviour score at least")
    score_max: Score | None = Field(None, description="behaviour score at most")
    visitors: Literal["all", "new", "returning"] = Field(
        "all", description="by the profile's sessions: returning means more than one (across devices when identified)"
    )
    custom: list[CustomRule] = Field(default_factory=list, max_length=10, description="all must hold")

    @model_validator(mode="after")
    def _range(self) -> Audience:
        if self.score_min is not None and self.score_max is not None and self.score_min > self.score_max:
            raise ValueError("scoreMin must not be above scoreMax")
        return self


ProfileSort = Literal["-lastSeenAt", "lastSeenAt", "-behaviorScore", "behaviorScore"]
