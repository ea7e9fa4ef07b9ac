"""The two sides ``bench_vs_celery.py`` compares: each system's project
module (a no-op and an ``add`` task, and a ``worker_ready`` hook that writes
the worker's own time to a file), its worker as a subprocess, and the few
client-side steps that differ between Celery and corekit (closing an app,
purging a queue, checking the stored results).  What is measured, and the
table, are in ``bench_vs_celery.py``.
"""
from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_HOOK = '''
def _write_ready(**kwargs):
    path = os.environ.get("BENCH_READY_FILE")
    if path:
        now = time.time()
        with open(path + ".tmp", "w") as out:
            out.write(repr(now))
        os.replace(path + ".tmp", path)


worker_ready.connect(_write_ready)

if os.environ.get("BENCH_BROKER"):
    app, noop, add = make_app(os.environ["BENCH_BROKER"], os.environ["BENCH_BACKEND"])
'''

CELERY_PROJ = '''
import os
import time

from celery import Celery
from celery.signals import worker_ready


def make_app(broker, backend):
    app = Celery("benchc", broker=broker, backend=backend)
    app.conf.broker_connection_retry_on_startup = True

    @app.task
    def noop():
        return None

    @app.task
    def add(x, y):
        return x + y

    return app, noop, add
''' + READY_HOOK

COREKIT_PROJ = '''
import os
import time

from corekit import Corekit
from corekit.signals import worker_ready


def make_app(broker, backend):
    app = Corekit("benchk", broker=broker, backend=backend)

    @app.task
    def noop():
        return None

    @app.task
    def add(x, y):
        return x + y

    return app, noop, add
''' + READY_HOOK

POOLS = {"solo": 1, "threads": 4, "prefork": 2}
POLL = 0.01


class WrongResult(Exception):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Target:
    """Where one system runs for one (broker, pool, repetition)."""

    broker: str            # redis | amqp | sqlite
    broker_url: str
    backend_url: str
    results_redis: str     # the Redis results database, "" on sqlite
    sqlite_path: Path | None = None


class Worker:
    """A worker subprocess, in a process group of its own, and its ready time."""

    def __init__(self, system: "System", target: Target, pool: str, tag: str) -> None:
        self.system, self.target = system, target
        self.ready_file = system.workdir / f"ready-{tag}"
        self.log_path = system.workdir / f"worker-{tag}.log"
        self.ready_file.unlink(missing_ok=True)
        env = {**os.environ, "BENCH_BROKER": target.broker_url,
               "BENCH_BACKEND": target.backend_url, "BENCH_READY_FILE": str(self.ready_file)}
        with self.log_path.open("wb") as out:
            self.spawned = time.time()
            self.process = subprocess.Popen(system.worker_cmd(pool), cwd=system.workdir, env=env,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def wait_ready(self) -> float:
        """The worker's own time.time() at its worker_ready signal."""
        while not self.ready_file.exists():
            self.check_alive()
            time.sleep(POLL / 2)
        return float(self.ready_file.read_text())

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.system.name} worker exited ({self.process.returncode}); "
                               f"its log ends:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (warm shutdown), then SIGKILL to its whole process group."""
        proc = self.process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                log(f"{self.system.name} worker ignored SIGTERM for 30 s; killing it")
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # prefork children left behind, if any
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(10)


class System:
    """One side of the comparison: its project module and worker command."""

    def __init__(self, name: str, module: str, workdir: Path) -> None:
        self.name, self.module, self.workdir = name, module, workdir
        self.proj = importlib.import_module(module)
        self.canvas = importlib.import_module("celery" if name == "Celery" else "corekit")

    def worker_cmd(self, pool: str) -> list[str]:
        c = str(POOLS[pool])
        if self.name == "Celery":
            return [sys.executable, "-m", "celery", "-A", self.module, "worker", "--pool", pool,
                    "-c", c, "--without-heartbeat", "--without-gossip", "--without-mingle",
                    "-l", "warning"]
        return [sys.executable, "-m", "corekit", "-A", self.module, "worker", "-P", pool,
                "-c", c, "-l", "warning", "--no-banner"]

    # -- the client side, one app per target --------------------------------
    def make_app(self, target: Target) -> tuple[Any, Any, Any]:
        return self.proj.make_app(target.broker_url, target.backend_url)  # type: ignore[no-any-return]

    def close_app(self, app: Any) -> None:
        if self.name == "Celery":
            consumer = getattr(app.backend, "result_consumer", None)
            if consumer is not None:
                try:
                    consumer.stop()
                except Exception:
                    pass
        try:
            app.close()
        except Exception:
            pass

    def purge(self, app: Any, target: Target, expected: int, timeout: float) -> None:
        """Empty the queue after the group publish (and its result store)."""
        if target.broker == "redis":
            flush(target.broker_url)
        elif target.broker == "amqp":
            # Celery publishes without confirms: messages may still be on the
            # wire, so purge until all N have gone.
            purged, deadline = 0, time.monotonic() + timeout
            while purged < expected and time.monotonic() < deadline:
                purged += self._purge_amqp(app)
                if purged < expected:
                    time.sleep(0.05)
            if purged != expected:
                raise RuntimeError(f"{self.name}: purged {purged} of {expected} messages")
        else:
            assert target.sqlite_path is not None
            transport = app.connection()
            try:
                transport.purge(["celery"])
            finally:
                transport.close()
        if target.results_redis:
            flush(target.results_redis)

    def _purge_amqp(self, app: Any) -> int:
        if self.name == "Celery":
            with app.connection_for_write() as conn:
                return int(conn.default_channel.queue_purge("celery") or 0)
        transport = app.connection()
        try:
            return int(transport.purge(["celery"]))
        finally:
            transport.close()

    def check_results(self, app: Any, ids: list[str]) -> None:
        """Every one of *ids* succeeded with None."""
        if self.name == "Celery":
            backend = app.backend
            values = backend.client.mget([backend.get_key_for_task(i) for i in ids])
            metas = [backend.decode_result(v) if v else {"status": "PENDING"} for v in values]
        else:
            metas = app.backend.get_many(ids)
        bad = [(i, m.get("status"), m.get("result")) for i, m in zip(ids, metas)
               if m.get("status") != "SUCCESS" or m.get("result") is not None]
        if bad:
            raise WrongResult(f"{self.name}: {len(bad)} of {len(ids)} results are not "
                              f"SUCCESS/None, e.g. {bad[:3]}")


def flush(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
