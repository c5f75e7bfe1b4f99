"""What can be exported: datasets, and platform resources registered by name (jobs and audit to start).

A resource is a table, its exportable columns (in the dataset column vocabulary) and an order; a later
module makes its data exportable with ``register_export_source``. Queries are composed with psycopg's
``sql`` objects only: column names are checked against the source, values are bound as literals.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncSession

from northstar.jobs.formats import ColumnDef
from northstar.jobs.models import Dataset
from northstar.jobs.pipeline import columns_of, dataset_table, select_as_text


@dataclass(frozen=True)
class ExportSource:
    table: tuple[str, str]
    columns: tuple[ColumnDef, ...]
    order_by: str


EXPORT_SOURCES: dict[str, ExportSource] = {}


def register_export_source(name: str, source: ExportSource) -> None:
    EXPORT_SOURCES[name] = source


def _columns(**types: Any) -> tuple[ColumnDef, ...]:
    return tuple(ColumnDef(name, kind) for name, kind in types.items())


register_export_source("jobs", ExportSource(
    table=("jobs", "jobs"),
    columns=_columns(id="uuid", type="string", status="string", progress="float", rows_done="int",
                     rows_total="int", error_message="string", attempts="int", created_at="datetime",
                     started_at="datetime", finished_at="datetime"),
    order_by="created_at"))
register_export_source("kpis", ExportSource(
    table=("metrics", "kpis"),
    columns=_columns(metric="string", grain="string", day="date", source="string", dims="string", value="float"),
    order_by="day"))
register_export_source("audit", ExportSource(
    table=("core", "audit_events"),
    columns=_columns(id="uuid", seq="int", occurred_at="datetime", actor_type="string", actor_id="uuid",
                     action="string", target_type="string", target_id="string", ip="string", user_agent="string",
                     request_id="string", details="json", hash="string"),
    order_by="seq"))


async def export_columns(session: AsyncSession, *, source_type: str, dataset_id: uuid.UUID | None
                         ) -> list[ColumnDef]:
    if dataset_id is not None:
        dataset = await session.get(Dataset, dataset_id)
        return columns_of(dataset.columns) if dataset is not None else []
    return list(EXPORT_SOURCES[source_type].columns)


_COMPARISONS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


def _condition(column: ColumnDef, op: str, value: Any) -> sql.Composable:
    name = sql.Identifier(column.name)
    cast = sql.SQL(column.sql_type)
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


def export_query(params: dict[str, Any], available: list[ColumnDef]) -> tuple[sql.Composable, list[ColumnDef]]:
    """The SELECT for an export job's params, and the columns it yields in order."""
    by_name = {column.name: column for column in available}
    chosen = [by_name[name] for name in params.get("columns") or by_name]
    if "datasetId" in params:
        table: sql.Composable = dataset_table(uuid.UUID(params["datasetId"]))
        order = sql.Identifier("_row")
    else:
        source = EXPORT_SOURCES[params["source"]["type"]]
        table, order = sql.Identifier(*source.table), sql.Identifier(source.order_by)
    conditions = [_condition(by_name[item["column"]], item["op"], item.get("value"))
                  for item in params.get("filters", [])]
    where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conditions)) if conditions else sql.SQL("")
    query = sql.SQL("SELECT {} FROM {}{} ORDER BY {}").format(
        sql.SQL(", ").join(select_as_text(column) for column in chosen), table, where, order)
    return query, chosen
