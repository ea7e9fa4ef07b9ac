"""Leases against real worker processes: a worker paused (SIGSTOP) past its
lease comes back without running what others took over, and a worker whose
clock is 30 s off cannot take a live task from another (DESIGN §4: leases
are compared against one clock, the broker's)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest

pytestmark = pytest.mark.slow

LEASE = 1.5
PROJ = f'''
import os, time
from corekit import Corekit
BROKER = os.environ["TEST_BROKER"]
BACKEND = os.environ.get("TEST_BACKEND", BROKER)
app = Corekit("proj", broker=BROKER, backend=BACKEND, broker_heartbeat=0.2,
              broker_lease_timeout={LEASE}, worker_prefetch_multiplier=4)
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")

def record(what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{{what}} {{os.getpid()}}\\n".encode())
    os.close(fd)

@app.task(bind=True, acks_late=True)
def hold(self, seconds, until=None):
    """Run *seconds*, or until the file *until* exists."""
    record("start " + self.request.id)
    deadline = time.monotonic() + (60 if until else seconds)
    while time.monotonic() < deadline and not (until and os.path.exists(until)):
        time.sleep(0.02)
    record("done " + self.request.id)
    return seconds

@app.task(bind=True, acks_late=True, acks_on_failure_or_timeout=False)
def fails_first(self, until):
    """Wait for the file *until*; the first run then fails (a failure
    dead-letters the message), later ones succeed."""
    first = not os.path.exists(until + ".ran")
    open(until + ".ran", "a").close()
    record("start " + self.request.id)
    while not os.path.exists(until):
        time.sleep(0.02)
    record("done " + self.request.id)
    if first:
        raise RuntimeError("the first run fails")
    return "ok"
'''
#: Runs the worker CLI with time.time() moved by $CLOCK_SKEW seconds, from
#: before corekit is imported: a host whose clock is off.
SKEWED_MAIN = '''
import os, runpy, time
_real, _skew = time.time, float(os.environ["CLOCK_SKEW"])
time.time = lambda: _real() + _skew
runpy.run_module("corekit", run_name="__main__", alter_sys=True)
'''


class Project:
    def __init__(self, path: Path, broker: str) -> None:
        self.path = path
        self.env = {**os.environ, "TEST_BROKER": broker}
        if broker.startswith("amqp"):
            self.env["TEST_BACKEND"] = f"sqlite://{path / 'results.db'}"
        self.procs: list[subprocess.Popen[bytes]] = []
        (path / "proj.py").write_text(PROJ)

    def worker(self, *args: str, skew: float = 0.0) -> tuple[subprocess.Popen[bytes], Path]:
        """A worker process, once it said it is ready, and its log file."""
        log = self.path / f"worker-{len(self.procs)}.log"
        main = ["-c", SKEWED_MAIN] if skew else ["-m", "corekit"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *main, "-A", "proj", "worker", "-l", "info", "--no-banner",
                 *args], cwd=self.path, env={**self.env, "CLOCK_SKEW": str(skew)},
                stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        wait_until(lambda: "ready." in log.read_text() or proc.poll() is not None)
        assert proc.poll() is None, log.read_text()
        return proc, log

    def client(self, code: str) -> str:
        out = subprocess.run([sys.executable, "-c", "import proj\n" + code], cwd=self.path,
                             env=self.env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def reserved(self) -> int:
        """How many tasks the workers hold prefetched, not yet started."""
        return int(self.client("replies = proj.app.control.inspect(timeout=1).reserved()\n"
                               "print(sum(len(r) for r in (replies or {}).values()))"))

    def runs(self) -> list[tuple[str, str, int]]:
        """(what, task id, pid) per line of the tasks' record."""
        log = self.path / "runs.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [(what, task_id, int(pid)) for what, task_id, pid in map(str.split, lines)]

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def pause(project: Project, proc: subprocess.Popen[bytes]) -> None:
    """SIGSTOP *proc*, but not while it holds the SQLite file's write lock:
    a process stopped inside a write transaction holds up every process on
    the file until it resumes (SQLite's locking), which is not under test."""
    broker = project.env["TEST_BROKER"]
    for _ in range(100):
        os.kill(proc.pid, signal.SIGSTOP)
        wait_until(lambda: Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] == "T")
        if not broker.startswith("sqlite") or _can_write(broker[len("sqlite://"):]):
            return
        os.kill(proc.pid, signal.SIGCONT)
    raise AssertionError("the worker always held the write lock")


def _can_write(path: str) -> bool:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(params=["sqlite", "redis", "amqp"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    broker = (f"sqlite://{tmp_path / 'broker.db'}" if request.param == "sqlite"
              else request.getfixturevalue(f"{request.param}_url"))
    proj = Project(tmp_path, broker)
    yield proj
    for p in proj.procs:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        p.wait()


def test_a_worker_paused_past_its_lease_runs_nothing_it_lost(project: Project) -> None:
    """Worker A holds four acks_late tasks (one running, three prefetched)
    when it is stopped; B takes them over once A's lease lapsed.  A, resumed,
    drops the three it had not started, says so, and finishes only the one
    it was running (which B ran too: that one cannot be un-run)."""
    release = project.path / "release"
    ids = project.client(f"ids = [proj.hold.delay(0, {str(release)!r}).id]\n"
                         "ids += [proj.hold.delay(0.5).id for _ in range(3)]\n"
                         "print(' '.join(ids))").split()
    running = ids[0]  # A runs it first, until released
    a, a_log = project.worker("-c", "1")
    wait_until(lambda: ("start", running, a.pid) in project.runs())
    # RabbitMQ may still be delivering the other three (push, under basic.qos)
    wait_until(lambda: project.reserved() == 3)
    pause(project, a)
    b, _ = project.worker("-c", "4")
    wait_until(lambda: ("start", running, b.pid) in project.runs() and sum(
        1 for what, _, pid in project.runs() if what == "done" and pid == b.pid) == 3)
    os.kill(a.pid, signal.SIGCONT)
    # A either notices it lost the lease, or (the bug) starts a task B ran
    wait_until(lambda: "lease" in a_log.read_text() or any(
        what == "start" and pid == a.pid and task_id != running
        for what, task_id, pid in project.runs()))
    release.touch()
    wait_until(lambda: {("done", running, a.pid), ("done", running, b.pid)}
               <= set(project.runs()))
    project.stop(a)
    project.stop(b)
    starts = Counter(task_id for what, task_id, _ in project.runs() if what == "start")
    assert {task_id: starts[task_id] for task_id in ids[1:]} == dict.fromkeys(ids[1:], 1)
    assert starts[running] == 2  # A's run (it cannot be un-run) and B's
    warnings = [line for line in a_log.read_text().splitlines() if "lease" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], a_log.read_text()
    assert "3 prefetched" in warnings[0] and "1 running" in warnings[0], warnings[0]
    assert project.client("print(proj.app.connection().queue_size('celery'))") == "0"


def test_a_task_failing_where_its_lease_lapsed_is_not_dead_lettered(project: Project
                                                                    ) -> None:
    """A late-acked task that fails after its lease lapsed (acks on failure
    off: a failure dead-letters the message) leaves the message alone: the
    worker that took it over runs it to success, and the dead-letter queue
    stays empty."""
    release = project.path / "release"
    ids = project.client(f"ids = [proj.fails_first.delay({str(release)!r}).id]\n"
                         "ids += [proj.hold.delay(0.5).id]\n"
                         "print(' '.join(ids))").split()
    a, a_log = project.worker("-c", "1")
    wait_until(lambda: ("start", ids[0], a.pid) in project.runs())
    pause(project, a)
    b, _ = project.worker("-c", "4")
    wait_until(lambda: {("start", ids[0], b.pid), ("done", ids[1], b.pid)} <= set(project.runs()))
    os.kill(a.pid, signal.SIGCONT)
    wait_until(lambda: "lease" in a_log.read_text())
    release.touch()
    wait_until(lambda: {("done", ids[0], a.pid), ("done", ids[0], b.pid)} <= set(project.runs()))
    project.stop(a)
    project.stop(b)
    assert project.client("print(len(proj.app.connection().dead_letters()))") == "0"
    assert project.client("print(proj.app.connection().queue_size('celery'))") == "0"


# amqp:// is not here: its lease is the connection, timed by RabbitMQ alone
@pytest.mark.parametrize("project", ["sqlite", "redis"], indirect=True)
@pytest.mark.parametrize("holder_skew, other_skew", [(0.0, 30.0), (-30.0, 0.0)],
                         ids=["other-30s-ahead", "holder-30s-behind"])
def test_clock_skew_cannot_take_a_live_task(project: Project, holder_skew: float,
                                            other_skew: float) -> None:
    """A task held for three leases runs on the worker that took it, once,
    while a worker whose clock differs by 30 s consumes the same queue."""
    holder, _ = project.worker("-c", "1", skew=holder_skew)
    release = project.path / "release"
    task_id = project.client(f"print(proj.hold.delay(0, {str(release)!r}).id)")
    wait_until(lambda: bool(project.runs()))
    other, _ = project.worker("-c", "1", skew=other_skew)
    # the time a skewed lease needs to be misjudged, twice over: the task
    # runs on as long as the other worker consumes beside it
    time.sleep(3 * LEASE)
    release.touch()
    wait_until(lambda: ("done", task_id, holder.pid) in project.runs())
    project.stop(holder)
    project.stop(other)
    assert [(what, pid) for what, _, pid in project.runs()] == [
        ("start", holder.pid), ("done", holder.pid)]
