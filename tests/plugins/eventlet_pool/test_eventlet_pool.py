"""The ``eventlet`` pool in real worker processes: the command line monkey
patches before anything else is imported, 1,000 sleeping tasks run at once
on ``-c 1000``, ``-c`` bounds them, failures are reported, SIGTERM shuts
down warmly, and the SQLite broker works too.

Concurrency is proven by counting: every task appends ``start ID`` and
``end ID`` to one file (O_APPEND: lines never interleave), and the peak of
started-but-not-ended tasks is read back in order.  No assertion is on time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from corekit.early import requested_pool

pytestmark = pytest.mark.slow

PROJ = '''
import json, os, sys, threading, time
from corekit import Corekit

BROKER = os.environ["TEST_BROKER"]
SETTINGS = json.loads(os.environ.get("TEST_SETTINGS", "{}"))
app = Corekit("proj", broker=BROKER, backend=BROKER, broker_heartbeat=0.5, **SETTINGS)
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")

def _patched():
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher) and all(patcher.is_monkey_patched(m)
                                 for m in ("socket", "thread", "time", "select"))

#: taken while this module is imported: was the process patched already?
PATCHED_AT_IMPORT = _patched()

def record(what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{what}\\n".encode())
    os.close(fd)

@app.task(bind=True)
def nap(self, seconds):
    record("start " + self.request.id)
    time.sleep(seconds)
    record("end " + self.request.id)
    return {"patched_at_import": PATCHED_AT_IMPORT,
            "thread": type(threading.current_thread()).__name__,
            "ident": threading.get_ident()}

@app.task
def boom():
    raise ValueError("boom")

def send_batch(task, n, *args):
    """n calls of task, published in one broker round trip."""
    messages = []
    app.publish = lambda batch, **kw: messages.extend(batch)
    try:
        results = [task.delay(*args) for _ in range(n)]
    finally:
        del app.publish
    app.publish(messages)
    return results
'''

#: The installed console script (``corekit = corekit.cli:main``).
SCRIPT = str(Path(sys.executable).with_name("corekit"))


class Project:
    def __init__(self, path: Path, broker: str) -> None:
        self.path = path
        self.env = {**os.environ, "TEST_BROKER": broker}
        self.procs: list[subprocess.Popen[str]] = []
        (path / "proj.py").write_text(PROJ)

    def worker(self, *args: str, script: bool = False,
               settings: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a worker (``python -m corekit``, or the console script) and
        wait for "ready."; its output goes to worker-N.log."""
        cmd = [SCRIPT] if script else [sys.executable, "-m", "corekit"]
        log = self.path / f"worker-{len(self.procs)}.log"
        env = {**self.env, "TEST_SETTINGS": json.dumps(settings or {})}
        with log.open("w") as out:
            proc = subprocess.Popen([*cmd, "-A", "proj", "worker", "-l", "info", "--no-banner",
                                     *args], cwd=self.path, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, text=True)
        self.procs.append(proc)
        proc.log = log  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n"
                                     f"{log.read_text()}")
            assert time.monotonic() < deadline, "worker not ready after 60 s"
            time.sleep(0.05)
        return proc

    def client(self, code: str) -> str:
        out = subprocess.run([sys.executable, "-c", "import proj\n" + code], cwd=self.path,
                             env=self.env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def naps(self, n: int, seconds: float) -> list[dict[str, object]]:
        """Send n naps in one batch and return their results."""
        out = self.client(f"rs = proj.send_batch(proj.nap, {n}, {seconds})\n"
                          "import json\n"
                          "print(json.dumps([r.get(timeout=120) for r in rs]))")
        return list(json.loads(out))

    def events(self) -> list[tuple[str, str]]:
        log = self.path / "runs.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(what, task_id) for what, task_id in (line.split() for line in lines)]

    def peak(self) -> int:
        """Most tasks started and not yet ended at any point of the log."""
        running = peak = 0
        for what, _ in self.events():
            running += 1 if what == "start" else -1
            peak = max(peak, running)
        return peak


@pytest.fixture
def redis_project(tmp_path: Path, redis_url: str) -> Iterator[Project]:
    yield from _project(tmp_path, redis_url)


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Iterator[Project]:
    yield from _project(tmp_path, f"sqlite://{tmp_path / 'broker.db'}")


def _project(path: Path, broker: str) -> Iterator[Project]:
    proj = Project(path, broker)
    yield proj
    for p in proj.procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_a_thousand_sleeping_tasks_run_at_once(redis_project: Project) -> None:
    redis_project.worker("--plugin", "redis", "--pool", "eventlet", "-c", "1000")
    results = redis_project.naps(1000, 1)
    assert len(results) == 1000
    events = redis_project.events()
    assert len(events) == 2000 and len({task_id for _, task_id in events}) == 1000
    assert redis_project.peak() >= 900
    # patched before the app module was imported; each task on a green thread of its own
    assert {r["patched_at_import"] for r in results} == {True}
    assert {r["thread"] for r in results} == {"_GreenThread"}
    assert len({r["ident"] for r in results}) >= 900


def test_concurrency_bounds_running_tasks(redis_project: Project) -> None:
    redis_project.worker("-P", "eventlet", "-c", "10")
    results = redis_project.naps(50, 0.2)
    assert len(results) == 50 and len(redis_project.events()) == 100
    assert redis_project.peak() == 10


def test_failing_task_reports_failure_via_the_console_script(redis_project: Project) -> None:
    redis_project.worker("--pool=eventlet", "-c", "5", script=True)
    out = redis_project.client(
        "r = proj.boom.delay()\n"
        "e = r.get(timeout=60, propagate=False)\n"
        "print(r.state, type(e).__name__, e)\n"
        "print(proj.nap.delay(0).get(timeout=60)['patched_at_import'])")
    assert out.splitlines() == ["FAILURE ValueError boom", "True"]


def test_sigterm_shuts_down_warmly(redis_project: Project) -> None:
    worker = redis_project.worker("-Peventlet", "-c", "5", "--prefetch-multiplier", "2")
    ids = redis_project.client("rs = proj.send_batch(proj.nap, 8, 1.5)\n"
                               "print(' '.join(r.id for r in rs))").split()
    deadline = time.monotonic() + 60
    while len(redis_project.events()) < 5:  # five running, three prefetched
        assert time.monotonic() < deadline, "tasks never started"
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    output = worker.log.read_text()  # type: ignore[attr-defined]
    assert "warm shutdown" in output and "stopped." in output
    ran = [task_id for what, task_id in redis_project.events() if what == "end"]
    assert len(ran) == 5 and redis_project.peak() == 5  # the running ones finished
    # the prefetched three went back to the broker: a new worker runs them
    redis_project.worker("-P", "eventlet", "-c", "5")
    states = redis_project.client(
        f"ids = {ids!r}\n"
        "print(' '.join(str(proj.app.AsyncResult(i).get(timeout=60)['patched_at_import'])"
        " for i in ids))")
    assert states.split() == ["True"] * 8
    assert sorted(task_id for what, task_id in redis_project.events()
                  if what == "end") == sorted(ids)


def test_sqlite_broker_with_green_threads(sqlite_project: Project) -> None:
    sqlite_project.worker("-P", "eventlet", "-c", "10")
    results = sqlite_project.naps(10, 0.5)
    assert {r["patched_at_import"] for r in results} == {True}
    assert sqlite_project.peak() == 10


def test_worker_pool_setting_alone_is_refused(redis_project: Project) -> None:
    """``worker_pool = "eventlet"`` is read after the app module was imported:
    too late to patch, so the pool refuses to start, saying what to do."""
    env = {**redis_project.env, "TEST_SETTINGS": json.dumps({"worker_pool": "eventlet"})}
    out = subprocess.run([sys.executable, "-m", "corekit", "-A", "proj", "worker"],
                         cwd=redis_project.path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "corekit worker -P eventlet" in out.stderr


@pytest.mark.parametrize("argv, pool", [
    (["-A", "proj", "worker", "-P", "eventlet"], "eventlet"),
    (["worker", "-Peventlet"], "eventlet"),
    (["worker", "--pool", "eventlet", "-c", "5"], "eventlet"),
    (["-A", "proj", "worker", "--pool=eventlet"], "eventlet"),
    (["worker", "-P", "eventlet", "--pool", "threads"], "threads"),
    (["worker", "-c", "4"], None),
    (["call", "proj.nap", "-P", "eventlet"], None),
    (["worker", "--", "-P", "eventlet"], None),
])
def test_the_pool_flag_is_read_from_argv(argv: list[str], pool: str | None) -> None:
    assert requested_pool(argv) == pool


TERMINATE = """
import os, time
r = proj.nap.delay(120)
deadline = time.monotonic() + 30
while not (os.path.exists(proj.LOG) and "start " + r.id in open(proj.LOG).read()):
    assert time.monotonic() < deadline
    time.sleep(0.02)
r.revoke(terminate=True)
e = r.get(timeout=30, propagate=False)
print(r.state, type(e).__name__, e)
print(proj.nap.delay(0).get(timeout=30)["patched_at_import"])
"""


def test_terminate_kills_a_running_green_thread(redis_project: Project) -> None:
    redis_project.worker("-P", "eventlet", "-c", "5")
    out = redis_project.client(TERMINATE)
    assert out.splitlines() == ["REVOKED TaskRevokedError terminated", "True"]



def test_time_limits_on_green_threads(redis_project: Project) -> None:
    (redis_project.path / "limits.py").write_text(
        "import proj, time\nfrom corekit import SoftTimeLimitExceeded\n\n"
        "@proj.app.task(name='proj.polite', soft_time_limit=0.3)\n"
        "def polite():\n"
        "    try:\n"
        "        time.sleep(30)\n"
        "    except SoftTimeLimitExceeded:\n"
        "        return 'soft'\n\n"
        "@proj.app.task(name='proj.stubborn', time_limit=0.3)\n"
        "def stubborn():\n"
        "    time.sleep(30)\n")
    redis_project.worker("-P", "eventlet", "-c", "5", settings={"include": ["limits"]})
    out = redis_project.client(
        "import limits\n"
        "print(limits.polite.delay().get(timeout=30))\n"
        "r = limits.stubborn.delay()\n"
        "e = r.get(timeout=30, propagate=False)\n"
        "print(r.state, type(e).__name__)\n"
        "print(proj.nap.delay(0).get(timeout=30)['patched_at_import'])")
    assert out.splitlines() == ["soft", "FAILURE TimeLimitExceeded", "True"]
