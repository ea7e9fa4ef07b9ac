"""The pool contract (corekit.pool.Pool), run on every installed pool.

Each pool gets what the worker gives it (`pool_driver`): `Job`s of tasks
registered on a real app, so prefork runs them in its children, eventlet in
green threads, asyncio in its executor.  Outcomes come back through
``job.started``/``job.finish`` in this process; tasks that run for a while
leave marks (files) on a board that any process can count.

eventlet runs only in a process monkey patched before anything else is
imported, which this one is not: its leg is this same file, run in a patched
subprocess by `test_eventlet_leg_runs_in_a_patched_process`.

Synchronisation is by events, files and counters; a short timed wait appears
solely to observe that something does *not* happen (a fifth job starting).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import Iterator

import pytest

from corekit import states
from corekit.pool import Pool
from pool_driver import PM, WAIT, ContractJob, Driver, eventlet_patched, wait_until

EVENTLET_LEG = ("eventlet needs a monkey patched process: its leg runs in one, "
                "see test_eventlet_leg_runs_in_a_patched_process")
INLINE_ONLY = "only inline pools promise to run the job inside apply"
NOT_INLINE = "an inline pool has nothing running once apply returned"

POOLS = [pytest.param(name, marks=pytest.mark.skipif(
            name == "eventlet" and not eventlet_patched(), reason=EVENTLET_LEG))
         for name in sorted(PM.registry("pools"))]

#: Pools whose `apply` waits for a free slot instead of queueing the job.
BLOCKING_APPLY = {"eventlet": "apply waits for a free green thread: nothing is ever queued"}
#: Pools whose stop(wait=False) cuts running tasks short (they report nothing).
CUTS_SHORT = {"prefork": "stop(wait=False) terminates the children"}
#: Pools that run each job on a thread of its own, not on a long-lived one.
THREAD_PER_JOB = {"eventlet": "one green thread per job"}


@pytest.fixture(params=POOLS)
def pool_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def driver(pool_name: str, tmp_path: Path) -> Iterator[Driver]:
    driver = Driver(pool_name, tmp_path)
    yield driver
    driver.close()


def running(driver: Driver) -> int:
    """How many ``hold`` tasks are running now, in whatever process."""
    return driver.board.count("running-")


def reported_started(jobs: list[ContractJob]) -> int:
    """How many of *jobs* reported STARTED here (prefork: its supervisor
    read the child's message, so it is past dispatching the job)."""
    return sum(job.history[:1] == [states.STARTED] for job in jobs)


def stop_in_a_thread(pool: Pool, wait: bool) -> tuple[threading.Thread, threading.Event]:
    """``pool.stop(wait)`` in a thread, and an event set once it returned."""
    returned = threading.Event()

    def stop() -> None:
        pool.stop(wait=wait)
        returned.set()

    stopper = threading.Thread(target=stop)
    stopper.start()
    return stopper, returned


def test_jobs_run_and_all_complete(driver: Driver) -> None:
    pool = driver.make_pool(3)
    jobs = [driver.submit(pool, "echo", i) for i in range(20)]
    assert driver.wait_ended(20)
    pool.stop(wait=True)
    assert [job.result for job in jobs] == list(range(20))
    assert {tuple(job.history) for job in jobs} == {(states.STARTED, states.SUCCESS)}


def test_inline_pool_runs_the_job_before_apply_returns(driver: Driver) -> None:
    pool = driver.make_pool(1)
    if not pool.inline:
        pytest.skip(INLINE_ONLY)
    job = driver.submit(pool, "whereami")
    assert job.history == [states.STARTED, states.SUCCESS]
    assert job.result == [os.getpid(), threading.get_ident()]


def test_concurrency_is_bounded(driver: Driver) -> None:
    pool = driver.make_pool(4)
    if pool.inline:
        pytest.skip("an inline pool runs one job at a time by construction")
    # from a thread of its own: an apply may wait for a free slot (eventlet)
    submitter = threading.Thread(target=lambda: [driver.hold(pool) for _ in range(8)])
    submitter.start()
    jobs = driver.jobs  # each one listed before it is applied
    try:
        assert wait_until(lambda: running(driver) >= 4), "four jobs never ran at once"
        assert not wait_until(lambda: running(driver) > 4, 0.2), "more than four ran at once"
        assert wait_until(lambda: reported_started(jobs) == 4)
        assert running(driver) == 4 and pool.active() == 4
    finally:
        driver.release()
    submitter.join(WAIT)
    assert driver.wait_ended(8)
    pool.stop(wait=True)
    assert driver.board.highest("seen-") == 4 and pool.active() == 0
    assert all(job.history == [states.STARTED, states.SUCCESS] for job in jobs)


def test_active_counts_running_jobs(driver: Driver) -> None:
    pool = driver.make_pool(4)
    assert pool.active() == 0
    if pool.inline:
        job = driver.submit(pool, "echo", 1)
        assert job.active_when_started == [1] and pool.active() == 0
        return
    jobs = [driver.hold(pool), driver.hold(pool)]
    try:
        assert wait_until(lambda: running(driver) == 2 and reported_started(jobs) == 2)
        assert pool.active() == 2
    finally:
        driver.release()
    pool.stop(wait=True)
    assert pool.active() == 0
    assert [len(job.active_when_started) for job in jobs] == [1, 1]
    assert all(1 <= n <= 2 for job in jobs for n in job.active_when_started)


def test_stop_wait_finishes_running_and_queued_work(driver: Driver) -> None:
    pool = driver.make_pool(1)
    if pool.inline:
        jobs = [driver.submit(pool, "echo", i) for i in range(50)]
        pool.stop(wait=True)
        assert [job.result for job in jobs] == list(range(50))
        return
    first = driver.hold(pool)  # holds the only slot until stop is under way
    queued = [] if driver.pool_name in BLOCKING_APPLY else [
        driver.submit(pool, "echo", i) for i in range(50)]
    stopper, returned = stop_in_a_thread(pool, wait=True)
    try:
        assert not returned.wait(0.2), "stop(wait=True) returned while a job was running"
    finally:
        driver.release()
    stopper.join(WAIT)
    assert returned.is_set()
    assert first.history == [states.STARTED, states.SUCCESS]
    assert [job.result for job in queued] == list(range(len(queued)))


def test_stop_without_wait_does_not_wait_for_running_jobs(driver: Driver) -> None:
    pool = driver.make_pool(1)
    if pool.inline:
        pytest.skip(NOT_INLINE)
    job = driver.hold(pool)
    assert wait_until(lambda: running(driver) == 1)
    stopper, returned = stop_in_a_thread(pool, wait=False)
    try:
        assert returned.wait(WAIT), "stop(wait=False) waited for a running job"
        if driver.pool_name in CUTS_SHORT:
            assert pool.active() == 0 and job.history == [states.STARTED]
        else:
            assert pool.active() == 1
    finally:
        driver.release()
    stopper.join(WAIT)
    pool.stop(wait=True)
    assert pool.active() == 0


def test_stop_twice_is_harmless(driver: Driver) -> None:
    pool = driver.make_pool(2)
    pool.stop(wait=True)
    pool.stop(wait=True)


def test_a_failing_task_does_not_break_later_jobs(driver: Driver) -> None:
    pool = driver.make_pool(1)
    before = driver.submit(pool, "whereami")
    bad = driver.submit(pool, "boom")
    after = driver.submit(pool, "whereami")
    assert driver.wait_ended(3)
    pool.stop(wait=True)
    assert bad.history == [states.STARTED, states.FAILURE]
    assert bad.meta["result"]["exc_type"] == "RuntimeError"
    assert "RuntimeError: job failed" in bad.meta["traceback"]
    (pid, thread), (pid_after, thread_after) = before.result, after.result
    assert pid_after == pid, "the job after the failure ran in another process"
    if driver.pool_name not in THREAD_PER_JOB:
        assert thread_after == thread, "the job after the failure ran on another thread"
    assert pool.active() == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_invalid_concurrency(pool_name: str, bad: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        PM.get("pools", pool_name)(bad)


def test_info_names_the_pool(driver: Driver) -> None:
    pool = driver.make_pool(2)
    info = pool.info()
    assert info["implementation"] == pool.name
    assert info["max-concurrency"] == pool.concurrency
    pool.stop(wait=True)


# -- eventlet: the same tests in a process patched first ------------------------------

#: ``python -c`` this, then pytest's arguments: patched before pytest is imported.
PATCHED_PYTEST = ("import eventlet; eventlet.monkey_patch()\n"
                  "import sys, pytest\n"
                  "sys.exit(pytest.main(sys.argv[1:]))")


@pytest.mark.skipif(eventlet_patched(), reason="this is the patched process")
def test_eventlet_leg_runs_in_a_patched_process(tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    pytest.importorskip("eventlet")
    report = tmp_path / "eventlet.xml"
    # no pytest-benchmark: its git probe at start-up fails under green subprocesses
    out = subprocess.run(
        [sys.executable, "-c", PATCHED_PYTEST, "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:benchmark", "-p", "no:anyio", "-q", "-o", f"timeout={int(WAIT * 3)}",
         f"--junitxml={report}", "-k", "eventlet and not patched_process", __file__],
        cwd=request.config.rootpath, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    passed: list[str] = []
    skipped: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name, skip = case.get("name", ""), case.find("skipped")
        if skip is None:
            passed.append(name)
        else:
            skipped[name] = skip.get("message", "")
    # every contract test but the inline one, and nothing else
    assert all("[eventlet" in name for name in passed) and len(passed) >= 10, passed
    # what was skipped there does not apply to a pool that is not inline
    assert all(INLINE_ONLY in why for why in skipped.values()), skipped


# -- what one pool promises beyond the contract ------------------------------


def test_solo_runs_one_task_at_a_time() -> None:
    with pytest.raises(ValueError, match="one task at a time"):
        PM.get("pools", "solo")(2)


def test_solo_lets_a_raising_callable_reach_the_caller() -> None:
    def bad() -> None:
        raise RuntimeError("job failed")

    pool = PM.get("pools", "solo")(1)
    with pytest.raises(RuntimeError, match="job failed"):
        pool.apply(bad)
    assert pool.active() == 0


@pytest.mark.parametrize("name", ["threads", "asyncio"])
def test_a_raising_plain_callable_is_logged_and_the_slot_kept(
        name: str, caplog: pytest.LogCaptureFixture) -> None:
    """These pools also run plain callables, which may raise (a `Job` never does)."""
    caplog.set_level(logging.ERROR, logger="corekit.pool")
    pool = PM.get("pools", name)(1)
    pool.start()
    ok = threading.Event()

    def bad() -> None:
        raise RuntimeError("job failed")

    pool.apply(bad)
    pool.apply(ok.set)
    assert ok.wait(WAIT)
    pool.stop(wait=True)
    [record] = [r for r in caplog.records if r.name == "corekit.pool"]
    assert record.levelno == logging.ERROR and "job failed" in caplog.text
    assert pool.active() == 0


@pytest.fixture
def threads_pool() -> Iterator[Pool]:
    pool = PM.get("pools", "threads")(4)
    yield pool
    pool.stop(wait=False)


def test_threads_are_named_daemons_and_counted(threads_pool: Pool) -> None:
    threads_pool.start()
    threads_pool.start()  # a second start adds no threads
    names: set[str] = set()
    daemons: set[bool] = set()
    release, all_in, lock = threading.Event(), threading.Event(), threading.Lock()

    def job() -> None:
        me = threading.current_thread()
        with lock:
            names.add(me.name)
            daemons.add(me.daemon)
            if len(names) == 4:
                all_in.set()
        release.wait(WAIT)

    try:
        for _ in range(4):
            threads_pool.apply(job)
        assert all_in.wait(WAIT)
    finally:
        release.set()
    assert names == {f"corekit-pool-{n}" for n in range(1, 5)} and daemons == {True}
    assert threads_pool.info()["threads"] == 4
    threads_pool.stop(wait=True)
    assert threads_pool.info()["threads"] == 0


def test_threads_stop_without_wait_drops_queued_jobs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="corekit.pool")
    pool = PM.get("pools", "threads")(1)
    pool.start()
    running, release = threading.Event(), threading.Event()
    later: list[int] = []

    def job() -> None:
        running.set()
        release.wait(WAIT)

    pool.apply(job)
    for i in range(5):
        pool.apply(partial(later.append, i))
    try:
        assert running.wait(WAIT)
        pool.stop(wait=False)
    finally:
        release.set()
    pool.stop(wait=True)  # joins the thread: anything it would still run has run
    assert later == []
    assert "5 queued job(s) not started" in caplog.text
    with pytest.raises(RuntimeError, match="takes no new jobs"):
        pool.apply(lambda: None)
