"""``northstar`` command line: run, serve, worker, dev, migrate, seed, create-user, audit verify, jobs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from northstar.settings import Settings, describe_error, get_settings

if TYPE_CHECKING:
    from northstar.core.db import Database
    from northstar.supervisor import Supervisor

class StartupError(Exception):
    """A problem to report in one line (to stderr, exit code 2) rather than as a traceback."""


def _database_error(exc: BaseException) -> str | None:
    """One line for a database that cannot be reached, or ``None`` when ``exc`` is something else."""
    from sqlalchemy.engine import make_url

    from northstar.core.dbguard import database_problem

    cause: BaseException | None = exc
    while cause is not None and database_problem(cause) is None:  # e.g. the queue's error wrapping the driver's
        cause = cause.__cause__
    if cause is None:
        return None
    cause = getattr(cause, "orig", None) or cause
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    configured = get_settings().database_url
    where = (f"{make_url(configured).render_as_string(hide_password=True)} (DATABASE_URL)" if configured
             else "the embedded database")
    return f"cannot reach the database at {where}: {reason}"


class Commands(TyperGroup):
    """Every command reports a bad configuration, an unreachable database or a busy port in one line."""

    def invoke(self, ctx: Any) -> Any:  # click.Context (which typer re-exports under another name)
        try:
            return super().invoke(ctx)
        except (ValidationError, SettingsError) as exc:
            message = describe_error(exc)
        except StartupError as exc:
            message = str(exc)
        except Exception as exc:
            found = _database_error(exc)
            if found is None:
                raise
            message = found
        Console(stderr=True).print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
        raise typer.Exit(2)


app = typer.Typer(cls=Commands, help="Northstar: one multi-tenant backend platform.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
audit_app = typer.Typer(help="Audit trail tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
jobs_app = typer.Typer(help="Data service jobs of one organization.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
console = Console()
T = TypeVar("T")


def database_url(settings: Settings) -> str:
    """The configured database, or the embedded one in the data dir (started if needed)."""
    if settings.database_url:
        return settings.database_url
    from northstar.core.db import start_embedded_postgres

    with console.status("Starting embedded PostgreSQL…"):
        return start_embedded_postgres(settings.data_dir)


def _migrate(url: str) -> None:
    from northstar.migrations import upgrade

    with console.status("Applying migrations…"):
        upgrade(url)


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _run_async(make: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    url = database_url(get_settings())
    return asyncio.run(make(url))


def _with_database(work: Callable[[Database], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` with a one-connection ``Database`` that is disposed afterwards."""
    from northstar.core.db import Database

    async def run(url: str) -> T:
        database = Database(url, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return _run_async(run)


@app.command()
def migrate() -> None:
    """Apply all database migrations."""
    url = database_url(get_settings())
    _migrate(url)
    console.print("[green]Database is up to date.[/]")


def _listen(settings: Settings) -> socket.socket:
    """The API's listening socket, bound before anything says "ready" (a port in use is one clear line)."""
    host, port = settings.http.host, settings.http.port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port} (NORTHSTAR_HTTP__HOST/NORTHSTAR_HTTP__PORT, or --host/"
                           f"--port): {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _serve(url: str, settings: Settings, sock: socket.socket, *, reload: bool = False,
           ready: Callable[[], None] | None = None) -> None:
    """Serve the API on ``sock`` until Ctrl-C or SIGTERM; ``ready`` is called once the app is built."""
    from uvicorn.supervisors import ChangeReload

    os.environ["DATABASE_URL"] = url
    config = uvicorn.Config(
        "northstar.app:serve_app", factory=True, host=settings.http.host, port=settings.http.port,
        reload=reload, loop="uvloop", http="httptools", log_level="warning", proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if not reload:
        config.load()  # build the app here, so "ready" is said only once it can answer
    if ready is not None:
        ready()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        if reload:
            ChangeReload(config, target=server.run, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    if not reload and not server.started:
        raise StartupError("the API did not start (the reason is logged above)")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """Serve the API only (run workers separately with `northstar worker`)."""
    settings = _with_bind(get_settings(), host, port)
    url = database_url(settings)
    _migrate(url)
    _serve(url, settings, _listen(settings))


def _with_bind(settings: Settings, host: str | None, port: int | None) -> Settings:
    if host:
        settings.http.host = host
    if port:
        settings.http.port = port
    return settings


def _spawn_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "northstar", "worker"], env=env)


def _supervise_worker(url: str, settings: Settings) -> Supervisor:
    from northstar.supervisor import Supervisor

    queue = settings.queue
    return Supervisor(lambda: _spawn_worker(url), restart_delay_seconds=queue.worker_restart_delay_seconds,
                      max_delay_seconds=queue.worker_restart_max_delay_seconds,
                      healthy_seconds=queue.worker_healthy_seconds)


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    reload: Annotated[bool, typer.Option(help="Reload the API on code changes")] = False,
) -> None:
    """The whole platform: database (embedded unless DATABASE_URL), migrations, API and a worker (restarted if it
    dies)."""
    started = time.perf_counter()
    settings = _with_bind(get_settings(), host, port)
    url = database_url(settings)
    _migrate(url)
    sock = _listen(settings)
    workers = _supervise_worker(url, settings)

    def ready() -> None:
        console.print(
            f"[bold green]Northstar[/] on http://{settings.http.host}:{settings.http.port} "
            f"(docs at /docs) · database {'embedded' if not settings.database_url else 'external'} · "
            f"worker pid {workers.process.pid} · ready to serve in {time.perf_counter() - started:.1f}s. "
            "Ctrl-C stops.")

    try:
        _serve(url, settings, sock, reload=reload, ready=ready)
    finally:
        workers.stop()


@app.command()
def dev(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
) -> None:
    """`run` with auto-reload of the API on code changes."""
    run(host=host, port=port, reload=True)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once")] = None,
    queues: Annotated[list[str] | None, typer.Option("--queue", help="Only these queues")] = None,
) -> None:
    """Run a queue worker (scale out by starting more)."""
    from northstar.core.db import Database
    from northstar.core.observability import configure_logging
    from northstar.core.queue import close_queue, open_queue, queue_app, worker_options

    settings = get_settings()
    configure_logging(settings.log_level)

    async def work(url: str) -> None:
        database = Database(url, pool_size=4, statement_timeout=settings.db.worker_statement_timeout_seconds)
        async with database.engine.connect():  # an unreachable database is one line, not the queue pool's retries
            pass
        pool = await open_queue(database)
        try:
            options: dict[str, Any] = worker_options() | ({"queues": queues} if queues else {})
            await queue_app.run_worker_async(
                concurrency=concurrency or settings.queue.worker_concurrency, install_signal_handlers=True, **options
            )
        finally:
            await close_queue(pool)
            await database.dispose()

    _run_async(work)


@app.command("create-user")
def create_user(
    email: Annotated[str, typer.Option(prompt=True, help="E-mail to log in with")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    name: Annotated[str, typer.Option(help="Display name")] = "",
    organization: Annotated[str | None, typer.Option(help="Name of the organization they found")] = None,
) -> None:
    """Create a user and their organization (they are its Founder)."""
    from northstar.accounts.service import auth as auth_service
    from northstar.core.context import ClientMeta
    from northstar.core.http import AppError

    async def create(database: Database) -> Any:
        async with database.tenant_transaction() as session:
            return await auth_service.signup(
                session, email=email.strip().lower(), password=password, name=name,
                organization_name=organization, invitation_token=None,
                client=ClientMeta(ip="", user_agent="northstar-cli", request_id=""),
            )

    try:
        outcome = _with_database(create)
    except AppError as exc:
        _fail(exc.message)
    console.print(f"[green]Created[/] {outcome.user.email} (founder of org {outcome.org_id}).")


@app.command()
def seed() -> None:
    """Demo data: an org with a user for every role, projects, teams and an API key."""
    from northstar.accounts.seed import seed_demo

    result = _run_async(seed_demo)
    table = Table(title=f"Demo organization {result.org_name}")
    table.add_column("role")
    table.add_column("email")
    table.add_column("password")
    for role, email, password in result.users:
        table.add_row(role, email, password)
    console.print(table)
    console.print(f"API key (admin): [bold]{result.api_key}[/]")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute every org's audit hash chain; exits 1 if any entry was changed or removed."""
    from northstar.audit.service import verify_all

    reports = _run_async(verify_all)
    table = Table(title="Audit trail")
    for column in ("organization", "entries", "head hash", "status"):
        table.add_column(column)
    for report in reports:
        status = "[green]intact[/]" if report.ok else "[red]" + "; ".join(report.problems[:3]) + "[/]"
        table.add_row(str(report.org_id), str(report.entries), report.head_hash[:16], status)
    console.print(table)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


OrgOption = Annotated[uuid.UUID, typer.Option("--org", envvar="NORTHSTAR_ORG", help="Organization id")]


@jobs_app.command("list")
def jobs_list(
    org: OrgOption,
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
) -> None:
    """The organization's latest jobs."""
    from northstar.jobs import service

    async def fetch(database: Database) -> list[Any]:
        async with database.tenant_transaction(org_id=org) as session:
            jobs, _ = await service.list_jobs(session, org_id=org, filters=service.JobFilters(status=status),
                                              offset=0, limit=limit)
            return jobs

    table = Table(title=f"Jobs of {org}")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, so it can be pasted into `jobs follow`
    for column in ("type", "status", "progress", "rows", "attempts", "created", "error"):
        table.add_column(column)
    for job in _with_database(fetch):
        table.add_row(str(job.id), job.type, job.status, f"{job.progress:.0%}", f"{job.rows_done:,}",
                      str(job.attempts), f"{job.created_at:%Y-%m-%d %H:%M:%S}", (job.error_message or "")[:60])
    console.print(table)


@jobs_app.command("follow")
def jobs_follow(
    job_id: Annotated[uuid.UUID, typer.Argument(help="The job to follow")],
    org: OrgOption,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between updates")] = 0.5,
) -> None:
    """Follow one job with a progress bar until it finishes; exits 1 unless it completed."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from northstar.core.http import AppError
    from northstar.jobs import service

    async def follow(database: Database) -> Any:
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task(str(job_id), total=1.0, rows="0")
            while True:
                async with database.tenant_transaction(org_id=org) as session:
                    job = await service.get_job(session, org_id=org, job_id=job_id)
                progress.update(bar, completed=job.progress, rows=f"{job.rows_done:,}",
                                description=f"{job.type} {job.status}")
                if job.status in ("completed", "failed", "cancelled"):
                    return job
                await asyncio.sleep(interval)

    try:
        job = _with_database(follow)
    except AppError as exc:
        _fail(exc.message)
    if job.status != "completed":
        _fail(f"job {job.status}: {job.error_message or ''}")
    console.print(f"[green]completed[/] {job.result}")


keys_app = typer.Typer(help="Field encryption keys (credentials, MFA secrets).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(key_id: Annotated[str, typer.Argument(help="A name for the key, like k2")]) -> None:
    """Print a new random key and how to configure it (nothing is stored)."""
    from northstar.core.crypto import new_key

    settings = get_settings()
    keys = {**settings.crypto.keys, key_id: new_key()}
    console.print("Add it to the configuration, make it current, then run `northstar keys rotate`:")
    console.print(f"NORTHSTAR_CRYPTO__KEYS='{orjson.dumps(keys).decode()}'", markup=False, highlight=False)
    console.print(f"NORTHSTAR_CRYPTO__CURRENT_KEY={key_id}", markup=False, highlight=False)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every encrypted column with the current key (older keys can be removed afterwards)."""
    from northstar.core.crypto import ENCRYPTED_COLUMNS, rotate_column
    from northstar.core.db import list_tenant_ids, set_tenant_context
    from northstar.core.security import auth_keys
    from northstar.migrations import registry  # noqa: F401 - imports every module's tables and columns

    cipher = auth_keys().cipher

    async def rotate(database: Database) -> dict[str, int]:
        rotated: dict[str, int] = {}
        orgs = await list_tenant_ids(database)
        for column in ENCRYPTED_COLUMNS:
            name = f"{column.table}.{column.column}"
            rotated[name] = 0
            if not column.tenant:
                async with database.sessionmaker() as session, session.begin():
                    await set_tenant_context(session)
                    rotated[name] += await rotate_column(session, column, cipher)
                continue
            for org_id in orgs:
                async with database.tenant_transaction(org_id=org_id) as session:
                    rotated[name] += await rotate_column(session, column, cipher)
        return rotated

    table = Table(title=f"Re-encrypted with key {cipher.current_key_id}")
    table.add_column("column")
    table.add_column("values")
    for name, count in _with_database(rotate).items():
        table.add_row(name, str(count))
    console.print(table)
