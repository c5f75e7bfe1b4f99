"""Keep one child process running, as ``northstar run`` does with its queue worker.

A worker that dies (killed, out of memory, crashed on a lost database) is started again after a delay that doubles
with each death in a row (``restart_delay_seconds``, then twice and four times that … up to ``max_delay_seconds``),
so a worker that cannot start does not spin. A worker that ran for ``healthy_seconds`` before dying starts the count
afresh. The jobs it held are taken up again once its heartbeat is stale (``queue.recover_stalled_jobs``).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("northstar.supervisor")


class Supervisor:
    """Runs ``start()`` now and again whenever its process exits, until ``stop``; watched from a daemon thread."""

    def __init__(
        self,
        start: Callable[[], subprocess.Popen[bytes]],
        *,
        restart_delay_seconds: float,
        max_delay_seconds: float,
        healthy_seconds: float,
    ) -> None:
        self.start = start
        self.restart_delay_seconds = restart_delay_seconds
        self.max_delay_seconds = max_delay_seconds
        self.healthy_seconds = healthy_seconds
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.process = start()
        self.restarts = 0
        self.thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self.thread.start()

    def delay(self, failures: int) -> float:
        """Seconds to wait before the restart that follows ``failures`` quick deaths in a row (1 or more)."""
        return float(min(self.max_delay_seconds, self.restart_delay_seconds * 2 ** (failures - 1)))

    def _watch(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            process = self.process
            while process.poll() is None:
                if self.stopping.wait(0.2):
                    return
            failures = 1 if time.monotonic() - started >= self.healthy_seconds else failures + 1
            wait = self.delay(failures)
            log.warning("worker_exited", pid=process.pid, code=process.returncode, restartInSeconds=wait)
            if self.stopping.wait(wait):
                return
            with self.lock:
                if self.stopping.is_set():
                    return
                self.process = self.start()
                self.restarts += 1
            log.info("worker_restarted", pid=self.process.pid, restarts=self.restarts)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop restarting, then ask the current process to finish (SIGTERM), killing it after ``timeout``."""
        with self.lock:
            self.stopping.set()
            process = self.process
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.thread.join(timeout=1.0)
