"""Column types of a generation schema: one request model per ``type``, each checking its own fields.

Errors carry the exact JSON path of the offending field (``columns.3.max``), including for checks
that span fields, so a client can point at the input that needs fixing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from northstar.core.http import RequestModel, refuse_nul
from northstar.datasets.generation.patterns import compile_pattern

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
HOSTNAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
MAX_DECIMAL_PRECISION = 18  # unscaled values are generated as int64

Loc = tuple[str | int, ...]
ColumnName = Annotated[str, StringConstraints(pattern=IDENTIFIER)]


def field_errors(title: str, errors: Iterable[tuple[Loc, str, Any]]) -> ValidationError:
    """A ValidationError with a ``value_error`` per (path, message, input): cross-field checks point at one field."""
    details: list[InitErrorDetails] = [
        {"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(message)}}
        for loc, message, value in errors
    ]
    return ValidationError.from_exception_data(title, details)


def _untagged(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Drop the union tag pydantic inserts into error paths, so ``columns.3.int.min`` reads ``columns.3.min``."""
    try:
        return handler(value)
    except ValidationError as error:
        tag = value.get("type") if isinstance(value, dict) else None
        lines: list[InitErrorDetails] = []
        for line in error.errors():
            loc = line["loc"][1:] if line["loc"] and line["loc"][0] == tag else line["loc"]
            detail: InitErrorDetails = {"type": line["type"], "loc": loc, "input": line["input"]}
            if "ctx" in line:
                detail["ctx"] = line["ctx"]
            lines.append(detail)
        raise ValidationError.from_exception_data(error.title, lines) from None


def _utc(value: datetime) -> datetime:
    """Naive datetimes in a spec mean UTC; generated timestamps are always UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
RESOLUTION_MICROSECONDS = {"s": 1_000_000, "ms": 1_000, "us": 1}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_microseconds(value: datetime) -> int:
    """Exact microseconds since 1970 (float timestamps lose microseconds far from the epoch)."""
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class SpecModel(RequestModel):
    """A RequestModel whose NUL check runs after parsing, field by field.

    Pydantic forbids before-validators on a tagged union's tag, and checking each model's own fields
    reports a NUL at the exact path of the field that holds it.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


# --- distributions ------------------------------------------------------------------------------


class Uniform(SpecModel):
    """Every value in [min, max] equally likely."""

    type: Literal["uniform"]


class Normal(SpecModel):
    """Gaussian around ``mean``; values outside [min, max] are clipped to the bound."""

    type: Literal["normal"]
    mean: float
    stddev: float = Field(gt=0)


class LogNormal(SpecModel):
    """exp(Normal(mean, sigma)): long right tail, as prices and durations have; clipped to [min, max]."""

    type: Literal["lognormal"]
    mean: float = 0.0
    sigma: float = Field(1.0, gt=0, le=20)


class Zipf(SpecModel):
    """Rank k has weight 1/k^a: a few values very common, a long tail rare (popular items, active users)."""

    type: Literal["zipf"]
    a: float = Field(gt=0, le=10)


class Sequential(SpecModel):
    """start, start+step, ...: row n gets ``start + step * n``; always unique."""

    type: Literal["sequence"]
    start: int = Field(1, ge=INT64_MIN, le=INT64_MAX)
    step: int = Field(1, ge=-(2**32), le=2**32)

    @field_validator("step")
    @classmethod
    def _nonzero(cls, step: int) -> int:
        if step == 0:
            raise ValueError("step must not be 0")
        return step


class TemporalNormal(SpecModel):
    """Dates or times clustered around ``mean`` with a spread of ``stddevDays``; clipped to [min, max]."""

    type: Literal["normal"]
    mean: UtcDatetime
    stddev_days: float = Field(gt=0, le=36_500)


UNIFORM = Uniform(type="uniform")
IntDistribution = Annotated[
    Uniform | Normal | LogNormal | Zipf | Sequential, Field(discriminator="type"), WrapValidator(_untagged)
]
RealDistribution = Annotated[Uniform | Normal | LogNormal, Field(discriminator="type"), WrapValidator(_untagged)]
ChoiceDistribution = Annotated[Uniform | Zipf, Field(discriminator="type"), WrapValidator(_untagged)]
TemporalDistribution = Annotated[Uniform | TemporalNormal, Field(discriminator="type"), WrapValidator(_untagged)]


# --- columns ------------------------------------------------------------------------------------


class BaseColumn(SpecModel):
    name: ColumnName
    type: str  # each column type narrows this to its Literal tag; declared here so it is listed second
    null_ratio: float = Field(0.0, ge=0, le=1, description="share of rows that are null")

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        """Cross-field rules of this type; append (path, message, input) for each violation."""

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        errors: list[tuple[Loc, str, Any]] = []
        self._check(errors)
        if errors:
            raise field_errors(type(self).__name__, errors)
        return self


def _check_bounds(low: Any, high: Any, errors: list[tuple[Loc, str, Any]]) -> None:
    """min <= max, with defaults in place of bounds not given."""
    if low > high:
        errors.append((("max",), f"max must be at least min ({low})", high))


class IntColumn(BaseColumn):
    type: Literal["int"]
    min: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX, description="default 0 for uniform and zipf")
    max: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX, description="default 2^31-1 for uniform and zipf")
    distribution: IntDistribution = UNIFORM
    unique: bool = False

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        if isinstance(self.distribution, Sequential):
            for bound in ("min", "max"):
                if getattr(self, bound) is not None:
                    errors.append(((bound,), "a sequence has start and step, not min/max", getattr(self, bound)))
        else:
            _check_bounds(*self.bounds(), errors)
            if self.unique and not isinstance(self.distribution, Uniform):
                errors.append((("unique",), "unique integers need the uniform or sequence distribution", True))

    def bounds(self) -> tuple[int, int]:
        """The inclusive range values are drawn from (or clipped to)."""
        bounded = isinstance(self.distribution, Uniform | Zipf)
        low = self.min if self.min is not None else (0 if bounded else INT64_MIN)
        high = self.max if self.max is not None else (min(low + 2**31 - 1, INT64_MAX) if bounded else INT64_MAX)
        return low, high


class FloatColumn(BaseColumn):
    type: Literal["float"]
    min: float | None = Field(None, description="default 0 for uniform")
    max: float | None = Field(None, description="default 1 for uniform")
    distribution: RealDistribution = UNIFORM
    decimals: int | None = Field(None, ge=0, le=15, description="round to this many decimal places")

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        _check_bounds(*self.bounds(), errors)

    def bounds(self) -> tuple[float, float]:
        """The range values are drawn from (uniform: default [0, 1)) or clipped to (others: default unbounded)."""
        uniform = isinstance(self.distribution, Uniform)
        low = self.min if self.min is not None else (0.0 if uniform else -math.inf)
        high = self.max if self.max is not None else (1.0 if uniform else math.inf)
        return low, high


class DecimalColumn(BaseColumn):
    type: Literal["decimal"]
    precision: int = Field(12, ge=1, le=MAX_DECIMAL_PRECISION)
    scale: int = Field(2, ge=0, le=MAX_DECIMAL_PRECISION)
    min: Decimal | None = Field(None, allow_inf_nan=False, description="default 0")
    max: Decimal | None = Field(None, allow_inf_nan=False, description="default the largest value that fits")
    distribution: RealDistribution = UNIFORM

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        if self.scale > self.precision:
            errors.append((("scale",), f"scale must be at most precision ({self.precision})", self.scale))
            return
        limit = Decimal(10) ** (self.precision - self.scale)
        for bound in ("min", "max"):
            value: Decimal | None = getattr(self, bound)
            if value is None:
                continue
            if abs(value) >= limit:
                errors.append(((bound,), f"does not fit decimal({self.precision}, {self.scale})", value))
            elif value != value.quantize(Decimal(1).scaleb(-self.scale)):
                errors.append(((bound,), f"has more than {self.scale} decimal places", value))
        if not errors:
            low, high = self.unscaled_bounds()
            _check_bounds(Decimal(low).scaleb(-self.scale), Decimal(high).scaleb(-self.scale), errors)

    def unscaled_bounds(self) -> tuple[int, int]:
        """[min, max] as integers in units of 10^-scale (defaults: 0 and the largest value that fits)."""
        low = int(self.min.scaleb(self.scale)) if self.min is not None else 0
        high = int(self.max.scaleb(self.scale)) if self.max is not None else 10**self.precision - 1
        return low, high


class AmountColumn(DecimalColumn):
    """A money amount: decimal(12, 2), log-normally spread like real prices and order totals."""

    type: Literal["amount"]  # type: ignore[assignment]
    min: Decimal | None = Field(Decimal("0.50"), allow_inf_nan=False)
    max: Decimal | None = Field(Decimal("100000"), allow_inf_nan=False)
    distribution: RealDistribution = LogNormal(type="lognormal", mean=3.5, sigma=1.0)


class BoolColumn(BaseColumn):
    type: Literal["bool"]
    true_ratio: float = Field(0.5, ge=0, le=1)


class UuidColumn(BaseColumn):
    """Random version-4 UUIDs drawn from the seed: reproducible, and unique in practice (122 random bits)."""

    type: Literal["uuid"]


class DateColumn(BaseColumn):
    type: Literal["date"]
    min: date = date(2020, 1, 1)
    max: date = date(2025, 12, 31)
    distribution: TemporalDistribution = UNIFORM

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        _check_bounds(self.min, self.max, errors)


class DatetimeColumn(BaseColumn):
    type: Literal["datetime"]
    min: UtcDatetime = datetime(2020, 1, 1, tzinfo=UTC)
    max: UtcDatetime = datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)
    resolution: Literal["s", "ms", "us"] = "s"
    distribution: TemporalDistribution = UNIFORM

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        _check_bounds(self.min, self.max, errors)
        low, high, _ = self.ticks()
        if self.min <= self.max and low > high:
            errors.append((("max",), f"no value at {self.resolution} resolution lies between min and max", self.max))

    def ticks(self) -> tuple[int, int, int]:
        """[min, max] in whole ticks of the resolution, and the tick's length in microseconds."""
        step = RESOLUTION_MICROSECONDS[self.resolution]
        return -(-epoch_microseconds(self.min) // step), epoch_microseconds(self.max) // step, step


class EnumColumn(BaseColumn):
    """One of ``values``; weighted when ``weights`` is given, else uniform or zipf by position."""

    type: Literal["enum"]
    values: list[Annotated[str, StringConstraints(max_length=1000)]] = Field(min_length=1, max_length=10_000)
    weights: list[float] | None = None
    distribution: ChoiceDistribution = UNIFORM

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        seen: set[str] = set()
        for index, value in enumerate(self.values):
            if value in seen:
                errors.append((("values", index), "duplicate value", value))
            seen.add(value)
        if self.weights is None:
            return
        if len(self.weights) != len(self.values):
            errors.append((("weights",), f"needs one weight per value ({len(self.values)})", self.weights))
        errors.extend(
            (("weights", index), "weights must be positive finite numbers", weight)
            for index, weight in enumerate(self.weights)
            if not 0 < weight < float("inf")
        )
        if not isinstance(self.distribution, Uniform):
            errors.append((("distribution",), "give either weights or a distribution", self.distribution.type))


class PatternColumn(BaseColumn):
    r"""Text from a template such as ``ORD-[A-Z]{3}-\d{6}`` or ``INV-{{row:8}}`` (see ``patterns``)."""

    type: Literal["pattern"]
    pattern: str = Field(min_length=1, max_length=500)
    unique: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        compile_pattern(pattern)  # raises ValueError with the position of the problem
        return pattern

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        if self.unique and not compile_pattern(self.pattern).can_be_unique:
            errors.append((("unique",), "unique patterns need fixed repeat counts ({n}, not {m,n} or ?)", True))


class ReferenceColumn(BaseColumn):
    """A foreign key: values of ``column`` in another dataset, which the caller loads and passes in."""

    type: Literal["reference"]
    dataset: uuid.UUID
    column: ColumnName = "id"
    distribution: ChoiceDistribution = UNIFORM
    unique: bool = Field(False, description="each referenced value at most once (one-to-one)")


class RealisticColumn(BaseColumn):
    """Values that look real, from the locale's vocabulary (names, places, companies, phone formats)."""

    type: Literal[
        "first_name",
        "last_name",
        "person_name",
        "phone",
        "company",
        "address",
        "city",
        "country",
        "url",
        "product_name",
    ]


class EmailColumn(BaseColumn):
    """``first.last42@example.com``-style addresses; built from the row's name columns when ``fromColumns`` names them.

    The default domains are reserved example domains, so generated data never reaches a real mailbox.
    """

    type: Literal["email"]
    from_columns: list[ColumnName] = Field(
        default_factory=list, max_length=2, description="first_name/last_name/person_name columns of this spec"
    )
    domains: list[Annotated[str, StringConstraints(max_length=253, pattern=HOSTNAME, to_lower=True)]] = Field(
        default_factory=lambda: ["example.com", "example.org", "example.net"], min_length=1, max_length=100
    )
    unique: bool = Field(False, description="append the row number, which makes every address distinct")


class TextColumn(BaseColumn):
    """A sentence of ``minWords``..``maxWords`` words from the locale's word list."""

    type: Literal["text"]
    min_words: int = Field(4, ge=1, le=200)
    max_words: int = Field(12, ge=1, le=200)

    def _check(self, errors: list[tuple[Loc, str, Any]]) -> None:
        if self.min_words > self.max_words:
            errors.append((("maxWords",), f"maxWords must be at least minWords ({self.min_words})", self.max_words))


Column = (
    IntColumn
    | FloatColumn
    | DecimalColumn
    | AmountColumn
    | BoolColumn
    | UuidColumn
    | DateColumn
    | DatetimeColumn
    | EnumColumn
    | PatternColumn
    | ReferenceColumn
    | RealisticColumn
    | EmailColumn
    | TextColumn
)
ColumnSpec = Annotated[Column, Field(discriminator="type"), WrapValidator(_untagged)]
NAME_TYPES = ("first_name", "last_name", "person_name")
