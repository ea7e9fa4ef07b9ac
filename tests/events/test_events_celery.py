"""Events between Celery and corekit on one RabbitMQ: ``celery events
--dump`` follows a corekit worker, and ``corekit events --dump`` a Celery
worker (whose prefork pool batches task events into lists)."""
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
from typing import Iterator

import pytest

from corekit import Corekit
from corekit.testing import start_worker
from helpers import ROOT

pytest.importorskip("celery", reason="celery is a test dependency (pip install -e '.[test]')")

CELERY_PROJ = '''
import os
from celery import Celery
app = Celery("proj", broker=os.environ["BROKER"], backend=os.environ["BACKEND"])

@app.task(name="proj.add")
def add(x, y):
    return x + y
'''


class Output:
    """A subprocess's output lines, read on a thread; stopped with Ctrl-C."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        stdout = self.proc.stdout
        assert stdout is not None
        threading.Thread(target=lambda: [self.lines.put(line) for line in stdout],
                         daemon=True).start()

    def until(self, pattern: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in:\n"
                                     + "".join(self.seen[-40:])) from None
            self.seen.append(line)
            if re.search(pattern, line):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def env(amqp_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    (tmp_path / "celery_proj.py").write_text(CELERY_PROJ)
    backend = f"sqlite://{tmp_path / 'results.sqlite3'}"
    (tmp_path / "proj.py").write_text(
        "from corekit import Corekit\n"
        f"app = Corekit('proj', broker={amqp_url!r}, backend={backend!r})\n")
    yield {**os.environ, "BROKER": amqp_url, "BACKEND": "rpc://",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def celery_dump_follows(app: Corekit, tmp_path: Path, env: dict[str, str]) -> None:
    """``celery events --dump`` prints a corekit worker's heartbeat, a
    task's received and succeeded events, and the worker's shutdown."""

    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    dump = Output([sys.executable, "-m", "celery", "-A", "celery_proj", "events", "--dump"],
                  tmp_path, env)
    try:
        dump.until(r"-> evdump: starting capture")
        # The dump subscribes after that line (on Redis nothing tells its
        # PSUBSCRIBE apart from other tests'), so the worker-online may come
        # too early: a heartbeat (the same shape, every 0.5 s) shows it listens.
        with start_worker(app, task_events=True, heartbeat_interval=0.5) as worker:
            host = re.escape(worker.hostname)
            dump.until(rf"^{host} \[.*\] heartbeat: .*sw_ident=corekit")
            result = add.delay(2, 2)
            assert result.get(timeout=15) == 4
            dump.until(rf"^{host} \[.*\] task received: proj\.add\({result.id}\) "
                       rf"args=\[2, 2\] kwargs={{}}")
            dump.until(rf"^{host} \[.*\] task succeeded: proj\.add\({result.id}\) .*result=4")
        dump.until(rf"^{host} \[.*\] shutdown: ")
    finally:
        dump.stop()
        app.close()


def test_celery_events_dump_follows_a_corekit_worker(amqp_url: str, tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    celery_dump_follows(Corekit("proj", broker=amqp_url,
                                backend=f"sqlite://{tmp_path / 'results.sqlite3'}"),
                        tmp_path, env)


def test_corekit_events_dump_follows_a_celery_worker(tmp_path: Path,
                                                     env: dict[str, str]) -> None:
    import celery

    dump = Output([sys.executable, "-m", "corekit", "-A", "proj", "events", "--dump"],
                  tmp_path, env)
    worker = Output([sys.executable, "-m", "celery", "-A", "celery_proj", "worker", "-E",
                     "--pool", "prefork", "-c", "1", "-n", "celeryw@%h", "-l", "info",
                     "--without-mingle", "--without-gossip"], tmp_path, env)
    client = celery.Celery("proj", broker=env["BROKER"], backend="rpc://")
    try:
        dump.until(r"^-> corekit events: dumping events")
        worker.until(r"ready\.")
        dump.until(r"^celeryw@\S+ \[.*\] (started|heartbeat): .*sw_ident=py-celery")
        result = client.send_task("proj.add", (3, 4))
        assert result.get(timeout=30) == 7
        dump.until(rf"^celeryw@\S+ \[.*\] task received: proj\.add\({result.id}\) ")
        dump.until(rf"^celeryw@\S+ \[.*\] task succeeded: proj\.add\({result.id}\) "
                   rf".*result=7")
    finally:
        client.close()
        worker.stop()
        dump.stop()
