"""A dataset's columns: a small closed set of types that map one-to-one onto Arrow and PostgreSQL types."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import pyarrow as pa
from pydantic import BeforeValidator, Field, StringConstraints, TypeAdapter, model_validator

from northstar.core.http import RequestModel, refuse_nul
from northstar.datasets.formats.errors import SchemaMismatchError

ColumnKind = Literal["int", "float", "decimal", "bool", "string", "date", "datetime", "uuid", "json"]
KIND_METADATA_KEY = b"northstar.type"  # on Arrow fields, so writers know a string column holds JSON or a UUID
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_DECIMAL_PRECISION = 38
# Every dataset table has these besides the data (the tenant and the source row number).
INTERNAL_COLUMNS = ("org_id", "_row")
# Names a data column cannot take: the internal columns, and PostgreSQL's system columns of every table.
RESERVED_COLUMNS = frozenset({*INTERNAL_COLUMNS, "oid", "tableoid", "xmin", "xmax", "cmin", "cmax", "ctid"})

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "uuid": pa.string(),
    "json": pa.string(),
}
_SQL_TYPES = {
    "int": "bigint",
    "float": "double precision",
    "bool": "boolean",
    "string": "text",
    "date": "date",
    "datetime": "timestamptz",
    "uuid": "uuid",
    "json": "jsonb",
}


def type_problem(kind: ColumnKind, precision: int | None, scale: int | None) -> str | None:
    """What is wrong with a type's precision and scale, if anything."""
    if kind == "decimal":
        if precision is None or not 1 <= precision <= MAX_DECIMAL_PRECISION:
            return f"a decimal needs a precision from 1 to {MAX_DECIMAL_PRECISION}"
        if scale is None or not 0 <= scale <= precision:
            return "a decimal needs a scale from 0 to its precision"
    elif precision is not None or scale is not None:
        return f"only decimal columns take a precision and scale (this one is {kind})"
    return None


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
        if not IDENTIFIER.match(self.name):
            raise ValueError(f"Column name {self.name!r} is not a safe SQL identifier")
        if self.name in RESERVED_COLUMNS:
            raise ValueError(reserved_name_message(self.name))
        problem = type_problem(self.type, self.precision, self.scale)
        if problem:
            raise ValueError(f"Column {self.name!r}: {problem}")

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
        return pa.field(
            self.name, self.arrow_type, nullable=self.nullable, metadata={KIND_METADATA_KEY: self.type.encode()}
        )


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


def reserved_name_message(name: str) -> str:
    return (
        f"{name!r} is reserved: every dataset has its own {' and '.join(INTERNAL_COLUMNS)} columns, and "
        f"PostgreSQL its system columns ({', '.join(sorted(RESERVED_COLUMNS - set(INTERNAL_COLUMNS)))}); "
        f"choose another name, such as {name}_1"
    )


def safe_identifier(label: str) -> str:
    """Lower-case ASCII letters, digits and underscores, at most 63 bytes; '' when nothing usable is left.

    The result may still be a reserved name (``ORG ID`` gives ``org_id``): ``normalise_column_names`` renames those.
    """
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text).strip("_")
    if name[:1].isdigit():
        name = f"_{name}"
    return name[:63].rstrip("_") if len(name) > 63 else name


def _with_suffix(base: str, counter: int) -> str:
    suffix = f"_{counter}"
    return base[: 63 - len(suffix)] + suffix


def normalise_column_names(labels: Sequence[str]) -> list[str]:
    """Safe, unique identifiers in order, never a reserved name.

    A reserved name gets ``_1`` (``org_id`` becomes ``org_id_1``); later duplicates get ``_2``, ``_3``…;
    empty ones ``column_<position>``. ``column_renames`` says which labels were renamed and why.
    """
    taken: set[str] = set(RESERVED_COLUMNS)
    names: list[str] = []
    for position, label in enumerate(labels, start=1):
        base = safe_identifier(label) or f"column_{position}"
        name, counter = base, 1 if base in RESERVED_COLUMNS else 2
        while name in taken:
            name, counter = _with_suffix(base, counter), counter + 1
        taken.add(name)
        names.append(name)
    return names


RenameReason = Literal["reserved", "duplicate", "empty"]


def column_renames(columns: Iterable[ColumnDef]) -> list[dict[str, str]]:
    """The columns whose name is not simply their label made safe: a reserved, duplicate or empty name.

    Reported with the import, so nobody has to guess why ``org_id`` in the file is ``org_id_1`` in the dataset.
    """
    renames: list[dict[str, str]] = []
    for column in columns:
        if column.label is None:
            continue
        safe = safe_identifier(column.label)
        if column.name == safe:
            continue
        reason: RenameReason = "empty" if not safe else "reserved" if safe in RESERVED_COLUMNS else "duplicate"
        renames.append({"label": column.label, "name": column.name, "reason": reason})
    return renames


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


class ColumnTypeRequest(RequestModel):
    """One column's type in a type mapping: a type name, or this object when it needs more (decimal)."""

    type: ColumnKind
    nullable: bool = True
    precision: int | None = Field(default=None, ge=1, le=MAX_DECIMAL_PRECISION)
    scale: int | None = Field(default=None, ge=0, le=MAX_DECIMAL_PRECISION)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problem = type_problem(self.type, self.precision, self.scale)
        if problem:
            raise ValueError(problem)
        return self

    def applied_to(self, name: str, label: str | None) -> ColumnDef:
        return ColumnDef(name, self.type, self.nullable, self.precision, self.scale, label)


def _bare_type_names(mapping: Any) -> Any:
    """``"int"`` is short for ``{"type": "int"}``; header names with NUL are refused (PostgreSQL cannot keep them)."""
    if not isinstance(mapping, dict):
        return mapping
    refuse_nul(list(mapping))
    return {key: {"type": value} if isinstance(value, str) else value for key, value in mapping.items()}


TypeMapping = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=500)], ColumnTypeRequest],
    BeforeValidator(_bare_type_names),
    Field(min_length=1, max_length=1000),
]
TYPE_MAPPING: TypeAdapter[dict[str, ColumnTypeRequest]] = TypeAdapter(TypeMapping)


def with_types(inferred: DatasetSchema, types: Mapping[str, ColumnTypeRequest]) -> DatasetSchema:
    """``inferred`` with the caller's types for some columns, named by header (label) or by column name.

    A name that matches no column is one clear error listing the columns there are.
    """
    by_key = {column.label: index for index, column in enumerate(inferred.columns) if column.label is not None}
    by_key.update({column.name: index for index, column in enumerate(inferred.columns)})
    unknown = [key for key in types if key not in by_key]
    if unknown:
        raise SchemaMismatchError(
            f"The schema names {', '.join(map(repr, unknown))}, which the file does not have; its columns are "
            f"{', '.join(repr(column.display_name) for column in inferred.columns)}",
            details={"unknownColumns": unknown},
        )
    columns = list(inferred.columns)
    for key, given in types.items():
        index = by_key[key]
        columns[index] = given.applied_to(columns[index].name, columns[index].label)
    return DatasetSchema(tuple(columns))


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
