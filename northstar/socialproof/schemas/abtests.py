"""A/B tests of notifications: what merchants send and get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic.alias_generators import to_camel

from northstar.core.http import CamelModel, Name, RequestModel
from northstar.socialproof.schemas.sites import DisplayRules, _plain, _valid_message
from northstar.socialproof.templating import MAX_MESSAGE

MIN_VARIANTS, MAX_VARIANTS = 2, 5
TOTAL_WEIGHT = 100
Status = Literal["draft", "running", "stopped", "completed"]
Metric = Literal["ctr", "conversion_rate"]


def _display_overrides(value: dict[str, Any]) -> dict[str, Any]:
    """Only the display rules a variant changes, checked as the notification's rules are (names and bounds)."""
    checked = DisplayRules.model_validate(value)
    given = {to_camel(key) if "_" in key else key for key in value}
    return {key: item for key, item in checked.model_dump(by_alias=True).items() if key in given}


VariantName = Annotated[Name, Field(min_length=1, max_length=100), AfterValidator(_plain)]


class VariantIn(RequestModel):
    """One arm: what it changes from the notification (nothing, for a plain control) and its share of traffic."""

    name: VariantName
    is_control: bool = False
    weight: int = Field(ge=1, le=TOTAL_WEIGHT, description="percent of the test's traffic; weights sum to 100")
    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE), AfterValidator(_valid_message)] | None = Field(
        None, description="the popup's text with template variables; none: the template's or the default"
    )
    template_id: uuid.UUID | None = Field(None, description="a template of the same site (its message and CSS)")
    display: Annotated[dict[str, Any], AfterValidator(_display_overrides)] = Field(
        default_factory=dict, description="display rules that differ from the notification's (e.g. durationSeconds)"
    )


def _check_variants(variants: list[VariantIn]) -> list[VariantIn]:
    if sum(1 for variant in variants if variant.is_control) != 1:
        raise ValueError("exactly one variant is the control (isControl)")
    if sum(variant.weight for variant in variants) != TOTAL_WEIGHT:
        raise ValueError(f"the variants' weights must sum to {TOTAL_WEIGHT}")
    if len({variant.name.casefold() for variant in variants}) != len(variants):
        raise ValueError("variant names must differ")
    return variants


Variants = Annotated[
    list[VariantIn], Field(min_length=MIN_VARIANTS, max_length=MAX_VARIANTS), AfterValidator(_check_variants)
]
TestName = Annotated[Name, Field(min_length=1, max_length=200), AfterValidator(_plain)]
MinSample = Annotated[int, Field(ge=10, le=10_000_000, description="visitors per variant before a winner is called")]


class AbTestCreate(RequestModel):
    notification_id: uuid.UUID
    name: TestName
    primary_metric: Metric = Field(
        "ctr", description="ctr (clicks / exposed) or conversion_rate (conversions / exposed), both per visitor"
    )
    min_sample: MinSample = 1000
    auto_winner: bool = Field(False, description="stop and choose the winner once significant after minSample")
    variants: Variants


class AbTestUpdate(RequestModel):
    """Name, sample and auto-winner change until the test completes; the metric and variants only in draft."""

    name: TestName | None = None
    primary_metric: Metric | None = None
    min_sample: MinSample | None = None
    auto_winner: bool | None = None
    variants: Variants | None = None

    @model_validator(mode="after")
    def _something(self) -> AbTestUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        return self


class AbTestComplete(RequestModel):
    winner_variant_id: uuid.UUID = Field(description="the variant the notification shows from now on")


class VariantOut(CamelModel):
    id: uuid.UUID
    name: str
    is_control: bool
    weight: int
    message: str | None
    template_id: uuid.UUID | None
    display: dict[str, Any]


class AbTestOut(CamelModel):
    id: uuid.UUID
    site_id: uuid.UUID
    notification_id: uuid.UUID
    name: str
    status: Status
    primary_metric: Metric
    min_sample: int
    auto_winner: bool
    winner_variant_id: uuid.UUID | None
    winner_selected_at: datetime | None
    srm_flagged: bool
    started_at: datetime | None
    stopped_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    variants: list[VariantOut]


class Rate(CamelModel):
    rate: float | None = Field(description="successes / exposed visitors; null without exposures")
    low: float | None = Field(description="95 % Wilson score interval")
    high: float | None


class VersusControl(CamelModel):
    z: float | None = Field(description="pooled two-proportion z statistic (variant minus control)")
    p_value: float | None = Field(description="two-sided")
    adjusted_p_value: float | None = Field(description="Holm-adjusted across the variants")
    significant: bool = Field(description="adjusted p < 0.05")
    chance_to_beat_control: float = Field(description="P(variant rate > control rate), Beta(1,1) priors, exact")
    lift: float | None = Field(description="variant rate / control rate - 1")


class VariantResult(CamelModel):
    variant_id: uuid.UUID
    name: str
    is_control: bool
    weight: int
    exposures: int = Field(description="visitors who saw the variant")
    clicks: int = Field(description="of them, visitors who clicked")
    conversions: int = Field(description="of them, visitors who converted after a click")
    ctr: Rate
    conversion_rate: Rate
    versus_control: VersusControl | None = Field(description="on the primary metric; null for the control")


class SampleRatio(CamelModel):
    chi2: float | None
    p_value: float | None
    flagged: bool = Field(description="p < 0.001: exposures do not match the split; auto-winner is blocked")


class AbTestResults(CamelModel):
    test_id: uuid.UUID
    status: Status
    primary_metric: Metric
    min_sample: int
    min_sample_reached: bool
    winner_variant_id: uuid.UUID | None
    sample_ratio: SampleRatio
    variants: list[VariantResult]
    method: str
