"""Several worker processes on one SQLite file: no message runs twice, and a
killed worker's messages come back once its lease lapses."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

import pytest

PROJ = '''
import os, time
from corekit import Corekit
app = Corekit("proj", broker="sqlite://broker.db", backend="sqlite://broker.db",
              broker_heartbeat=0.2, broker_lease_timeout=1.5)
LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs.log")

def record(what):
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{what} {os.getpid()}\\n".encode())
    os.close(fd)

@app.task(bind=True)
def work(self, i):
    record(self.request.id)
    return i * 2

@app.task(bind=True, acks_late=True)
def hold(self, marker, seconds):
    record("start " + self.request.id)
    if not os.path.exists(marker):      # the first run: sit here until killed
        open(marker, "w").close()
        time.sleep(seconds)
    record("done " + self.request.id)
    return "finished"
'''

pytestmark = pytest.mark.slow


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "proj.py").write_text(PROJ)
    return tmp_path


@pytest.fixture
def workers(proj: Path) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def start(proj: Path, procs: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker", "-l",
                             "info", "--no-banner", *args], cwd=proj, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    procs.append(proc)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ready." in line:
            return proc
    raise AssertionError(f"worker exited with {proc.wait()}")


def wait_until(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def client(proj: Path, code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=proj, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_three_workers_share_one_file_and_run_each_task_once(proj: Path, workers: list) -> None:
    for _ in range(3):
        start(proj, workers, "-c", "4")
    out = client(proj, "import proj\n"
                       "rs = [proj.work.delay(i) for i in range(600)]\n"
                       "print(sum(r.get(timeout=60) for r in rs))")
    assert int(out) == sum(2 * i for i in range(600))
    runs = [line.split() for line in (proj / "runs.log").read_text().splitlines()]
    per_task = Counter(task_id for task_id, _ in runs)
    assert len(per_task) == 600 and set(per_task.values()) == {1}
    assert len({pid for _, pid in runs}) == 3  # all three took a share


def test_killed_workers_message_comes_back_and_completes_once(proj: Path,
                                                             workers: list) -> None:
    first = start(proj, workers, "-c", "1")
    task_id = client(proj, "import proj\n"
                           "print(proj.hold.delay('marker', 60).id)").strip()
    log = proj / "runs.log"
    wait_until(lambda: log.exists() and "start" in log.read_text())
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    start(proj, workers, "-c", "1")
    assert client(proj, f"import proj\nprint(proj.hold.AsyncResult('{task_id}')"
                        ".get(timeout=60))").strip() == "finished"
    events = [line.split()[0] for line in log.read_text().splitlines()]
    assert events == ["start", "start", "done"]


def test_a_long_task_on_a_live_worker_is_never_redelivered(proj: Path, workers: list) -> None:
    start(proj, workers, "-c", "1")
    start(proj, workers, "-c", "1")
    # runs 4 s: more than twice the 1.5 s lease, while another worker polls the file
    out = client(proj, "import proj\n"
                       "print(proj.hold.delay('marker-long', 4).get(timeout=60))")
    assert out.strip() == "finished"
    events = [line.split()[0] for line in (proj / "runs.log").read_text().splitlines()]
    assert events == ["start", "done"]
