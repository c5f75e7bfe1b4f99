"""A bad configuration, an unreachable database or a busy port: one clear line on stderr, a non-zero exit code.

Run as a user runs the CLI, in its own process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port


def _northstar(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {
        name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL")
    }
    return subprocess.run(
        [sys.executable, "-m", "northstar", *args],
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str], *names: str) -> str:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("serve", "NORTHSTAR_HTTP__PORT", "abc"),
        ("run", "NORTHSTAR_HTTP__CORS_ORIGINS", "[not json"),
        ("migrate", "DATABASE_URL", "not a database url"),
        ("worker", "DATABASE_URL", "mysql://user:secret@localhost/shop"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(command: str, variable: str, value: str) -> None:
    line = _one_line(_northstar(command, **{variable: value}), variable)
    assert "secret" not in line  # URLs may hold passwords: they are never repeated


@pytest.mark.parametrize("command", ["migrate", "worker"])
def test_an_unreachable_database_is_one_line_naming_it(command: str) -> None:
    line = _one_line(
        _northstar(command, DATABASE_URL=f"postgresql://shop:hunter2@127.0.0.1:{free_port()}/shop"),
        "DATABASE_URL",
        "cannot reach the database",
    )
    assert "hunter2" not in line


def test_a_port_in_use_is_one_line_and_never_ready(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = _northstar(
            "run", DATABASE_URL=database_url, NORTHSTAR_HTTP__PORT=port, NORTHSTAR_DATA_DIR=str(tmp_path)
        )
    _one_line(result, f"127.0.0.1:{port}", "NORTHSTAR_HTTP__PORT")
    assert "ready" not in result.stdout
