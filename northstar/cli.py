"""``northstar`` command line: run, serve, worker, dev, migrate, seed, create-user, audit verify, keys; and, against a
running API as a logged-in user (``login``), orgs and jobs.

Output is for people in a terminal and for scripts alike: where output is not a terminal, tables are as wide as
their content (Rich would cut them at 80 columns), and listing commands print JSON with ``--json``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import orjson
import typer
import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup
from uvicorn.supervisors import Multiprocess

from northstar.settings import Settings, describe_error, get_settings

if TYPE_CHECKING:
    from northstar.client import ApiClient
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
    where = (
        f"{make_url(configured).render_as_string(hide_password=True)} (DATABASE_URL)"
        if configured
        else "the embedded database"
    )
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


app = typer.Typer(
    cls=Commands,
    help="Northstar: one multi-tenant backend platform.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
audit_app = typer.Typer(help="Audit trail tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
jobs_app = typer.Typer(help="Data service jobs of your organization (after `northstar login`).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
orgs_app = typer.Typer(help="The organizations you belong to (after `northstar login`).", no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")
T = TypeVar("T")
UNBOUNDED_WIDTH = 100_000


class _Console(Console):
    """Rich's console, but as wide as the content when the output is not a terminal: piped into a file or another
    program, a table keeps every column whole instead of being cut to 80 characters."""

    @property
    def size(self) -> ConsoleDimensions:
        found = super().size
        if self.is_terminal or os.environ.get("COLUMNS"):
            return found
        return ConsoleDimensions(UNBOUNDED_WIDTH, found.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


console = _Console()


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


def _fail(message: str) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _run_async(make: Callable[[str], Coroutine[Any, Any, T]]) -> T:
    url = database_url(get_settings())
    return asyncio.run(make(url))


def _with_database(work: Callable[[Database], Coroutine[Any, Any, T]], url: str | None = None) -> T:
    """Run ``work`` with a one-connection ``Database`` (at ``url``, or the configured one) disposed afterwards."""
    from northstar.core.db import Database

    async def run(url: str) -> T:
        database = Database(url, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run(url)) if url else _run_async(run)


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
        raise StartupError(
            f"cannot listen on {host}:{port} (NORTHSTAR_HTTP__HOST/NORTHSTAR_HTTP__PORT, or --host/"
            f"--port): {exc.strerror or exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


def api_processes() -> int:
    """The default number of API processes: one per core this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _serve(
    url: str,
    settings: Settings,
    sock: socket.socket,
    *,
    reload: bool = False,
    workers: int = 1,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve the API on ``sock`` until Ctrl-C or SIGTERM; ``ready`` is called once the app is built.

    With ``workers`` > 1, as many processes share the socket and nothing else but PostgreSQL and Redis; the
    database pool (``NORTHSTAR_DATABASE_POOL_SIZE``) is shared out among them, so the API holds as many connections
    as with one process (see docs/operations.md).
    """
    from uvicorn.supervisors import ChangeReload

    os.environ["DATABASE_URL"] = url
    if workers > 1:
        os.environ["NORTHSTAR_DATABASE_POOL_SIZE"] = str(process_pool_size(settings.database_pool_size, workers))
    config = uvicorn.Config(
        "northstar.app:serve_app",
        factory=True,
        host=settings.http.host,
        port=settings.http.port,
        reload=reload,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        proxy_headers=False,
    )
    if workers > 1:
        processes = _ApiProcesses(config, sockets=[sock], ready=ready)
        with contextlib.suppress(KeyboardInterrupt):
            processes.run()
        if not processes.started:
            raise StartupError("the API did not start (the reason is logged above)")
        return
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


class _ApiProcesses(Multiprocess):
    """uvicorn's worker processes (each builds the app itself), saying "ready" once every one of them serves."""

    STARTUP_SECONDS = 120.0

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], ready: Callable[[], None] | None) -> None:
        super().__init__(config, sockets)
        self.ready = ready
        self.started = False

    def init_processes(self) -> None:
        super().init_processes()
        self.started = all(
            process.wait_until_ready(self.STARTUP_SECONDS, self.should_exit) for process in self.processes
        )
        if self.started and self.ready is not None:
            self.ready()


def process_pool_size(total: int, workers: int) -> int:
    """Each API process's share of the pool (at least 2 connections, so a request and a health check both fit)."""
    return max(2, total // workers)


WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=1, help="API processes (default for serve: one per core)")
]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: WorkersOption = None,
) -> None:
    """Serve the API only (run workers separately with `northstar worker`)."""
    settings = _with_bind(get_settings(), host, port)
    url = database_url(settings)
    _migrate(url)
    _serve(url, settings, _listen(settings), workers=workers or api_processes())


def _with_bind(settings: Settings, host: str | None, port: int | None) -> Settings:
    """Listen where asked; links then lead there too, in the API and in the workers it starts, unless
    ``NORTHSTAR_PUBLIC_URL`` says otherwise."""
    derived = settings.public_url == settings.listening_url()
    if host:
        settings.http.host = host
    if port:
        settings.http.port = port
    if derived and "NORTHSTAR_PUBLIC_URL" not in os.environ:
        settings.public_url = os.environ["NORTHSTAR_PUBLIC_URL"] = settings.listening_url()
    return settings


def _spawn_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "northstar", "worker"], env=env)


def _supervise_worker(url: str, settings: Settings) -> Supervisor:
    from northstar.supervisor import Supervisor

    queue = settings.queue
    return Supervisor(
        lambda: _spawn_worker(url),
        restart_delay_seconds=queue.worker_restart_delay_seconds,
        max_delay_seconds=queue.worker_restart_max_delay_seconds,
        healthy_seconds=queue.worker_healthy_seconds,
    )


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="Interface to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    reload: Annotated[bool, typer.Option(help="Reload the API on code changes")] = False,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="API processes (one unless given; not with --reload)")
    ] = 1,
) -> None:
    """The whole platform: database (embedded unless DATABASE_URL), migrations, API and a worker (restarted if it
    dies)."""
    started = time.perf_counter()
    settings = _with_bind(get_settings(), host, port)
    url = database_url(settings)
    _migrate(url)
    sock = _listen(settings)
    from northstar.core.db import list_tenant_ids

    empty = not _with_database(list_tenant_ids, url)
    queue_worker = _supervise_worker(url, settings)

    def ready() -> None:
        console.print(
            f"[bold green]Northstar[/] on http://{settings.http.host}:{settings.http.port} "
            f"(docs at /docs) · database {'embedded' if not settings.database_url else 'external'} · "
            f"worker pid {queue_worker.process.pid} · ready to serve in {time.perf_counter() - started:.1f}s. "
            "Ctrl-C stops."
        )
        console.print(f"Console: [bold]{console_url(settings)}[/]", soft_wrap=True)
        if empty:
            console.print(
                f"No organization yet. Load a demo one (in another terminal): [bold]{demo_command()}[/]",
                soft_wrap=True,
            )

    try:
        _serve(url, settings, sock, reload=reload, workers=1 if reload else workers, ready=ready)
    finally:
        queue_worker.stop()


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
    from northstar import modules  # noqa: F401 - installing the modules registers their tasks
    from northstar.core.db import Database
    from northstar.core.observability import configure_logging
    from northstar.core.outbound import close_posting_sessions
    from northstar.core.queue import close_queue, open_queue, queue_app, worker_options

    settings = get_settings()
    configure_logging(settings.log_level)

    async def work(url: str) -> None:
        database = Database(
            url, settings=settings, pool_size=4, statement_timeout=settings.db.worker_statement_timeout_seconds
        )
        async with database.engine.connect():  # an unreachable database is one line, not the queue pool's retries
            pass
        pool = await open_queue(database)
        try:
            options: dict[str, Any] = worker_options(settings) | ({"queues": queues} if queues else {})
            await queue_app.run_worker_async(
                concurrency=concurrency or settings.queue.worker_concurrency, install_signal_handlers=True, **options
            )
        finally:
            await close_posting_sessions()
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
    from northstar.accounts.service import authentication as auth_service
    from northstar.core.context import ClientMeta
    from northstar.core.http import AppError

    async def create(database: Database) -> Any:
        async with database.tenant_transaction() as session:
            return await auth_service.signup(
                session,
                email=email.strip().lower(),
                password=password,
                name=name,
                organization_name=organization,
                invitation_token=None,
                client=ClientMeta(ip="", user_agent="northstar-cli", request_id=""),
            )

    try:
        outcome = _with_database(create)
    except AppError as exc:
        _fail(exc.message)
    console.print(f"[green]Created[/] {email.strip().lower()} (founder of org {outcome.org_id}).")


@app.command()
def seed(
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Also fill the org for the console: 24 months of Stripe synced into the metrics, a social proof "
            "site with three weeks of events, a generated dataset",
        ),
    ] = False,
) -> None:
    """Demo data: an org with a user for every role, projects, teams and an API key (a new org every run)."""
    from northstar.demo.organizations import SeedResult, seed_demo
    from northstar.demo.showcase import seed_showcase

    settings = get_settings()
    started = time.perf_counter()
    if demo:
        with console.status("Seeding the demo organization…"):
            result: SeedResult = _run_async(lambda url: seed_showcase(url, settings)).org
    else:
        result = _run_async(seed_demo)
    table = Table(title=f"Demo organization {escape(result.org_name)} ({result.org_id})")
    table.add_column("role")
    table.add_column("email")
    table.add_column("password")
    for role, email, password in result.users:
        table.add_row(role, email, password)
    console.print(table)
    # never wrapped, so the key and the address can be copied whole from any terminal
    console.print(f"API key (admin): [bold]{result.api_key}[/]", soft_wrap=True)
    if demo:
        console.print(
            f"Console: [bold]{console_url(settings)}[/] (log in with any of the users above) · "
            f"seeded in {time.perf_counter() - started:.1f}s",
            soft_wrap=True,
        )


def console_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/app"


def demo_command() -> str:
    """``northstar seed --demo`` as this installation runs it: ``.venv/bin/northstar`` after ``make run``."""
    script = Path(sys.executable).with_name("northstar")
    if not script.exists():
        return "northstar seed --demo"
    with contextlib.suppress(ValueError):
        script = script.relative_to(Path.cwd())
    return f"{script} seed --demo"


@app.command()
def openapi() -> None:
    """Print the API's OpenAPI document (``northstar openapi > openapi.json`` refreshes the committed one)."""
    from northstar.app import create_app

    typer.echo(openapi_document(create_app()))


def openapi_document(api: Any) -> str:
    """The document as committed: keys sorted, two-space indents, so a change reads as a small diff."""
    return orjson.dumps(api.openapi(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Recompute every org's audit hash chain; exits 1 if any entry was changed or removed."""
    from northstar.audit.service import verify_all

    reports = _run_async(verify_all)
    if as_json:
        typer.echo(
            orjson.dumps(
                [
                    {
                        "orgId": str(report.org_id),
                        "entries": report.entries,
                        "headHash": report.head_hash,
                        "ok": report.ok,
                        "problems": report.problems,
                    }
                    for report in reports
                ],
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        if not all(report.ok for report in reports):
            raise typer.Exit(1)
        return
    table = Table(title="Audit trail")
    for column in ("organization", "entries", "head hash", "status"):
        table.add_column(column)
    for report in reports:
        status = "[green]intact[/]" if report.ok else "[red]" + "; ".join(report.problems[:3]) + "[/]"
        table.add_row(str(report.org_id), str(report.entries), report.head_hash[:16], status)
    console.print(table)
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


ProfileOption = Annotated[str, typer.Option("--profile", envvar="NORTHSTAR_PROFILE", help="Which stored login to use")]
OrgOption = Annotated[
    uuid.UUID | None,
    typer.Option("--org", envvar="NORTHSTAR_ORG", help="Act in this organization instead of the profile's current one"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _print_json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _api(profile: str, org: uuid.UUID | None = None) -> ApiClient:
    """The API client of a stored login; a missing one, or any failure, is one line and exit 1."""
    from northstar.client import ApiClient, ClientError, ProfileStore

    try:
        return ApiClient(ProfileStore(), profile, org_id=str(org) if org else None)
    except ClientError as exc:
        _fail(str(exc))


def _call(work: Callable[[], T]) -> T:
    from northstar.client import ClientError

    try:
        return work()
    except ClientError as exc:
        _fail(str(exc))


@app.command()
def login(
    email: Annotated[str, typer.Option(prompt=True, help="The e-mail you log in with")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, envvar="NORTHSTAR_PASSWORD")],
    url: Annotated[str | None, typer.Option(help="The API's address [default: NORTHSTAR_PUBLIC_URL]")] = None,
    org: Annotated[uuid.UUID | None, typer.Option("--org", help="The organization to act in")] = None,
    code: Annotated[str | None, typer.Option(help="MFA code (asked for when the account needs one)")] = None,
    profile: ProfileOption = "default",
) -> None:
    """Log in to a running Northstar and keep the session (URL, tokens, organization) in a profile readable by you
    only, under $XDG_CONFIG_HOME/northstar/ (~/.config/northstar/)."""
    from northstar.client import LoginChallenge, ProfileStore, verify_mfa
    from northstar.client import login as log_in

    address = url or get_settings().public_url
    try:
        found = _call(lambda: log_in(address, email=email, password=password, org_id=str(org) if org else None))
    except LoginChallenge as challenge:
        mfa_token, answer = challenge.mfa_token, code or typer.prompt("MFA code")
        found = _call(lambda: verify_mfa(address, email=email, mfa_token=mfa_token, code=answer))
    store = ProfileStore()
    store.save(profile, found)
    with _api(profile) as api:
        organization = _call(lambda: api.get("/api/v1/organization"))["data"]
    console.print(
        f"Logged in to {escape(found.url)} as {escape(found.email)}, in {escape(organization['name'])} "
        f"({found.org_id}). Profile {escape(profile)!r} in {escape(str(store.path))}."
    )


@app.command()
def logout(profile: ProfileOption = "default") -> None:
    """End the session on the server and forget the profile."""
    from northstar.client import ProfileStore

    with _api(profile) as api:
        _call(api.logout)
    ProfileStore().remove(profile)
    console.print("Logged out.")


@orgs_app.command("list")
def orgs_list(profile: ProfileOption = "default", as_json: JsonOption = False) -> None:
    """Your organizations, your role in each, and which one commands act in."""
    with _api(profile) as api:
        found = _call(lambda: api.get("/api/v1/organizations"))["data"]
        current = api.org_id
    if as_json:
        _print_json([{**item, "current": item["id"] == current} for item in found])
        return
    table = Table(title="Organizations")
    for column in ("", "id", "name", "role"):
        table.add_column(column, no_wrap=column == "id")
    for item in found:
        table.add_row("*" if item["id"] == current else "", item["id"], escape(item["name"]), item["role"])
    console.print(table)


@orgs_app.command("use")
def orgs_use(
    org: Annotated[uuid.UUID, typer.Argument(help="The organization's id (see `northstar orgs list`)")],
    profile: ProfileOption = "default",
) -> None:
    """Make commands act in another of your organizations."""
    from dataclasses import replace

    from northstar.client import ProfileStore

    with _api(profile, org) as api:
        organization = _call(lambda: api.get("/api/v1/organization"))["data"]  # refused unless you belong to it
        ProfileStore().save(profile, replace(api.profile, org_id=str(org)))
    console.print(f"Commands now act in {escape(organization['name'])} ({org}).")


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="Only jobs in this status")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only jobs of this type")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 20,
    org: OrgOption = None,
    profile: ProfileOption = "default",
    as_json: JsonOption = False,
) -> None:
    """The organization's latest jobs."""
    with _api(profile, org) as api:
        jobs = _call(lambda: api.get("/api/v1/jobs", status=status, type=type_, limit=limit))["data"]
        org_id = api.org_id
    if as_json:
        _print_json(jobs)
        return
    table = Table(title=f"Jobs of {org_id}")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, so it can be pasted into `jobs follow`
    for column in ("type", "status", "progress", "rows", "attempts", "created", "error"):
        table.add_column(column)
    for job in jobs:
        created = dt.datetime.fromisoformat(job["createdAt"])
        table.add_row(
            job["id"],
            job["type"],
            job["status"],
            f"{job['progress']:.0%}",
            _rows(job),
            str(job["attempts"]),
            f"{created:%Y-%m-%d %H:%M:%S}",
            escape(_job_error(job)),
        )
    console.print(table)


def _rows(job: dict[str, Any]) -> str:
    return f"{job['rowsDone']:,}" + (f" of {job['rowsTotal']:,}" if job.get("rowsTotal") is not None else "")


def _job_error(job: dict[str, Any]) -> str:
    """``code: message``, the stable code first so scripts and people can tell failures apart."""
    if not job.get("errorMessage"):
        return ""
    return f"{job['errorCode']}: {job['errorMessage']}" if job.get("errorCode") else str(job["errorMessage"])


@jobs_app.command("follow")
def jobs_follow(
    job_id: Annotated[uuid.UUID, typer.Argument(help="The job to follow")],
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between updates")] = 0.5,
    org: OrgOption = None,
    profile: ProfileOption = "default",
) -> None:
    """Follow one job with a progress bar until it finishes; exits 1 unless it completed."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeElapsedColumn(),
    )
    with _api(profile, org) as api, Progress(*columns, console=console) as progress:
        bar = progress.add_task(str(job_id), total=1.0, rows="0")
        while True:
            job = _call(lambda: api.get(f"/api/v1/status/{job_id}"))["data"]
            progress.update(
                bar, completed=job["progress"], rows=_rows(job), description=f"{job['type']} {job['status']}"
            )
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            time.sleep(interval)
    if job["status"] != "completed":
        _fail(f"job {job['status']}: {escape(_job_error(job))}")
    console.print(f"[green]completed[/] {escape(orjson.dumps(job['result']).decode())}")


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

    cipher = auth_keys(get_settings()).cipher

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


search_app = typer.Typer(
    help="The search index (run where the platform's database is configured).", no_args_is_help=True
)
app.add_typer(search_app, name="search")


@search_app.command("reindex")
def search_reindex(
    org: Annotated[uuid.UUID | None, typer.Option("--org", help="Only this organization (default: every one)")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the jobs with a progress bar until they finish")] = True,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between updates")] = 0.5,
) -> None:
    """Rebuild the search index: one queued job per organization, run by the platform's worker."""
    from procrastinate.exceptions import AlreadyEnqueued
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlalchemy import text

    from northstar.core.db import list_tenant_ids
    from northstar.core.queue import enqueue_named

    async def queue(database: Database) -> tuple[list[uuid.UUID], dt.datetime]:
        org_ids = [org] if org else await list_tenant_ids(database)
        async with database.tenant_transaction() as session:
            queued_at: dt.datetime = await session.scalar(text("SELECT now()"))
        for org_id in org_ids:
            async with database.tenant_transaction(org_id=org_id) as session:
                with contextlib.suppress(AlreadyEnqueued):  # one is waiting already: it will do
                    async with session.begin_nested():
                        await enqueue_named(
                            session, "core.search_reindex", org_id=org_id, queueing_lock=f"core.search_reindex:{org_id}"
                        )
        return org_ids, queued_at

    async def progress_of(database: Database, org_ids: list[uuid.UUID], since: dt.datetime) -> tuple[int, int, int]:
        """Documents done and to do, and how many orgs finished since ``since``."""
        done = total = finished = 0
        for org_id in org_ids:
            async with database.tenant_transaction(org_id=org_id) as session:
                row = (
                    await session.execute(
                        text("SELECT reindex_total, reindex_done, reindexed_at FROM core.search_settings"
                             " WHERE org_id = :org_id AND reindex_started_at >= :since"),
                        {"org_id": org_id, "since": since},
                    )
                ).first()  # fmt: skip
            if row is not None:
                done, total = done + row.reindex_done, total + (row.reindex_total or 0)
                finished += row.reindexed_at is not None
        return done, total, finished

    async def run(database: Database) -> int:
        org_ids, queued_at = await queue(database)
        console.print(f"Queued a reindex of {len(org_ids)} organization(s).")
        if not wait:
            return 0
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task("waiting for the worker", total=None)
            while True:
                done, total, finished = await progress_of(database, org_ids, queued_at)
                progress.update(
                    bar, completed=done, total=total or None, description=f"{finished}/{len(org_ids)} orgs reindexed"
                )
                if finished == len(org_ids):
                    return done
                await asyncio.sleep(interval)

    done = _with_database(run)
    if wait:
        console.print(f"[green]reindexed[/] {done:,} documents")
