"""A project with periodic tasks, beats run as real ``corekit beat`` processes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from corekit import Corekit
from corekit.messages import Message

PROJ = '''
import os
from corekit import Corekit
from corekit.messages import Message
if os.environ.get("TEST_DJANGO_DB"):  # the django-db store: Django on that database
    from django_setup import set_django_up  # tests/, on PYTHONPATH
    set_django_up(os.environ["TEST_DJANGO_DB"], migrate=False)
BROKER = os.environ["TEST_BROKER"]
BACKEND = os.environ.get("TEST_BACKEND", BROKER)
app = Corekit("proj", broker=BROKER, backend=BACKEND)
app.conf.beat_store_url = os.environ.get("TEST_STORE")
app.conf.beat_lease_timeout = float(os.environ.get("TEST_LEASE", "2.0"))
app.conf.beat_schedule = {
    "every-second": {"task": "proj.tick", "schedule": 1.0, "args": ("s",)},
    "every-half": {"task": "proj.tick", "schedule": 0.5, "args": ("h",)},
}

@app.task
def tick(what):
    return what
'''


def wait_until(predicate: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.02)


class BeatProject:
    """A ``proj`` module in *path* and the beats started from it."""

    def __init__(self, path: Path, broker: str, backend: str | None = None,
                 lease: float = 2.0, store: str | None = None,
                 django_db: str | None = None) -> None:
        """*store*: ``beat_store_url`` (None: the broker's or backend's);
        *django_db*: the SQLite file of the ``django-db`` store, where this
        process has set Django up on it."""
        self.path = path
        self.env = {**os.environ, "TEST_BROKER": broker, "TEST_LEASE": str(lease)}
        if backend:
            self.env["TEST_BACKEND"] = backend
        if store:
            self.env["TEST_STORE"] = store
        if django_db:
            self.env["TEST_DJANGO_DB"] = django_db
            tests = str(Path(__file__).resolve().parents[2])
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (tests, self.env.get("PYTHONPATH")) if p)
        self.beats: dict[str, subprocess.Popen[str]] = {}
        (path / "proj.py").write_text(PROJ)
        #: the test's own view of the same broker and store
        self.app = Corekit("proj", broker=broker, backend=backend or broker)
        self.app.conf.beat_store_url = store

    def beat(self, name: str) -> subprocess.Popen[str]:
        log = open(self.path / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "beat", "-l",
                                 "info", "-n", name], cwd=self.path, env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)
        log.close()
        self.beats[name] = proc
        wait_until(lambda: "started" in self.log(name) or proc.poll() is not None,
                   what=f"{name} to start")
        assert proc.poll() is None, self.log(name)
        return proc

    def log(self, name: str) -> str:
        return (self.path / f"{name}.log").read_text()

    def store(self) -> Any:
        from corekit.schedules.periodic import open_store

        return open_store(self.app)

    def leader(self, store: Any) -> str | None:
        lease = store.lease()
        return lease[0] if lease else None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.beats[name]
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.beats.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.beats.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def published_ids(self, queue: str = "celery") -> Counter[str]:
        """Every task message on the broker, by task id (consumed and acked)."""
        return Counter(m.headers["id"] for m in self.published(queue))

    def published(self, queue: str = "celery") -> list[Message]:
        """Every task message on the broker (consumed and acked)."""
        transport = self.app.connection()
        messages: list[Message] = []
        try:
            while True:
                batch = transport.fetch([queue], 1000, 1.0)
                if not batch:
                    return messages
                messages += batch
                transport.ack(batch)
        finally:
            transport.close()

    def run_on_a_worker(self, messages: list[Message]) -> Counter[str]:
        """Publish *messages* again as they were and let a worker of this
        project take them: how many times each task id ran.  Returns once
        every message was run or dropped by the worker's run gate."""
        import logging

        from corekit.testing import start_worker

        ran: Counter[str] = Counter()
        dropped: list[str] = []

        class Drops(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "second copy of periodic task" in record.getMessage():
                    dropped.append(record.getMessage())

        @self.app.task(name="proj.tick", bind=True)
        def tick(task: Any, what: str) -> str:
            ran[task.request.id] += 1
            return what

        transport = self.app.connection()
        try:
            transport.publish([Message(
                body=m.body, headers=m.headers, properties=m.properties,
                content_type=m.content_type, content_encoding=m.content_encoding,
                queue=m.queue, exchange=m.exchange, routing_key=m.routing_key,
                priority=m.priority) for m in messages])
        finally:
            transport.close()
        handler, log = Drops(), logging.getLogger("corekit.worker")
        log.addHandler(handler)
        level = log.level
        log.setLevel(logging.INFO)
        try:
            with start_worker(self.app, concurrency=4):
                wait_until(lambda: sum(ran.values()) + len(dropped) >= len(messages),
                           what="every message to be run or dropped")
        finally:
            log.removeHandler(handler)
            log.setLevel(level)
        return ran
