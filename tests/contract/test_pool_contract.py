"""The pool contract (corekit.pool.Pool), run on every installed pool whose
jobs may be plain closures; pools that run jobs in other processes or on an
event loop are listed with a skip reason until their issue teaches this suite
to drive them.

Synchronisation is by events and counters only; a short timed wait appears
solely to observe that something does *not* happen (a fifth job starting).
"""
from __future__ import annotations

import logging
import threading
from functools import partial
from typing import Callable, Iterator

import pytest

from corekit.pluginmanager import default_manager
from corekit.pool import Pool

PM = default_manager()
WAIT = 10.0  # upper bound for things that must happen; never reached when green

#: Pools whose jobs may be plain in-process closures (asyncio runs them in
#: its thread executor).
CLOSURE_POOLS = {"solo", "threads", "asyncio"}
POOLS = [pytest.param(name, marks=pytest.mark.skipif(
            name not in CLOSURE_POOLS,
            reason=f"pool {name!r} cannot run plain closures: it needs its own driver"))
         for name in sorted(PM.registry("pools"))]

MakePool = Callable[[int], Pool]


@pytest.fixture(params=POOLS)
def pool_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_pool(pool_name: str) -> Iterator[MakePool]:
    """Build started pools of one kind; an inline pool always gets one slot."""
    factory = PM.get("pools", pool_name)
    made: list[Pool] = []

    def make(concurrency: int) -> Pool:
        pool = factory(1 if factory.inline else concurrency)
        pool.start()
        made.append(pool)
        return pool

    yield make
    for pool in made:  # a failed test must not leave threads waiting on a join
        pool.stop(wait=False)


class Gauge:
    """Counts jobs running at once and remembers the peak."""

    def __init__(self, expected: int) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.started = self.finished = 0
        self.expected = expected
        self.all_done = threading.Event()

    def enter(self) -> int:
        with self.lock:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)
            return self.running

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            self.finished += 1
            if self.finished == self.expected:
                self.all_done.set()


def test_jobs_run_and_all_complete(make_pool: MakePool) -> None:
    pool = make_pool(3)
    gauge = Gauge(expected=20)
    done: list[int] = []

    def job(i: int) -> None:
        gauge.enter()
        done.append(i)
        gauge.leave()

    for i in range(20):
        pool.apply(partial(job, i))
    assert gauge.all_done.wait(WAIT)
    pool.stop(wait=True)
    assert sorted(done) == list(range(20))


def test_inline_pool_runs_the_job_before_apply_returns(make_pool: MakePool) -> None:
    pool = make_pool(1)
    if not pool.inline:
        pytest.skip("only inline pools promise to run the job inside apply")
    caller, ran_in = threading.get_ident(), []
    pool.apply(lambda: ran_in.append(threading.get_ident()))
    assert ran_in == [caller]


def test_concurrency_is_bounded(make_pool: MakePool) -> None:
    pool = make_pool(4)
    if pool.inline:
        pytest.skip("an inline pool runs one job at a time by construction")
    gauge = Gauge(expected=8)
    release, four_in, over = threading.Event(), threading.Event(), threading.Event()

    def job() -> None:
        now = gauge.enter()
        if now == 4:
            four_in.set()
        elif now > 4:
            over.set()
        release.wait(WAIT)
        gauge.leave()

    try:
        for _ in range(8):
            pool.apply(job)
        assert four_in.wait(WAIT), "four jobs never ran at once"
        assert not over.wait(0.2), "more than four jobs ran at once"
        assert gauge.started == 4 and pool.active() == 4
    finally:
        release.set()
    assert gauge.all_done.wait(WAIT)
    pool.stop(wait=True)
    assert gauge.peak == 4 and pool.active() == 0


def test_active_counts_running_jobs(make_pool: MakePool) -> None:
    pool = make_pool(4)
    seen: list[int] = []
    if pool.inline:
        pool.apply(lambda: seen.append(pool.active()))
        assert seen == [1] and pool.active() == 0
        return
    release, both_in, gauge = threading.Event(), threading.Event(), Gauge(expected=2)

    def job() -> None:
        if gauge.enter() == 2:
            both_in.set()
        release.wait(WAIT)
        gauge.leave()

    assert pool.active() == 0
    try:
        pool.apply(job)
        pool.apply(job)
        assert both_in.wait(WAIT)
        assert pool.active() == 2
    finally:
        release.set()
    pool.stop(wait=True)
    assert pool.active() == 0


def test_stop_wait_finishes_running_and_queued_work(make_pool: MakePool) -> None:
    pool = make_pool(1)
    done: list[int] = []
    if pool.inline:
        for i in range(50):
            pool.apply(partial(done.append, i))
        pool.stop(wait=True)
        assert len(done) == 50
        return
    stopping, first_finished = threading.Event(), threading.Event()

    def first() -> None:  # holds the only slot until stop is under way
        stopping.wait(WAIT)
        first_finished.set()

    pool.apply(first)
    for i in range(50):
        pool.apply(partial(done.append, i))
    stopping.set()
    pool.stop(wait=True)
    assert first_finished.is_set() and len(done) == 50


def test_stop_without_wait_does_not_wait_for_running_jobs(make_pool: MakePool) -> None:
    pool = make_pool(1)
    if pool.inline:
        pytest.skip("an inline pool has nothing running once apply returned")
    running, release, returned = threading.Event(), threading.Event(), threading.Event()

    def job() -> None:
        running.set()
        release.wait(WAIT)

    pool.apply(job)
    assert running.wait(WAIT)

    def stop_without_wait() -> None:
        pool.stop(wait=False)
        returned.set()

    stopper = threading.Thread(target=stop_without_wait)
    try:
        stopper.start()
        assert returned.wait(WAIT), "stop(wait=False) waited for a running job"
        assert pool.active() == 1
    finally:
        release.set()
    stopper.join(WAIT)
    pool.stop(wait=True)
    assert pool.active() == 0


def test_stop_twice_is_harmless(make_pool: MakePool) -> None:
    pool = make_pool(2)
    pool.stop(wait=True)
    pool.stop(wait=True)


def test_a_raising_job_does_not_break_later_jobs(make_pool: MakePool,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    pool = make_pool(1)
    caplog.set_level(logging.ERROR, logger="corekit.pool")
    threads: list[int] = []
    ok = threading.Event()

    def bad() -> None:
        threads.append(threading.get_ident())
        raise RuntimeError("job failed")

    def good() -> None:
        threads.append(threading.get_ident())
        ok.set()

    if pool.inline:  # the caller's own thread: the error is the caller's
        with pytest.raises(RuntimeError, match="job failed"):
            pool.apply(bad)
    else:
        pool.apply(bad)
    pool.apply(good)
    assert ok.wait(WAIT)
    pool.stop(wait=True)
    assert threads[0] == threads[1], "the job after the failure ran on another thread"
    assert pool.active() == 0
    if not pool.inline:
        [record] = [r for r in caplog.records if r.name == "corekit.pool"]
        assert record.levelno == logging.ERROR and "job failed" in caplog.text


@pytest.mark.parametrize("bad", [0, -1])
def test_invalid_concurrency(pool_name: str, bad: int) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        PM.get("pools", pool_name)(bad)


def test_info_names_the_pool(make_pool: MakePool) -> None:
    pool = make_pool(2)
    info = pool.info()
    assert info["implementation"] == pool.name
    assert info["max-concurrency"] == pool.concurrency
    pool.stop(wait=True)


# -- what one pool promises beyond the contract ------------------------------


def test_solo_runs_one_task_at_a_time() -> None:
    with pytest.raises(ValueError, match="one task at a time"):
        PM.get("pools", "solo")(2)


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
    release, gauge, all_in = threading.Event(), Gauge(expected=4), threading.Event()

    def job() -> None:
        me = threading.current_thread()
        names.add(me.name)
        daemons.add(me.daemon)
        if gauge.enter() == 4:
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
