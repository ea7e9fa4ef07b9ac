"""Helpers shared by test modules (import as ``from helpers import ...``)."""
from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import pytest

import corekit._speedups as speedups

ROOT = Path(__file__).resolve().parent.parent

#: The hot path's two implementations, for tests that run both side by side.
PYTHON = speedups.load("python")
try:
    CYTHON = speedups.load("cython")
except ImportError:
    CYTHON = None
IMPLS = [pytest.param(PYTHON, id="python"),
         pytest.param(CYTHON, id="cython",
                      marks=pytest.mark.skipif(CYTHON is None, reason="extensions not built"))]
needs_both = pytest.mark.skipif(CYTHON is None, reason="extensions not built: nothing to compare")


def run_cli(*args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m corekit ARGS`` and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "corekit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


class LineReader:
    """A subprocess (*argv* in *cwd* with *env*), stdout and stderr merged,
    read line by line by a thread: `wait_for` a line, `output` so far."""

    def __init__(self, argv: Sequence[str], cwd: Path | str, env: Mapping[str, str],
                 **popen: Any) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, **popen)
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
                raise AssertionError(f"{self.argv}: no line matching {pattern!r} within "
                                     f"{timeout} s:\n{self.output}") from None
            if line is None:
                self._new.put(None)
                raise AssertionError(f"{self.argv} exited ({self.proc.wait()}) before a "
                                     f"line matching {pattern!r}:\n{self.output}")
            if re.search(pattern, line):
                return line

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit and the last line; the exit status."""
        code = self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while self._new.get(timeout=max(0.01, deadline - time.monotonic())) is not None:
            pass
        self._new.put(None)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)
