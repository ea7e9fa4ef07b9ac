"""The pool contract (corekit.pool.Pool), on every pool whose jobs may be
plain closures (pools that run jobs in other processes join with their
issue)."""
from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from corekit.pluginmanager import default_manager

PM = default_manager()

IN_PROCESS = {"solo", "threads"}
POOLS = [pytest.param(name, marks=pytest.mark.skipif(
            name not in IN_PROCESS, reason=f"{name} runs jobs out of process: own suite"))
         for name in sorted(PM.registry("pools"))]


@pytest.fixture(params=POOLS)
def pool_factory(request: pytest.FixtureRequest) -> Any:
    return PM.get("pools", request.param)


def test_jobs_run_and_complete(pool_factory: Any) -> None:
    pool = pool_factory(1)
    pool.start()
    done: list[int] = []
    finished = threading.Event()
    for i in range(20):
        pool.apply(lambda i=i: (done.append(i), i == 19 and finished.set()))
    assert finished.wait(10)
    pool.stop(wait=True)
    assert sorted(done) == list(range(20))
    assert pool.info()["implementation"] == pool.name


def test_concurrency_is_bounded(pool_factory: Any) -> None:
    if pool_factory.inline:
        pytest.skip("an inline pool runs one job at a time by construction")
    pool = pool_factory(4)
    pool.start()
    lock, running, peak = threading.Lock(), [0], [0]
    release, four_in = threading.Event(), threading.Event()

    def job() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            if running[0] == 4:
                four_in.set()
        release.wait(10)
        with lock:
            running[0] -= 1

    for _ in range(8):
        pool.apply(job)
    assert four_in.wait(10)
    assert pool.active() == 4
    release.set()
    pool.stop(wait=True)
    assert peak[0] == 4 and pool.active() == 0


def test_stop_wait_finishes_queued_work(pool_factory: Any) -> None:
    pool = pool_factory(1)
    pool.start()
    done: list[int] = []
    for i in range(50):
        pool.apply(lambda i=i: done.append(i))
    pool.stop(wait=True)
    assert len(done) == 50


def test_a_raising_job_does_not_break_the_pool(pool_factory: Any, caplog: Any) -> None:
    pool = pool_factory(1)
    pool.start()
    caplog.set_level(logging.ERROR, logger="corekit.pool")
    ok = threading.Event()

    def bad() -> None:
        raise RuntimeError("job failed")

    if pool.inline:
        with pytest.raises(RuntimeError):
            pool.apply(bad)
    else:
        pool.apply(bad)
    pool.apply(ok.set)
    assert ok.wait(10)
    pool.stop(wait=True)
    if not pool.inline:
        assert "job failed" in caplog.text


def test_invalid_concurrency(pool_factory: Any) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        pool_factory(0)


def test_solo_runs_one_at_a_time() -> None:
    with pytest.raises(ValueError, match="one task at a time"):
        PM.get("pools", "solo")(2)
