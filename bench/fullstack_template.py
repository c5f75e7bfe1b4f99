"""The FastAPI full-stack template (github.com/fastapi/full-stack-fastapi-template) beside Northstar in one run.

Nothing of the template is kept in this repository: ``NORTHSTAR_BENCH_TEMPLATE`` names a local clone (a checkout,
or a git directory without work tree, of which ``NORTHSTAR_BENCH_TEMPLATE_REF`` picks the commit: its newest
versions need Python 3.14). Its ``backend/`` is exported to a temporary directory, its dependencies are
installed once into a virtualenv of its own (``NORTHSTAR_BENCH_TEMPLATE_VENV``, made with
``NORTHSTAR_BENCH_TEMPLATE_PYTHON``), it is migrated with its own Alembic scripts into a fresh database on the same
PostgreSQL server as Northstar, gets its superuser (``app/initial_data.py``) and 20 items, and is served by one
uvicorn process, as its Dockerfile runs it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from bench.server import free_port, fresh_database, stop

ITEMS = 20
SUPERUSER = "bench-template@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account


def source() -> tuple[Path | None, str]:
    """The template clone, or ``None`` and why it is skipped."""
    configured = os.environ.get("NORTHSTAR_BENCH_TEMPLATE")
    if not configured:
        return None, "NORTHSTAR_BENCH_TEMPLATE is unset (a local clone of fastapi/full-stack-fastapi-template)"
    path = Path(configured)
    if not path.exists():
        return None, f"{path} does not exist"
    return path, ""


def _export_backend(clone: Path, target: Path) -> Path:
    """``backend/`` of a checkout, or of ``NORTHSTAR_BENCH_TEMPLATE_REF`` (HEAD) of a git directory without work
    tree."""
    if (clone / "backend").is_dir():
        shutil.copytree(clone / "backend", target / "backend")
    else:
        archive = target / "backend.tar"
        subprocess.run(["git", f"--git-dir={clone}", "archive", "-o", str(archive), ref(), "backend"], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    backend = target / "backend"
    (backend / "app" / "frontend").mkdir(exist_ok=True)  # served at / by its app; the bench needs no pages
    (backend / "app" / "frontend" / "index.html").write_text("<!doctype html>")
    return backend


def ref() -> str:
    return os.environ.get("NORTHSTAR_BENCH_TEMPLATE_REF", "HEAD")


def _virtualenv(backend: Path) -> Path:
    """A virtualenv with the template's dependencies (installed once, kept for later runs while they are the
    same)."""
    venv = Path(
        os.environ.get("NORTHSTAR_BENCH_TEMPLATE_VENV", Path(tempfile.gettempdir()) / "northstar-bench-template-venv")
    )
    python = venv / "bin" / "python"
    marker = venv / ".northstar-bench-installed"
    dependencies = tomllib.loads((backend / "pyproject.toml").read_text())["project"]["dependencies"]
    if not marker.exists() or marker.read_text() != "\n".join(dependencies):
        if not python.exists():
            interpreter = os.environ.get("NORTHSTAR_BENCH_TEMPLATE_PYTHON", "python3")
            subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *dependencies], check=True)
        marker.write_text("\n".join(dependencies))
    return python


@dataclass
class Template:
    base_url: str
    token: str


@contextmanager
def running_template(clone: Path, server_url: str) -> Iterator[Template]:
    """The template migrated, seeded and served on a free port; stopped and its database dropped afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="northstar-bench-template-") as scratch,
        fresh_database(server_url, "bench_template") as database_url,
    ):
        backend = _export_backend(clone, Path(scratch))
        python = _virtualenv(backend)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("NORTHSTAR_", "DATABASE_"))}
        url = make_url(database_url)
        env.update(
            DATABASE_URL=database_url,
            SECRET_KEY=secrets.token_urlsafe(32),
            PROJECT_NAME="Template",
            FIRST_SUPERUSER=SUPERUSER,
            FIRST_SUPERUSER_PASSWORD=PASSWORD,
            FASTAPI_ENV="development",
            ENVIRONMENT="local",
            PYTHONPATH=str(backend),
            # the same database as its older versions name it
            POSTGRES_SERVER=url.host or "",
            POSTGRES_PORT=str(url.port or 5432),
            POSTGRES_USER=url.username or "",
            POSTGRES_PASSWORD=url.password or "",
            POSTGRES_DB=url.database or "",
        )
        bin_dir = python.parent
        subprocess.run(
            [str(bin_dir / "alembic"), "upgrade", "head"], cwd=backend, env=env, check=True, capture_output=True
        )
        subprocess.run([str(python), "app/initial_data.py"], cwd=backend, env=env, check=True, capture_output=True)
        port = free_port()
        process = subprocess.Popen(
            [
                str(python),
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=backend,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            token = _seed(base_url, process)
            yield Template(base_url, token)
        finally:
            stop(process)


def _seed(base_url: str, process: subprocess.Popen[bytes]) -> str:
    """Its superuser's token, once it answers, and ``ITEMS`` items of theirs."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"the template exited with {process.returncode}")
            try:
                login = client.post("/api/v1/login/access-token", data={"username": SUPERUSER, "password": PASSWORD})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise TimeoutError("the template did not start")
        login.raise_for_status()
        token = str(login.json()["access_token"])
        for number in range(ITEMS):
            client.post(
                "/api/v1/items/", json={"title": f"Item {number}"}, headers={"Authorization": f"Bearer {token}"}
            ).raise_for_status()
    return token
