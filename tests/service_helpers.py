"""A ``corekit worker`` subprocess read line by line, and a redis-server of a
test's own that it may stop and start again on the same port (never the
session's shared one)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from helpers import ROOT, LineReader
from servers import _wait_listening, free_port, require_binary


class WorkerProcess(LineReader):
    """``python -m corekit ARGS`` in *cwd* (which holds the app's module),
    stdout and stderr merged and read by a thread."""

    def __init__(self, cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        super().__init__([sys.executable, "-m", "corekit", *args], cwd,
                         {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)]),
                          **(env or {})})

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class PrivateRedis:
    """A redis-server on loopback for one test, in *directory*; `stop` and
    `start` keep its port, so a worker sees its broker go and come back."""

    def __init__(self, directory: Path) -> None:
        self.binary = require_binary("redis-server", "redis-server")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                 "--protected-mode", "no"], stdout=log, stderr=subprocess.STDOUT)
        _wait_listening(self.process, [self.port])
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_until(predicate: Callable[[], Any], timeout: float = 20,
               what: str = "condition") -> Any:
    """*predicate*'s first true value, polled every 50 ms until *timeout*."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not true within {timeout} s")
        time.sleep(0.05)
