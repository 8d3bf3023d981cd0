"""Run the real daemons as subprocesses, the way an operator would, and kill them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemaless.testing import MySQLServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rounds(request: pytest.FixtureRequest) -> int:
    """How many times a bounded fault test repeats its rounds (`pytest --rounds 10`)."""
    count = int(request.config.getoption("rounds", default=1))
    if count < 1:
        raise pytest.UsageError("--rounds must be at least 1")
    return count


@pytest.fixture(scope="module")
def private_server() -> Iterator[MySQLServer]:
    """A mariadbd of the test module's own, to kill (``kill``/``start``) and stop
    (``pause``/``resume``); each test leaves it running. Under CI it must start."""
    server = MySQLServer()
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a MySQL server, and CI must not skip: {exc}")
        pytest.skip(f"cannot start a MySQL server: {exc}")
    yield server
    server.stop()


class Daemon:
    """`python -m schemaless ARGS --url URL`, its output collected by a thread (no full pipe)."""

    def __init__(self, *args: str, url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "schemaless", *args, f"--url={url}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"exited before {text!r}:\n{''.join(self.lines)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {timeout} s:\n{''.join(self.lines)}")
            time.sleep(0.01)

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def cli() -> Iterator[Callable[..., Daemon]]:
    """Start daemons; any still running at the end of the test are killed."""
    started: list[Daemon] = []

    def start(*args: str, url: str) -> Daemon:
        started.append(Daemon(*args, url=url))
        return started[-1]

    yield start
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.kill()
        daemon.wait(timeout=10)
