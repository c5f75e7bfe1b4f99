"""A dataset's columns: a small closed set of types that map one-to-one onto Arrow and PostgreSQL types."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import pyarrow as pa
from pydantic import Field, model_validator

from northstar.core.http import RequestModel

ColumnKind = Literal["int", "float", "decimal", "bool", "string", "date", "datetime", "uuid", "json"]
KIND_METADATA_KEY = b"northstar.type"  # on Arrow fields, so writers know a string column holds JSON or a UUID
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_DECIMAL_PRECISION = 38
# PostgreSQL refuses these as user column names (they are system columns of every table).
_SYSTEM_COLUMNS = frozenset({"oid", "tableoid", "xmin", "xmax", "cmin", "cmax", "ctid"})

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string(), "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"), "uuid": pa.string(), "json": pa.string(),
}
_SQL_TYPES = {
    "int": "bigint", "float": "double precision", "bool": "boolean", "string": "text", "date": "date",
    "datetime": "timestamptz", "uuid": "uuid", "json": "jsonb",
}


@dataclass(frozen=True, slots=True)
class ColumnDef:
    """One column: ``name`` is a safe SQL identifier, ``label`` the name as the file spelled it."""

    name: str
    type: ColumnKind
    nullable: bool = True
    precision: int | None = None  # decimal only
    scale: int | None = None  # decimal only
    label: str | None = None

    def __post_init__(self) -> None:
        if not IDENTIFIER.match(self.name) or self.name in _SYSTEM_COLUMNS:
            raise ValueError(f"Column name {self.name!r} is not a safe SQL identifier")
        if self.type == "decimal":
            if self.precision is None or not 1 <= self.precision <= MAX_DECIMAL_PRECISION:
                raise ValueError(f"Decimal column {self.name!r} needs a precision from 1 to {MAX_DECIMAL_PRECISION}")
            if self.scale is None or not 0 <= self.scale <= self.precision:
                raise ValueError(f"Decimal column {self.name!r} needs a scale from 0 to its precision")
        elif self.precision is not None or self.scale is not None:
            raise ValueError(f"Only decimal columns take a precision and scale ({self.name!r} is {self.type})")

    @property
    def display_name(self) -> str:
        """How a person knows the column: the original header when there was one."""
        return self.label or self.name

    @property
    def arrow_type(self) -> pa.DataType:
        if self.type == "decimal":
            return pa.decimal128(self.precision or MAX_DECIMAL_PRECISION, self.scale or 0)
        return _ARROW_TYPES[self.type]

    @property
    def sql_type(self) -> str:
        if self.type == "decimal":
            return f"numeric({self.precision},{self.scale})"
        return _SQL_TYPES[self.type]

    def arrow_field(self) -> pa.Field[Any]:
        return pa.field(self.name, self.arrow_type, nullable=self.nullable,
                        metadata={KIND_METADATA_KEY: self.type.encode()})


@dataclass(frozen=True, slots=True)
class DatasetSchema:
    columns: tuple[ColumnDef, ...]

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"Duplicate column names: {', '.join(duplicates)}")

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def to_arrow(self) -> pa.Schema:
        return pa.schema([column.arrow_field() for column in self.columns])


def safe_identifier(label: str) -> str:
    """Lower-case ASCII letters, digits and underscores, at most 63 bytes; '' when nothing usable is left."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")
    if name[:1].isdigit():
        name = f"_{name}"
    if name in _SYSTEM_COLUMNS:
        name = f"{name}_"
    return name[:63].rstrip("_") if len(name) > 63 else name


def normalise_column_names(labels: Sequence[str]) -> list[str]:
    """Safe, unique identifiers in order: duplicates get ``_2``, ``_3``…; empty ones ``column_<position>``."""
    taken: set[str] = set()
    names: list[str] = []
    for position, label in enumerate(labels, start=1):
        base = safe_identifier(label) or f"column_{position}"
        name, counter = base, 2
        while name in taken:
            suffix = f"_{counter}"
            name, counter = base[:63 - len(suffix)] + suffix, counter + 1
        taken.add(name)
        names.append(name)
    return names


class ColumnDefRequest(RequestModel):
    """A column as a client declares it when it supplies the schema instead of letting us infer one."""

    name: str = Field(pattern=IDENTIFIER.pattern, examples=["unit_price"])
    type: ColumnKind
    nullable: bool = True
    precision: int | None = Field(default=None, ge=1, le=MAX_DECIMAL_PRECISION)
    scale: int | None = Field(default=None, ge=0, le=MAX_DECIMAL_PRECISION)
    label: str | None = Field(default=None, max_length=500, description="The header in the file, if it differs")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.to_column()  # one set of rules, in ColumnDef
        return self

    def to_column(self) -> ColumnDef:
        return ColumnDef(self.name, self.type, self.nullable, self.precision, self.scale, self.label)


class DatasetSchemaRequest(RequestModel):
    columns: list[ColumnDefRequest] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        self.to_schema()
        return self

    def to_schema(self) -> DatasetSchema:
        return DatasetSchema(tuple(column.to_column() for column in self.columns))


def bind_columns(source_labels: Iterable[str], schema: DatasetSchema, *, positional: bool) -> list[int | None]:
    """For each schema column, the index of the source column that feeds it (None: absent from the file).

    A file without a header is matched by position; otherwise by the original label, then by safe name.
    """
    labels = list(source_labels)
    if positional:
        return [index if index < len(labels) else None for index in range(len(schema.columns))]
    by_label = {label: index for index, label in reversed(list(enumerate(labels)))}
    by_name = {name: index for index, name in enumerate(normalise_column_names(labels))}
    bound: list[int | None] = []
    for column in schema.columns:
        index = by_label.get(column.label) if column.label is not None else None
        bound.append(index if index is not None else by_name.get(column.name))
    return bound
