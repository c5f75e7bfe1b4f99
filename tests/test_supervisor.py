"""The worker supervisor of `northstar run`: restarts with exponential backoff, capped, reset after a healthy run."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from structlog.testing import capture_logs

from northstar.supervisor import Supervisor


def _child(code: str) -> Callable[[], subprocess.Popen[bytes]]:
    return lambda: subprocess.Popen([sys.executable, "-c", code])


def _delays(start: Callable[[], subprocess.Popen[bytes]], count: int, **policy: float) -> list[Any]:
    """The restart delays the supervisor chose for the first ``count`` deaths."""
    with capture_logs() as logs:
        supervisor = Supervisor(start, **policy)
        try:
            deadline = time.monotonic() + 60
            while sum(log["event"] == "worker_exited" for log in logs) < count:
                assert time.monotonic() < deadline, logs
                time.sleep(0.05)
        finally:
            supervisor.stop()
    return [log["restartInSeconds"] for log in logs if log["event"] == "worker_exited"][:count]


def test_a_worker_that_keeps_dying_is_restarted_ever_later_up_to_the_cap() -> None:
    delays = _delays(
        _child("raise SystemExit(3)"), 5, restart_delay_seconds=0.05, max_delay_seconds=0.2, healthy_seconds=60
    )
    assert delays == [0.05, 0.1, 0.2, 0.2, 0.2]


def test_a_worker_that_ran_healthily_is_restarted_after_the_first_delay_again() -> None:
    delays = _delays(
        _child("import time; time.sleep(0.3)"), 3, restart_delay_seconds=0.05, max_delay_seconds=1, healthy_seconds=0.2
    )
    assert delays == [0.05, 0.05, 0.05]


def test_stop_ends_the_worker_and_restarts_nothing() -> None:
    supervisor = Supervisor(
        _child("import time; time.sleep(60)"), restart_delay_seconds=0.05, max_delay_seconds=0.05, healthy_seconds=60
    )
    process = supervisor.process
    supervisor.stop()
    assert process.poll() is not None
    assert supervisor.restarts == 0 and supervisor.process is process
