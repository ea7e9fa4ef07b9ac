"""The prefork pool, driven by an in-process worker (`start_worker`) whose
children are forked from the test process: tasks run in other processes, a
killed child costs only its task, children are recycled by task count and
memory, time limits are enforced, autoscale grows and shrinks.

Synchronisation is by files the tasks write and results with timeouts;
nothing sleeps to make something happen.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from corekit import Corekit, SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError, states
from corekit.plugins.prefork import child as prefork_child
from corekit.plugins.prefork import pool as prefork_pool
from corekit.testing import start_worker

WAIT = 30.0  # upper bound for what must happen; never reached when green


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def touch(path: Path, text: str = "") -> None:
    path.write_text(text)


def pids_in(directory: Path, prefix: str) -> set[int]:
    return {int(p.name.split("-")[1]) for p in directory.glob(f"{prefix}-*")}


@pytest.fixture
def app(sqlite_app: Corekit) -> Corekit:
    return sqlite_app


def test_tasks_run_in_child_processes_started_at_once(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    began = time.monotonic()
    with start_worker(app, pool="prefork", concurrency=4) as worker:
        ready_in = time.monotonic() - began
        children = set(worker.pool.info()["processes"])
        pids = {r.get(timeout=WAIT) for r in [whoami.delay() for _ in range(12)]}
    assert len(children) == 4 and os.getpid() not in children
    assert pids <= children and os.getpid() not in pids
    assert ready_in < 5.0  # generous: "well under a second" on an idle machine


def test_c4_runs_four_tasks_at_once(app: Corekit, tmp_path: Path) -> None:
    @app.task
    def meet(directory: str) -> int:
        d = Path(directory)
        touch(d / f"running-{os.getpid()}")
        return len(wait_until(lambda: len(pids_in(d, "running")) >= 4 and pids_in(d, "running")))

    with start_worker(app, pool="prefork", concurrency=4):
        results = [meet.delay(str(tmp_path)) for _ in range(4)]
        assert [r.get(timeout=WAIT) for r in results] == [4, 4, 4, 4]
    assert len(pids_in(tmp_path, "running")) == 4


def test_a_child_killed_mid_task_fails_the_task_and_is_replaced(app: Corekit,
                                                                 tmp_path: Path) -> None:
    @app.task
    def hang(directory: str) -> None:
        touch(Path(directory) / f"hang-{os.getpid()}")
        time.sleep(60)

    @app.task
    def whoami() -> int:
        return os.getpid()

    with start_worker(app, pool="prefork", concurrency=1) as worker:
        result = hang.delay(str(tmp_path))
        [victim] = wait_until(lambda: pids_in(tmp_path, "hang"))
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(WorkerLostError, match=r"signal 9 \(SIGKILL\)"):
            result.get(timeout=WAIT)
        assert result.state == states.FAILURE
        survivor = whoami.delay().get(timeout=WAIT)
        assert survivor != victim and worker.pool.info()["processes"] == [survivor]


def test_an_idle_child_that_dies_is_replaced(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    with start_worker(app, pool="prefork", concurrency=2) as worker:
        victim, other = worker.pool.info()["processes"]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in worker.pool.info()["processes"]
                   and len(worker.pool.info()["processes"]) == 2)
        assert other in worker.pool.info()["processes"]
        assert whoami.delay().get(timeout=WAIT) != victim


def test_acks_late_reject_on_worker_lost_requeues_and_runs_once_more(app: Corekit,
                                                                      tmp_path: Path) -> None:
    marker, log = tmp_path / "marker", tmp_path / "runs.log"

    @app.task(acks_late=True, reject_on_worker_lost=True)
    def hold() -> str:
        with log.open("a") as f:
            f.write(f"start {os.getpid()}\n")
        if not marker.exists():  # the first run waits here to be killed
            touch(marker, str(os.getpid()))
            time.sleep(60)
        return "finished"

    with start_worker(app, pool="prefork", concurrency=1):
        result = hold.delay()
        victim = int(wait_until(lambda: marker.exists() and marker.read_text()))
        os.kill(victim, signal.SIGKILL)
        assert result.get(timeout=WAIT) == "finished"
    runs = log.read_text().split("\n")[:-1]
    assert len(runs) == 2 and runs[0] == f"start {victim}" and runs[1] != runs[0]


def test_max_tasks_per_child_recycles_children(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    with start_worker(app, pool="prefork", concurrency=1, max_tasks_per_child=2):
        pids = [whoami.delay().get(timeout=WAIT) for _ in range(6)]
    assert len(set(pids)) == 3
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]


_hoard: list[bytearray] = []


def test_max_memory_per_child_replaces_a_child_that_grew(app: Corekit) -> None:
    @app.task
    def whoami() -> int:
        return os.getpid()

    @app.task
    def grow() -> int:
        _hoard.append(bytearray(50 * 1024 * 1024))  # kept: freed memory might leave RSS
        return os.getpid()

    limit = prefork_child.rss_kib() + 25 * 1024
    with start_worker(app, pool="prefork", concurrency=1, max_memory_per_child=limit):
        first = whoami.delay().get(timeout=WAIT)
        assert whoami.delay().get(timeout=WAIT) == first  # under the limit: kept
        assert grow.delay().get(timeout=WAIT) == first
        assert whoami.delay().get(timeout=WAIT) != first


def test_hard_time_limit_kills_the_task_and_the_pool_goes_on(app: Corekit) -> None:
    @app.task
    def nap(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    with start_worker(app, pool="prefork", concurrency=1) as worker:
        [before] = worker.pool.info()["processes"]
        result = nap.apply_async((60,), time_limit=0.5)
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=WAIT)
        assert result.state == states.FAILURE
        assert nap.delay(0).get(timeout=WAIT) == "woke"
        assert before not in worker.pool.info()["processes"]


def test_acks_late_hard_time_limit_without_acks_on_failure_is_dead_lettered(
        app: Corekit) -> None:
    @app.task(acks_late=True, acks_on_failure_or_timeout=False)
    def nap(seconds: float) -> None:
        time.sleep(seconds)

    with start_worker(app, pool="prefork", concurrency=1):
        result = nap.apply_async((60,), time_limit=0.5)
        with pytest.raises(TimeLimitExceeded):
            result.get(timeout=WAIT)
    [letter] = app.producer.dead_letters()
    assert letter.reason == "task failed: TimeLimitExceeded: hard time limit (0.5s) exceeded"
    assert letter.message.headers["id"] == result.id


def test_soft_time_limit_raises_inside_the_task(app: Corekit) -> None:
    @app.task(soft_time_limit=0.3)
    def patient() -> str:
        try:
            time.sleep(60)
        except SoftTimeLimitExceeded:
            return "soft"
        return "slept"

    @app.task(soft_time_limit=0.3)
    def careless() -> None:
        time.sleep(60)

    with start_worker(app, pool="prefork", concurrency=1):
        assert patient.delay().get(timeout=WAIT) == "soft"
        with pytest.raises(SoftTimeLimitExceeded):
            careless.delay().get(timeout=WAIT)


def test_time_limits_precedence_call_then_task_then_worker(app: Corekit) -> None:
    @app.task
    def plain() -> str:
        try:
            time.sleep(60)
        except SoftTimeLimitExceeded:
            return "soft"
        return "slept"

    @app.task(soft_time_limit=0.3)
    def own_limit() -> str:
        try:
            time.sleep(1.0)
        except SoftTimeLimitExceeded:
            return "soft"
        return "slept"

    with start_worker(app, pool="prefork", concurrency=2, soft_time_limit=0.2,
                      time_limit=30) as worker:
        assert worker.pool.info()["timeouts"] == [30, 0.2]
        assert plain.delay().get(timeout=WAIT) == "soft"  # the worker's limit
        # sent by name: no header, so the task's own attribute applies
        assert app.send_task(own_limit.name).get(timeout=WAIT) == "soft"
        # the call's limit beats the task's
        assert own_limit.apply_async(soft_time_limit=20).get(timeout=WAIT) == "slept"


def test_autoscale_grows_under_load_and_shrinks_back(app: Corekit, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefork_pool, "SHRINK_AFTER", 0.5)
    release = tmp_path / "release"

    @app.task
    def block(directory: str) -> int:
        touch(Path(directory) / f"running-{os.getpid()}")
        wait_until(release.exists)
        return os.getpid()

    with start_worker(app, pool="prefork", concurrency=1, autoscale=(3, 1)) as worker:
        pool = worker.pool
        assert pool.concurrency == 3 and len(pool.info()["processes"]) == 1
        results = [block.delay(str(tmp_path)) for _ in range(3)]
        wait_until(lambda: len(pids_in(tmp_path, "running")) == 3)
        assert len(pool.info()["processes"]) == 3
        touch(release)
        assert len({r.get(timeout=WAIT) for r in results}) == 3
        wait_until(lambda: len(pool.info()["processes"]) == 1)


def test_a_task_can_send_tasks_from_its_child(app: Corekit) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def fan_out(n: int) -> list[str]:
        return [add.delay(i, i).id for i in range(n)]

    with start_worker(app, pool="prefork", concurrency=2):
        ids = fan_out.delay(5).get(timeout=WAIT)
        assert [add.AsyncResult(i).get(timeout=WAIT) for i in ids] == [0, 2, 4, 6, 8]


def test_stop_waits_for_running_tasks(app: Corekit, tmp_path: Path) -> None:
    @app.task
    def slow(directory: str) -> str:
        touch(Path(directory) / f"running-{os.getpid()}")
        time.sleep(0.5)
        return "done"

    with start_worker(app, pool="prefork", concurrency=2) as worker:
        result = slow.delay(str(tmp_path))
        wait_until(lambda: pids_in(tmp_path, "running"))
        children = worker.pool.info()["processes"]
    assert result.get(timeout=WAIT) == "done"
    assert worker.pool.info()["processes"] == []
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_pool_needs_the_app() -> None:
    from corekit.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="needs the app"):
        prefork_pool.PreforkPool(2)


PROJ = '''
import os, time
from corekit import Corekit
app = Corekit("proj", broker=os.environ["TEST_BROKER"], broker_heartbeat=0.2,
              broker_lease_timeout=2.0)

@app.task
def whoami():
    return os.getpid()

@app.task
def nap(seconds):
    time.sleep(seconds)
'''


@pytest.mark.slow
def test_worker_process_with_prefork_cli_options(tmp_path: Path) -> None:
    """``corekit worker -P prefork --time-limit``: a hard limit kills one
    child, not the worker; SIGTERM stops the worker and all its children."""
    import subprocess
    import sys

    (tmp_path / "proj.py").write_text(PROJ)
    env = {**os.environ, "TEST_BROKER": f"sqlite://{tmp_path / 'broker.db'}"}
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker", "-l",
                               "info", "--no-banner", "-P", "prefork", "-c", "2",
                               "--time-limit", "0.5"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if "ready." in line:
                break
        client = subprocess.run(
            [sys.executable, "-c", "import proj\n"
             "try:\n    proj.nap.delay(60).get(timeout=30)\n"
             "except Exception as e:\n    print(type(e).__name__)\n"
             "print(proj.whoami.delay().get(timeout=30))"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, client.stderr
        outcome, child = client.stdout.split()
        assert outcome == "TimeLimitExceeded" and int(child) != worker.pid
        worker.send_signal(signal.SIGTERM)
        log = worker.communicate(timeout=30)[0]
        assert worker.returncode == 0, log
        assert log.count("Hard time limit (0.5s) exceeded") == 1, log
        with pytest.raises(ProcessLookupError):
            os.kill(int(child), 0)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_worker_process_init_runs_in_each_child(sqlite_app: Corekit, tmp_path: Path) -> None:
    from corekit import signals

    marks = tmp_path / "inits"

    def on_init(**kwargs: Any) -> None:
        with open(marks, "a") as f:
            f.write(f"{os.getpid()}\n")

    signals.worker_process_init.connect(on_init, weak=False)
    try:
        @sqlite_app.task(name="proj.pid")
        def pid() -> int:
            return os.getpid()

        with start_worker(sqlite_app, pool="prefork", concurrency=2):
            child_pid = pid.delay().get(timeout=15)
    finally:
        signals.worker_process_init.disconnect(on_init)
    inits = [int(line) for line in marks.read_text().split()]
    assert child_pid in inits and os.getpid() not in inits and len(inits) >= 2
