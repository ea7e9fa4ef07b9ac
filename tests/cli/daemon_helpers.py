"""A project on a SQLite broker file, and service commands started in it
as real processes (``corekit ... --detach`` or in the foreground), for the
daemon tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from helpers import ROOT

PROJ = '''
import os, sys, time
from pathlib import Path
from corekit import Corekit, signals
from corekit.log import get_task_logger

VERSION = "one"
HERE = os.path.dirname(os.path.abspath(__file__))
app = Corekit("proj", broker="sqlite://" + os.path.join(HERE, "broker.db"))
logger = get_task_logger(__name__)

if os.environ.get("TEST_PRELOAD"):  # what a worker imports, before it drops privileges
    for name in Path(os.environ["TEST_PRELOAD"]).read_text().split():
        try:
            __import__(name)
        except Exception:
            pass

if os.environ.get("TEST_RECORD"):  # which modules a worker ended up importing
    @signals.worker_shutdown.connect
    def record(sender=None, **kwargs):
        Path(os.environ["TEST_RECORD"]).write_text("\\n".join(sorted(sys.modules)))


@app.task
def add(x, y):
    return x + y


@app.task
def version():
    return VERSION


@app.task
def sleepy(marker, seconds):
    Path(marker).write_text("started")
    time.sleep(seconds)
    return "slept"


@app.task
def oops():
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("oops")
    return "logged"


@app.task
def loud(x):
    logger.warning("loud %s", x)
    print("printed", x)
    return x
'''

#: Seconds any wait in these tests may take before it fails.
WAIT = 30.0


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Project:
    """``proj.py`` in *path*, its broker file, the CLI run there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "proj.py").write_text(PROJ)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT)]),
                    "PYTHONDONTWRITEBYTECODE": "1"}
        self.pids: list[int] = []
        self.procs: list[subprocess.Popen[str]] = []
        self._app: Any = None

    def run(self, *args: str, cwd: Path | None = None, timeout: float = WAIT,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``corekit -A proj ARGS``, to its end (with --detach: the parent's end)."""
        return subprocess.run([sys.executable, "-m", "corekit", "-A", "proj", *args],
                              cwd=cwd or self.path, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)

    def detach(self, *args: str, pidfile: str = "d.pid", expanded: str | None = None,
               **kw: Any) -> int:
        """Run a detached service; its pid, read from *pidfile* (*expanded*:
        its name once ``%n``... are expanded)."""
        out = self.run(*args, "--detach", f"--pidfile={pidfile}", **kw)
        assert out.returncode == 0, (out.stdout, out.stderr)
        pid = int((self.path / (expanded or pidfile)).read_text())
        self.pids.append(pid)
        return pid

    def popen(self, *args: str, output: Path | None = None) -> subprocess.Popen[str]:
        """A foreground command; its stdout and stderr to *output*."""
        with open(output or os.devnull, "w") as out:
            proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", *args],
                                    cwd=self.path, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        return proc

    @property
    def app(self) -> Any:
        if self._app is None:
            from corekit import Corekit

            self._app = Corekit("test", broker=f"sqlite://{self.path / 'broker.db'}")
        return self._app

    def send(self, name: str, *args: Any) -> Any:
        return self.app.send_task(f"proj.{name}", args=list(args))

    def stop(self, pid: int, signum: int = signal.SIGTERM) -> None:
        os.kill(pid, signum)
        wait_until(lambda: not alive(pid), f"process {pid} to exit")

    def close(self) -> None:
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
        if self._app is not None:
            self._app.close()


def read_log(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def wait_for_line(path: Path, text: str, start: int = 0, timeout: float = WAIT) -> str:
    """The log *path* once it holds *text* after character *start*."""
    return wait_until(lambda: (lambda log: log if text in log[start:] else "")(read_log(path)),
                      f"{text!r} in {path}", timeout)


def json_records(paths: Iterator[Path] | list[Path]) -> list[dict[str, Any]]:
    """Every line of *paths*, each parsed as one JSON object."""
    records = []
    for path in paths:
        for line in path.read_text().splitlines():
            records.append(json.loads(line))
    return records
