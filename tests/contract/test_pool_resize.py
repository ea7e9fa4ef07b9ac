"""Resizing a running pool (remote control's pool_grow, pool_shrink and
autoscale), on every pool that can: threads, prefork, asyncio, eventlet
(its leg runs in a monkey patched subprocess, as in the pool contract).
solo has a fixed size and only prefork autoscales: they refuse, saying so.

Concurrency is counted with the driver's board (``running-*`` marks), so
it is seen whatever process or green thread runs the task; a short timed
wait appears only to see that a job does *not* start.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import pytest

from corekit.pool import Pool
from pool_driver import PM, WAIT, Driver, eventlet_patched, wait_until
from test_pool_contract import EVENTLET_LEG, PATCHED_PYTEST

RESIZABLE = [pytest.param(name, marks=pytest.mark.skipif(
                name == "eventlet" and not eventlet_patched(), reason=EVENTLET_LEG))
             for name in ("asyncio", "eventlet", "prefork", "threads")]


@pytest.fixture(params=RESIZABLE)
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    driver = Driver(str(request.param), tmp_path)
    yield driver
    driver.close()


def running(driver: Driver) -> int:
    return driver.board.count("running-")


def submit_holds(driver: Driver, pool: Pool, n: int) -> threading.Thread:
    """*n* hold jobs from a thread of their own (eventlet's apply waits for a slot)."""
    submitter = threading.Thread(target=lambda: [driver.hold(pool) for _ in range(n)])
    submitter.start()
    return submitter


def test_grow_runs_more_jobs_at_once(driver: Driver) -> None:
    pool = driver.make_pool(2)
    submitter = submit_holds(driver, pool, 5)
    try:
        assert wait_until(lambda: running(driver) == 2)
        assert not wait_until(lambda: running(driver) > 2, 0.2), "more than two ran at once"
        pool.resize(4)
        assert pool.concurrency == 4
        assert wait_until(lambda: running(driver) == 4), "the new slots took no job"
        assert not wait_until(lambda: running(driver) > 4, 0.2), "more than four ran at once"
    finally:
        driver.release()
    submitter.join(WAIT)
    assert driver.wait_ended(5)


def test_shrink_runs_fewer_jobs_at_once(driver: Driver) -> None:
    pool = driver.make_pool(4)
    pool.resize(2)
    assert pool.concurrency == 2
    submitter = submit_holds(driver, pool, 4)
    try:
        assert wait_until(lambda: running(driver) == 2)
        assert not wait_until(lambda: running(driver) > 2, 0.3), "more than two ran at once"
    finally:
        driver.release()
    submitter.join(WAIT)
    assert driver.wait_ended(4)
    assert driver.board.highest("seen-") == 2


def test_shrink_lets_busy_slots_finish_first(driver: Driver) -> None:
    pool = driver.make_pool(3)
    submitter = submit_holds(driver, pool, 3)
    assert wait_until(lambda: running(driver) == 3)
    pool.resize(1)
    assert running(driver) == 3  # nobody was cut short
    driver.release()
    submitter.join(WAIT)
    assert driver.wait_ended(3)
    assert all(job.history[-1] == "SUCCESS" for job in driver.jobs)


def test_a_pool_cannot_shrink_to_nothing(driver: Driver) -> None:
    pool = driver.make_pool(1)
    with pytest.raises(ValueError, match="at least 1"):
        pool.resize(0)


@pytest.mark.parametrize("pool_name", ["threads", "prefork"])
def test_let_go_threads_and_processes_leave(pool_name: str, tmp_path: Path) -> None:
    driver = Driver(pool_name, tmp_path)
    try:
        pool = driver.make_pool(3)
        count = "threads" if pool_name == "threads" else "processes"

        def size() -> int:
            value = pool.info()[count]
            return value if isinstance(value, int) else len(value)

        assert wait_until(lambda: size() == 3)
        pool.resize(1)
        assert wait_until(lambda: size() == 1), pool.info()
        pool.resize(2)
        assert wait_until(lambda: size() == 2), pool.info()
    finally:
        driver.close()


def test_solo_has_a_fixed_size(tmp_path: Path) -> None:
    pool = PM.get("pools", "solo")(1)
    with pytest.raises(NotImplementedError, match="solo pool cannot change its size"):
        pool.resize(2)


@pytest.mark.parametrize("pool_name", ["solo", "threads", "asyncio"])
def test_only_prefork_autoscales(pool_name: str) -> None:
    pool = PM.get("pools", pool_name)(1)
    with pytest.raises(NotImplementedError, match="does not autoscale"):
        pool.autoscale(3, 1)
    assert pool.autoscaling is None
    pool.stop()


def test_prefork_autoscale_range_changes_live(tmp_path: Path) -> None:
    driver = Driver("prefork", tmp_path)
    try:
        pool = driver.make_pool(1)
        assert pool.autoscaling is None
        pool.autoscale(3, 1)
        assert pool.autoscaling == (3, 1)
        submitter = submit_holds(driver, pool, 3)
        assert wait_until(lambda: running(driver) == 3), "autoscale did not grow to three"
        with pytest.raises(ValueError, match="autoscales"):
            pool.resize(2)
        driver.release()
        submitter.join(WAIT)
        assert driver.wait_ended(3)
    finally:
        driver.close()


@pytest.mark.skipif(eventlet_patched(), reason="this is the patched process")
def test_eventlet_leg_runs_in_a_patched_process(tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    pytest.importorskip("eventlet")
    report = tmp_path / "eventlet.xml"
    out = subprocess.run(
        [sys.executable, "-c", PATCHED_PYTEST, "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:benchmark", "-p", "no:anyio", "-q", "-o", f"timeout={int(WAIT * 3)}",
         f"--junitxml={report}", "-k", "eventlet and not patched_process", __file__],
        cwd=request.config.rootpath, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    cases = list(ET.parse(report).getroot().iter("testcase"))
    passed = [c.get("name", "") for c in cases if c.find("skipped") is None]
    assert len(passed) == 4 and all("[eventlet]" in name for name in passed), passed
