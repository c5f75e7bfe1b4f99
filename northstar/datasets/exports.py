"""What can be exported: datasets, and the platform tables modules declare as export sources in their manifests.

A source is a table, its exportable columns (in the dataset column vocabulary), an order and the resource a caller
must be allowed to read (``core.manifest.ExportTable``); ``core.manifest.EXPORT_SOURCES`` holds the installed
ones by name. A source's columns are named in exports (file headers, JSON keys, and a request's ``columns`` and
``filters``) as its API names them, in camelCase.

A request is checked against the source's real columns and their types before a job is queued
(``check_request``), so a queued export never meets a name or a value its source cannot take. Queries are
composed with psycopg's ``sql`` objects only: column names come from the source, values are bound as
literals cast to the column's type.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, cast, get_args

import orjson
import pyarrow as pa
from psycopg import sql
from pydantic import Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.core.http import Unprocessable
from northstar.core.manifest import EXPORT_SOURCES, ExportTable
from northstar.datasets.formats import ColumnDef, ColumnKind
from northstar.datasets.models import Dataset
from northstar.datasets.schemas import ExportFilter, ExportRequest
from northstar.datasets.transfer import columns_of, dataset_table, select_as_text


@dataclass(frozen=True)
class ExportColumn:
    """A column as exports name it, and the stored column it reads."""

    name: str
    column: ColumnDef

    def arrow_field(self) -> pa.Field[Any]:
        return self.column.arrow_field().with_name(self.name)


@dataclass(frozen=True)
class Exportable:
    """What one export reads: its columns and, when the source knows it without counting, its row count."""

    columns: list[ExportColumn]
    rows: int | None


COLUMN_KINDS = frozenset(get_args(ColumnKind))


def source_columns(source: ExportTable) -> list[ColumnDef]:
    """The source's columns in the dataset vocabulary (the manifest test holds every declared type to it)."""
    return [ColumnDef(name, cast(ColumnKind, kind)) for name, kind in source.columns.items()]


async def exportable(session: AsyncSession, *, source_type: str, dataset_id: uuid.UUID | None) -> Exportable | None:
    """The source's columns (and a dataset's row count); None when the dataset is gone."""
    if dataset_id is not None:
        dataset = await session.get(Dataset, dataset_id)
        if dataset is None:
            return None
        return Exportable(
            [ExportColumn(column.name, column) for column in columns_of(dataset.columns)], dataset.row_count
        )
    return Exportable(
        [ExportColumn(to_camel(column.name), column) for column in source_columns(EXPORT_SOURCES[source_type])], None
    )


_BOUNDED_INT = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
_FINITE_FLOAT = Annotated[float, Field(allow_inf_nan=False)]
_FINITE_DECIMAL = Annotated[Decimal, Field(allow_inf_nan=False)]
_VALUE_TYPES: dict[str, TypeAdapter[Any]] = {
    "int": TypeAdapter(_BOUNDED_INT),
    "float": TypeAdapter(_FINITE_FLOAT),
    "decimal": TypeAdapter(_FINITE_DECIMAL),
    "bool": TypeAdapter(bool),
    "date": TypeAdapter(dt.date),
    "datetime": TypeAdapter(dt.datetime),
    "uuid": TypeAdapter(uuid.UUID),
}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def filter_value(column: ColumnDef, value: Any) -> Any:
    """``value`` taken as ``column``'s type, in the JSON form the job binds; ``ValueError`` says why it cannot be."""
    kind = column.type
    if kind == "string":
        return _text(value)
    if kind == "json":
        return orjson.dumps(value).decode()
    if isinstance(value, bool) and kind != "bool":
        raise ValueError(f"expected a {kind} value, not {_text(value)}")
    try:
        typed = _VALUE_TYPES[kind].validate_python(value)
    except ValidationError as exc:
        raise ValueError(f"not a valid {kind} value: {exc.errors()[0]['msg']}") from None
    if isinstance(typed, dt.datetime):
        return (typed if typed.tzinfo else typed.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(typed, dt.date | uuid.UUID | Decimal):
        return str(typed)
    return typed


def _checked_filter(index: int, item: ExportFilter, column: ColumnDef) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The filter with its value in the column's type, or the problems with it."""
    checked: dict[str, Any] = {"column": item.column, "op": item.op}
    field = f"body.filters.{index}.value"
    if item.op in ("isNull", "notNull"):
        return checked, []
    if item.op == "contains":
        return {**checked, "value": _text(item.value)}, []
    values, problems = [], []
    for position, value in enumerate(item.value if item.op == "in" else [item.value]):
        try:
            values.append(filter_value(column, value))
        except ValueError as exc:
            problems.append(
                {
                    "field": f"{field}.{position}" if item.op == "in" else field,
                    "message": str(exc),
                    "type": "filter_value",
                }
            )
    if problems:
        return checked, problems
    return {**checked, "value": values if item.op == "in" else values[0]}, []


def check_request(request: ExportRequest, columns: list[ExportColumn]) -> list[dict[str, Any]]:
    """The request's filters with values in their columns' types; 422 naming each unknown column or bad value."""
    by_name = {column.name: column.column for column in columns}
    problems = [
        {"field": f"body.columns.{index}", "message": f"no column {name!r}", "type": "unknown_column"}
        for index, name in enumerate(request.columns or [])
        if name not in by_name
    ]
    filters = []
    for index, item in enumerate(request.filters):
        if item.column not in by_name:
            problems.append(
                {
                    "field": f"body.filters.{index}.column",
                    "message": f"no column {item.column!r}",
                    "type": "unknown_column",
                }
            )
            continue
        checked, wrong = _checked_filter(index, item, by_name[item.column])
        filters.append(checked)
        problems += wrong
    if problems:
        raise Unprocessable("The export does not fit its source's columns", details=problems)
    return filters


_COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _condition(column: ColumnDef, op: str, value: Any) -> sql.Composable:
    name = sql.Identifier(column.name)
    # Compared as plain numeric, a value beyond the column's precision is simply larger, not an overflow.
    cast = sql.SQL("numeric" if column.type == "decimal" else column.sql_type)
    if op == "isNull":
        return sql.SQL("{} IS NULL").format(name)
    if op == "notNull":
        return sql.SQL("{} IS NOT NULL").format(name)
    if op == "contains":
        return sql.SQL("strpos({}::text, {}) > 0").format(name, sql.Literal(str(value)))
    if op == "in":
        values = sql.SQL(", ").join(sql.SQL("{}::{}").format(sql.Literal(str(item)), cast) for item in value)
        return sql.SQL("{} IN ({})").format(name, values)
    return sql.SQL("{} {} {}::{}").format(name, sql.SQL(_COMPARISONS[op]), sql.Literal(str(value)), cast)


# The CSV formula guard (``formats.writing.guard_formulas``) in PostgreSQL's regular expressions, for CSV exports
# PostgreSQL renders itself. RE2's ``\s`` is ``[\t\n\f\r ]`` and ``\p{Z}`` the Unicode separators listed here; text
# in PostgreSQL cannot hold NUL. Only cells whose first character is in ``_FORMULA_FIRST`` can match, and only
# those meet the regular expressions.
_PG_SPACE = r"[\t\n\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
PG_FORMULA_START = rf"^([\t\r\n]|{_PG_SPACE}*[-=+@])"
PG_PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_SPACE_CODES = (0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
_FORMULA_FIRST = sql.SQL(", ").join(sql.Literal(code) for code in (9, 10, 12, 13, 32, 43, 45, 61, 64, *_SPACE_CODES))
_GUARDED = sql.SQL(
    "CASE WHEN ascii({text}) NOT IN ({first}) THEN {text} "
    "WHEN {text} ~ {start} AND {text} !~ {number} THEN '''' || {text} ELSE {text} END"
)


def csv_cell(column: ColumnDef) -> tuple[sql.Composable, bool]:
    """``column`` as ``CsvBatchWriter`` prints it, rendered by PostgreSQL, and whether the cell is quoted.

    Text is guarded against formulas and always quoted (``FORCE_QUOTE``, as Arrow quotes every string), booleans
    read ``true``/``false``, timestamps are UTC with a ``Z``. Floats print in PostgreSQL's shortest exact form,
    which differs from Arrow's only in spelling (``1e-05``, ``NaN``, ``Infinity``), never in value.
    """
    name = sql.Identifier(column.name)
    if column.type == "bool":
        return sql.SQL("CASE WHEN {0} THEN 'true' WHEN NOT {0} THEN 'false' END").format(name), False
    if column.type == "datetime":
        return sql.SQL("""to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US"Z"')""").format(name), True
    if column.type in ("string", "uuid", "json"):
        text = sql.SQL("{}::text").format(name)
        start, number = sql.Literal(PG_FORMULA_START), sql.Literal(PG_PLAIN_NUMBER)
        return _GUARDED.format(text=text, first=_FORMULA_FIRST, start=start, number=number), True
    return name, False


@dataclass(frozen=True)
class ExportQuery:
    select: sql.Composable  # the chosen columns of the matching rows, in order
    count: sql.Composable  # how many rows match
    columns: list[ExportColumn]
    csv: sql.Composed  # ``COPY`` of the same rows as the CSV lines ``CsvBatchWriter`` would write (no header)


def export_query(params: dict[str, Any], available: list[ExportColumn]) -> ExportQuery:
    """The queries for an export job's params (checked by ``check_request`` when the job was created)."""
    by_name = {column.name: column for column in available}
    chosen = [by_name[name] for name in params.get("columns") or by_name]
    if "datasetId" in params:
        table: sql.Composable = dataset_table(uuid.UUID(params["datasetId"]))
        order = sql.Identifier("_row")
    else:
        source = EXPORT_SOURCES[params["source"]["type"]]
        table, order = sql.Identifier(*source.table), sql.Identifier(source.order_by)
    conditions = [
        _condition(by_name[item["column"]].column, item["op"], item.get("value")) for item in params.get("filters", [])
    ]
    where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conditions)) if conditions else sql.SQL("")
    rows = sql.SQL("SELECT {} FROM {}{} ORDER BY {}")
    select = rows.format(sql.SQL(", ").join(select_as_text(column.column) for column in chosen), table, where, order)
    cells = [csv_cell(column.column) for column in chosen]
    aliases = [sql.Identifier(f"c{index}") for index in range(len(cells))]
    rendered = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(cell, alias) for (cell, _), alias in zip(cells, aliases, strict=True)
    )
    quoted = [alias for (_, quote), alias in zip(cells, aliases, strict=True) if quote]
    force_quote = sql.SQL(", FORCE_QUOTE ({})").format(sql.SQL(", ").join(quoted)) if quoted else sql.SQL("")
    by_row = sql.SQL("{}.{}").format(table, order)  # qualified: never one of the aliases
    csv = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv{})").format(rows.format(rendered, table, where, by_row), force_quote)
    return ExportQuery(select, sql.SQL("SELECT count(*) FROM {}{}").format(table, where), chosen, csv)
