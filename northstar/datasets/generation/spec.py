"""The generation request: rows, seed, locale, and columns (given, from a preset, or both).

Everything that can be known before generating is checked here, so a bad request is a 422 with
the exact field path before a job is enqueued.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, NamedTuple, Self

from pydantic import Field, PrivateAttr, model_validator

from northstar.datasets.formats.schema import RESERVED_COLUMNS, reserved_name_message
from northstar.datasets.generation.columns import (
    INT64_MAX,
    INT64_MIN,
    NAME_TYPES,
    UNIFORM,
    Column,
    ColumnName,
    ColumnSpec,
    EmailColumn,
    IntColumn,
    Loc,
    PatternColumn,
    RealisticColumn,
    ReferenceColumn,
    Sequential,
    SpecModel,
    Uniform,
    Zipf,
    field_errors,
)
from northstar.datasets.generation.patterns import compile_pattern
from northstar.datasets.generation.presets import PRESETS, PresetName
from northstar.datasets.generation.vocab import Locale

MAX_ROWS = 100_000_000
MAX_COLUMNS = 1000
MAX_SEED = 2**63 - 1  # fits a PostgreSQL bigint


class GenerationSpec(SpecModel):
    """What to generate. With a ``preset``, ``columns`` replace preset columns of the same name or add new
    ones, ``exclude`` drops preset columns, and ``links`` turn the preset's id columns into references."""

    rows: int = Field(ge=1, le=MAX_ROWS)
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_SEED,
        description="same seed and spec, byte-identical rows; when omitted one is chosen and recorded with the job",
    )
    locale: Locale = "en_US"
    preset: PresetName | None = None
    links: dict[str, uuid.UUID] = Field(default_factory=dict, description="preset link name -> dataset id")
    exclude: list[ColumnName] = Field(default_factory=list, max_length=MAX_COLUMNS)
    columns: list[ColumnSpec] = Field(default_factory=list, max_length=MAX_COLUMNS)
    _resolved: tuple[tuple[Loc, Column], ...] = PrivateAttr(())

    @property
    def effective_columns(self) -> tuple[Column, ...]:
        """The columns to generate, in output order, presets applied."""
        return tuple(column for _, column in self._resolved)

    @property
    def located_columns(self) -> tuple[tuple[Loc, Column], ...]:
        """Each effective column with the request path that defines it (``("columns", 3)``, ``("preset",)``...)."""
        return self._resolved

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        errors: list[tuple[Loc, str, Any]] = []
        seen: set[str] = set()
        for index, column in enumerate(self.columns):
            if column.name in seen:
                errors.append((("columns", index, "name"), f"duplicate column name {column.name!r}", column.name))
            if column.name in RESERVED_COLUMNS:
                errors.append((("columns", index, "name"), reserved_name_message(column.name), column.name))
            seen.add(column.name)
        given: list[tuple[Loc, Column]] = [(("columns", index), column) for index, column in enumerate(self.columns)]
        if not self.preset:
            errors.extend(
                ((field,), "only with a preset", getattr(self, field))
                for field in ("links", "exclude")
                if getattr(self, field)
            )
        resolved = self._with_preset(errors) if self.preset else given
        if not resolved and not errors:
            errors.append((("columns",), "give at least one column, or a preset", []))
        if len(resolved) > MAX_COLUMNS:
            errors.append((("columns",), f"at most {MAX_COLUMNS} columns in all", len(resolved)))
        for loc, column in resolved:
            errors.extend(_feasibility(loc, column, self.rows, resolved))
        if errors:
            raise field_errors(type(self).__name__, errors)
        self._resolved = tuple(resolved)
        return self

    def _with_preset(self, errors: list[tuple[Loc, str, Any]]) -> list[tuple[Loc, Column]]:
        assert self.preset is not None
        preset = PRESETS[self.preset]
        names = {column.name for column in preset.columns}
        given = {column.name: (("columns", index), column) for index, column in enumerate(self.columns)}
        for slot in self.links:
            if slot not in preset.links:
                errors.append(
                    (("links", slot), f"preset {preset.name} links: {', '.join(preset.links) or 'none'}", slot)
                )
            elif preset.links[slot].column in given:
                errors.append((("links", slot), f"{preset.links[slot].column} is also given in columns", slot))
        for index, name in enumerate(self.exclude):
            if name not in names or name in given:
                errors.append(
                    (
                        ("exclude", index),
                        f"not a column of preset {preset.name}" if name not in names else "also given in columns",
                        name,
                    )
                )
        linked = {link.column: (slot, link) for slot, link in preset.links.items() if slot in self.links}
        resolved: list[tuple[Loc, Column]] = []
        for column in preset.columns:
            if column.name in self.exclude:
                continue
            if column.name in given:
                resolved.append(given[column.name])
            elif column.name in linked:
                slot, link = linked[column.name]
                skew = column.distribution if isinstance(column, IntColumn) else None
                resolved.append(
                    (
                        ("links", slot),
                        ReferenceColumn(
                            type="reference",
                            name=column.name,
                            dataset=self.links[slot],
                            column=link.referenced_column,
                            null_ratio=column.null_ratio,
                            distribution=skew if isinstance(skew, Zipf) else UNIFORM,
                        ),
                    )
                )
            else:
                resolved.append((("preset",), column))
        resolved.extend(given[name] for name in given if name not in names)
        return resolved


def _feasibility(loc: Loc, column: Column, rows: int, resolved: list[tuple[Loc, Column]]) -> list[tuple[Loc, str, Any]]:
    """Checks that need the row count or the other columns."""
    if isinstance(column, IntColumn):
        if isinstance(column.distribution, Sequential):
            last = column.distribution.start + column.distribution.step * (rows - 1)
            if not INT64_MIN <= last <= INT64_MAX:
                return [
                    (
                        (*loc, "distribution", "step"),
                        f"row {rows} would be {last}, outside 64-bit integers",
                        column.distribution.step,
                    )
                ]
        elif column.unique and isinstance(column.distribution, Uniform):
            low, high = column.bounds()
            if high - low + 1 < rows:
                return [((*loc, "unique"), f"[{low}, {high}] has only {high - low + 1} values for {rows} rows", True)]
    if isinstance(column, PatternColumn) and column.unique:
        capacity = compile_pattern(column.pattern).capacity
        if capacity is not None and capacity < rows:
            return [((*loc, "unique"), f"the pattern makes only {capacity} distinct values for {rows} rows", True)]
    if isinstance(column, EmailColumn):
        return _email_sources(loc, column, resolved)
    return []


def _email_sources(loc: Loc, column: EmailColumn, resolved: list[tuple[Loc, Column]]) -> list[tuple[Loc, str, Any]]:
    by_name = {other.name: other for _, other in resolved}
    errors: list[tuple[Loc, str, Any]] = []
    parts: list[str] = []
    for index, name in enumerate(column.from_columns):
        source = by_name.get(name)
        if not isinstance(source, RealisticColumn) or source.type not in NAME_TYPES:
            errors.append(((*loc, "fromColumns", index), f"{name!r} is not a {'/'.join(NAME_TYPES)} column", name))
            continue
        parts += ["first", "last"] if source.type == "person_name" else [source.type.removesuffix("_name")]
    if len(parts) != len(set(parts)):
        errors.append(((*loc, "fromColumns"), "name at most one first and one last name source", column.from_columns))
    return errors


def with_seed(spec: GenerationSpec) -> GenerationSpec:
    """The spec with a seed: its own, or a fresh random one the caller must record to reproduce the data."""
    return spec if spec.seed is not None else spec.model_copy(update={"seed": secrets.randbelow(MAX_SEED + 1)})


class DatasetReference(NamedTuple):
    """A dataset the caller must load, ``referenced_column`` values passed to ``generate`` under ``column``."""

    loc: Loc  # where the request names the dataset, for error messages
    column: str
    dataset: uuid.UUID
    referenced_column: str


def referenced_datasets(spec: GenerationSpec) -> list[DatasetReference]:
    return [
        DatasetReference((*loc, "dataset") if loc[0] == "columns" else loc, column.name, column.dataset, column.column)
        for loc, column in spec.located_columns
        if isinstance(column, ReferenceColumn)
    ]
