"""Shared by the web monitor's tests: HTTP calls, polling, and a running
worker with events plus a monitor in front of it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from corekit import Corekit
from corekit.monitor.auth import Auth
from corekit.monitor.server import Monitor
from corekit.testing import start_worker
from corekit.worker import Worker


class Response:
    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(NoRedirect)


def call(url: str, method: str = "GET", body: Any = None,
         headers: Mapping[str, str] | None = None, raw: bytes | None = None) -> Response:
    """One request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = dict(headers or {})
    if body is not None:
        all_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with _opener.open(request, timeout=15) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:  # headers: case-insensitive, as HTTP's are
        return Response(exc.code, exc.headers, exc.read())


def wait_until(predicate: Callable[[], Any], timeout: float = 15, what: str = "condition"
               ) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def define_tasks(app: Corekit) -> dict[str, Any]:
    """add, boom (always fails), flaky (fails on its first call), block
    (waits for the returned gate), spawn (sends an add as its child)."""
    gate = threading.Event()
    calls: list[int] = []

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.boom")
    def boom(word: str) -> None:
        raise ValueError(f"boom {word}")

    @app.task(name="proj.flaky")
    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return n * 10

    @app.task(name="proj.block")
    def block() -> str:
        gate.wait(30)
        return "unblocked"

    @app.task(name="proj.spawn")
    def spawn() -> str:
        return add.delay(1, 1).id

    return {"add": add, "boom": boom, "flaky": flaky, "block": block, "spawn": spawn,
            "gate": gate}


@contextmanager
def monitored(app: Corekit, *, auth: Auth | None = None, concurrency: int = 1,
              pool: str = "threads") -> Iterator[tuple[Worker, Monitor]]:
    """A worker sending task events (heartbeats every 0.5 s) and a monitor
    on a free loopback port, inspecting every 0.3 s, once done already."""
    with start_worker(app, pool=pool, concurrency=concurrency, task_events=True,
                      heartbeat_interval=0.5) as worker, \
            Monitor(app, port=0, auth=auth, inspect_interval=0.3, inspect_timeout=0.3,
                    reply_timeout=3.0) as monitor:
        assert monitor.collector.wait_inspected(15), "the monitor never inspected the workers"
        yield worker, monitor


def task_state(monitor: Monitor, task_id: str) -> str | None:
    response = call(f"{monitor.url}/api/tasks/{task_id}")
    return response.json["state"] if response.status == 200 else None


@contextmanager
def cli_monitor(broker_url: str, *args: str, env: Mapping[str, str] | None = None,
                preexec_fn: Callable[[], None] | None = None
                ) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``corekit monitor`` as its own process (port 0): the process and its
    base URL, from the banner; stopped with SIGINT, as a user would."""
    command = [sys.executable, "-m", "corekit", "-b", broker_url, "--result-backend",
               broker_url, "monitor", "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})},
                            preexec_fn=preexec_fn)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        if not banner.startswith("corekit monitor on http://"):
            proc.kill()
            raise AssertionError(f"no banner: {banner!r} {proc.communicate(timeout=20)!r}")
        yield proc, banner.split()[3]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def proc_status(pid: int, field: str) -> int:
    """A number from /proc/PID/status: ``Threads``, ``VmRSS`` (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == field:
            return int(value.split()[0])
    raise KeyError(field)
