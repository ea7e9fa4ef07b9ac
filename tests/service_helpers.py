"""A ``corekit worker`` subprocess read line by line, and a redis-server of a
test's own that it may stop and start again on the same port (never the
session's shared one)."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from helpers import ROOT
from servers import _wait_listening, free_port, require_binary


class WorkerProcess:
    """``python -m corekit ARGS`` in *cwd* (which holds the app's module),
    stdout and stderr merged and read by a thread."""

    def __init__(self, cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), str(ROOT)]),
                    **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "corekit", *args], cwd=cwd,
                                     env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    def wait_for(self, pattern: str, timeout: float = 30) -> str:
        """The next line matching *pattern* (lines before it are passed over)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n"
                                     f"{self.output}") from None
            if line is None:
                self._new.put(None)
                raise AssertionError(f"exited ({self.proc.wait()}) before a line matching "
                                     f"{pattern!r}:\n{self.output}")
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while self._new.get(timeout=max(0.01, deadline - time.monotonic())) is not None:
            pass
        self._new.put(None)
        return code

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def output(self) -> str:
        return "".join(self.lines)


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
