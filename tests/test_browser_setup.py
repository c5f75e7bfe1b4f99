"""A machine without Chromium: `make test` installs it (as root, with apt-get) or says how in one line before any
test runs (``.ci/chromium``), and pytest run directly stops at collection with that line, instead of an error per
browser test. ``NORTHSTAR_TEST_CHROMIUM`` points the tests at a browser that is not on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.browser import MISSING, chromium

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".ci" / "chromium"
BROWSER_TESTS = ["tests/datasets/test_queue_page.py", "tests/socialproof/test_widget.py"]


def _environment(path: Path, **extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "NORTHSTAR_TEST_CHROMIUM"}
    return {**env, "PATH": str(path), **extra}


def _pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("setting", ["no chromium on PATH", "NORTHSTAR_TEST_CHROMIUM names no program"])
def test_pytest_stops_before_any_test_in_one_line(tmp_path: Path, setting: str) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    extra = {"NORTHSTAR_TEST_CHROMIUM": str(tmp_path / "chromium")} if "NORTHSTAR" in setting else {}
    result = _pytest(_environment(empty, **extra), *BROWSER_TESTS)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert [line for line in output.splitlines() if MISSING in line], output
    assert " error" not in output and "passed" not in output and "failed" not in output, output


@pytest.mark.skipif(chromium() is None, reason="needs a Chromium to point NORTHSTAR_TEST_CHROMIUM at")
def test_a_browser_named_by_the_variable_is_used_when_path_has_none(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = _pytest(_environment(empty, NORTHSTAR_TEST_CHROMIUM=str(chromium())), "--collect-only", *BROWSER_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def _script(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [*prefix, bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_make_test_refuses_a_variable_that_names_no_program(tmp_path: Path) -> None:
    result = _script(_environment(Path(os.environ["PATH"]), NORTHSTAR_TEST_CHROMIUM=str(tmp_path / "nothing")))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "NORTHSTAR_TEST_CHROMIUM" in result.stderr
    assert "sudo apt-get install chromium" in result.stderr


@pytest.mark.skipif(chromium() is None, reason="needs Chromium")
def test_make_test_goes_on_when_chromium_is_there() -> None:
    assert _script(dict(os.environ)).returncode == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("apt-get") is None,
    reason="drops from root to nobody with setpriv, where apt-get exists",
)
def test_make_test_says_how_to_install_chromium_when_it_cannot() -> None:
    """Not root, and no Chromium on PATH: no install is tried (apt-get is there, but would fail), one line says how."""
    with tempfile.TemporaryDirectory() as directory:
        tools = Path(directory)
        tools.chmod(0o755)  # the unprivileged user must read it as PATH
        for tool in ("id", "apt-get"):
            found = shutil.which(tool)
            assert found
            (tools / tool).symlink_to(found)
        result = _script(
            _environment(tools), str(shutil.which("setpriv")), "--reuid=65534", "--regid=65534", "--clear-groups"
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        "The browser tests need Chromium, which is not installed: install it (sudo apt-get "
        "install chromium) or set NORTHSTAR_TEST_CHROMIUM to a Chromium binary\n"
    )
