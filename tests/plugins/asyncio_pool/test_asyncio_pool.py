"""The ``asyncio`` pool: ``async def`` tasks run concurrently on one event
loop, -c N at once; plain tasks run in a thread beside it.

Concurrency is proven as counts of tasks running at once, never as timings:
each task waits (with a generous deadline) until the expected number ran at
once, then holds its slot a little longer, so a pool that ran fewer at once
shows a lower peak and one that ran more shows a higher one.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.plugins.asyncio_pool.pool import AsyncioPool
from corekit.pool import Pool
from corekit.testing import start_worker
from corekit.worker import Worker
from corekit.worker.job import Job, TaskCall
from corekit.worker.steps import PoolStep

WAIT = 30.0  # an upper bound on what must happen; never reached when green


class Gauge:
    """Tasks running at once, and the most ever seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = self.started = self.finished = 0

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.started += 1
            self.peak = max(self.peak, self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1
            self.finished += 1

    async def hold(self, peak: int, seconds: float) -> None:
        """Wait until *peak* tasks ran at once (or the deadline), then hold
        the slot *seconds* more so that any excess would overlap too."""
        deadline = time.monotonic() + WAIT
        while self.peak < peak and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        await asyncio.sleep(seconds)


def pool_of(worker: Worker) -> Pool:
    return worker.blueprint[PoolStep].pool


def wait_until(predicate: Any, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- concurrency, as counts ------------------------------------------------------
@pytest.mark.parametrize("concurrency, tasks", [(200, 200), (10, 50)])
def test_peak_concurrency_is_exactly_c(redis_app: Corekit, concurrency: int,
                                       tasks: int) -> None:
    gauge = Gauge()

    @redis_app.task
    async def hold() -> int:
        gauge.enter()
        try:
            await gauge.hold(concurrency, 0.5)
        finally:
            gauge.leave()
        return gauge.peak

    with start_worker(redis_app, pool="asyncio", concurrency=concurrency) as worker:
        results = [hold.delay() for _ in range(tasks)]
        assert len([r.get(timeout=WAIT) for r in results]) == tasks
        assert pool_of(worker).active() == 0
    assert gauge.finished == tasks
    assert gauge.peak == concurrency


def test_async_tasks_run_on_the_loop_sync_tasks_in_a_thread_beside_it(
        redis_app: Corekit) -> None:
    gate = threading.Event()

    @redis_app.task
    def blocking() -> str:
        assert gate.wait(WAIT)
        return threading.current_thread().name

    @redis_app.task
    async def quick(i: int) -> list[Any]:
        await asyncio.sleep(0.01)
        return [i, threading.current_thread().name]

    with start_worker(redis_app, pool="asyncio", concurrency=10) as worker:
        pool = pool_of(worker)
        assert isinstance(pool, AsyncioPool) and pool.loop_thread is not None
        stuck = blocking.delay()
        wait_until(lambda: pool.active() == 1)  # the sync task is blocked in its thread
        # the loop is free: async tasks start and finish while the sync one is stuck
        assert [quick.delay(i).get(timeout=WAIT) for i in range(20)] == [
            [i, pool.loop_thread.name] for i in range(20)]
        assert not stuck.ready()
        gate.set()
        thread_name = stuck.get(timeout=WAIT)
    assert thread_name.startswith("corekit-asyncio-sync")
    assert thread_name != pool.loop_thread.name


def test_concurrent_coroutines_each_see_their_own_request(redis_app: Corekit) -> None:
    gauge = Gauge()

    @redis_app.task(bind=True)
    async def whoami(self) -> list[Any]:  # type: ignore[no-untyped-def]
        before = self.request.id
        gauge.enter()
        try:
            await gauge.hold(50, 0.05)  # all fifty are suspended here at once
        finally:
            gauge.leave()
        return [before, self.request.id]

    with start_worker(redis_app, pool="asyncio", concurrency=50):
        results = [whoami.delay() for _ in range(50)]
        seen = [r.get(timeout=WAIT) for r in results]
    assert gauge.peak == 50
    assert seen == [[r.id, r.id] for r in results]


# -- failures and retries ----------------------------------------------------------
def test_an_async_task_that_raises_fails_with_its_own_exception(redis_app: Corekit) -> None:
    @redis_app.task
    async def broken(key: str) -> None:
        await asyncio.sleep(0)
        raise KeyError(key)

    @redis_app.task
    async def after() -> str:
        return "ok"

    with start_worker(redis_app, pool="asyncio", concurrency=4):
        result = broken.delay("missing")
        with pytest.raises(KeyError, match="missing"):
            assert result.get(timeout=WAIT) is None
        assert result.state == "FAILURE"
        # the loop survived: the pool still runs tasks
        assert after.delay().get(timeout=WAIT) == "ok"


def test_async_tasks_retry_by_autoretry_and_by_self_retry(redis_app: Corekit) -> None:
    attempts: dict[str, int] = {}

    @redis_app.task(bind=True, autoretry_for=(ConnectionError,), default_retry_delay=0,
                    retry_jitter=False)
    async def flaky(self) -> int:  # type: ignore[no-untyped-def]
        attempts[self.request.id] = attempts.get(self.request.id, 0) + 1
        await asyncio.sleep(0)
        if self.request.retries < 2:
            raise ConnectionError("not yet")
        return int(self.request.retries)

    @redis_app.task(bind=True)
    async def patient(self) -> int:  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        if self.request.retries < 2:
            raise self.retry(countdown=0)
        return int(self.request.retries)

    with start_worker(redis_app, pool="asyncio", concurrency=4):
        a, b = flaky.delay(), patient.delay()
        assert a.get(timeout=WAIT) == 2 and b.get(timeout=WAIT) == 2
    assert attempts == {a.id: 3}


# -- stopping --------------------------------------------------------------------
def test_warm_shutdown_waits_for_running_coroutines(redis_app: Corekit) -> None:
    gauge = Gauge()

    @redis_app.task
    async def slow() -> str:
        gauge.enter()
        await asyncio.sleep(0.5)
        gauge.leave()
        return "done"

    with start_worker(redis_app, pool="asyncio", concurrency=20):
        results = [slow.delay() for _ in range(20)]
        wait_until(lambda: gauge.started == 20)
        assert gauge.finished < 20
    assert gauge.finished == 20  # the with block's warm shutdown waited for them
    assert [r.get(timeout=WAIT) for r in results] == ["done"] * 20


class _Job(Job):
    """A job run straight on a pool, without a broker: it records how it ended."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.ended: list[list[dict[str, Any]]] = []

    def call(self) -> TaskCall:
        return TaskCall(task=self.task.name, id="job-1", args=[], kwargs={},
                        request={"id": "job-1", "task": self.task.name}, hostname="here")

    def started(self, metas: list[dict[str, Any]]) -> None:
        pass

    def finish(self, metas: list[dict[str, Any]]) -> None:
        self.ended.append(metas)


@pytest.fixture
def asyncio_pool() -> Iterator[AsyncioPool]:
    pool = AsyncioPool(4)
    pool.start()
    yield pool
    pool.stop(wait=True)


def test_stop_without_wait_cancels_running_coroutines(memory_app: Corekit,
                                                      asyncio_pool: AsyncioPool) -> None:
    entered, cancelled = threading.Event(), threading.Event()

    @memory_app.task
    async def forever() -> None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = _Job(forever)
    asyncio_pool.apply(job)
    assert entered.wait(WAIT) and asyncio_pool.active() == 1
    asyncio_pool.stop(wait=False)
    assert cancelled.is_set()
    assert job.ended == []  # not finished: an acks_late message stays unacked
    assert asyncio_pool.active() == 0
    assert asyncio_pool.loop_thread is not None
    asyncio_pool.loop_thread.join(WAIT)
    assert not asyncio_pool.loop_thread.is_alive()


def test_stop_with_wait_finishes_what_was_applied(memory_app: Corekit,
                                                  asyncio_pool: AsyncioPool) -> None:
    @memory_app.task
    async def nap() -> str:
        await asyncio.sleep(0.05)
        return "rested"

    jobs = [_Job(nap) for _ in range(12)]  # three rounds of four slots
    for job in jobs:
        asyncio_pool.apply(job)
    asyncio_pool.stop(wait=True)
    assert [len(job.ended) for job in jobs] == [1] * 12
    assert {job.ended[0][0]["status"] for job in jobs} == {"SUCCESS"}
    with pytest.raises(RuntimeError, match="stopped"):
        asyncio_pool.apply(jobs[0])


def test_info_and_refused_options() -> None:
    pool = AsyncioPool(1000)
    assert pool.info() == {"implementation": "asyncio", "max-concurrency": 1000,
                           "running": 0, "executor-threads": 32}
    pool.stop()
    with pytest.raises(Exception, match="max_tasks_per_child"):
        AsyncioPool(4, max_tasks_per_child=10)


# -- a worker process with -c 1000 ------------------------------------------------------
PROJ = '''
import asyncio, os
import redis
from corekit import Corekit

app = Corekit("proj", broker=os.environ["TEST_BROKER"], backend=os.environ["TEST_BROKER"])
counter = redis.Redis.from_url(os.environ["TEST_BROKER"])
ENTER = counter.register_script("""
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n""")

@app.task
async def sleepy(i):
    ENTER(keys=["gauge:running", "gauge:peak"])
    try:
        await asyncio.sleep(1)
    finally:
        counter.decr("gauge:running")
    return i
'''


@pytest.mark.slow
def test_a_worker_process_runs_1000_coroutines_at_once(redis_url: str, tmp_path: Path,
                                                       record_property: Any) -> None:
    import redis

    (tmp_path / "proj.py").write_text(PROJ)
    env = {**os.environ, "TEST_BROKER": redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "corekit", "-A", "proj", "worker",
                               "-P", "asyncio", "-c", "1000", "-l", "info", "--no-banner"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if "ready." in line:
                break
        else:
            raise AssertionError(f"worker exited with {worker.wait()}")
        log = worker.stdout  # keep reading: a full pipe would stall the worker
        threading.Thread(target=lambda: log.read(), daemon=True).start()
        client = ("import time, proj\n"
                  "t = time.perf_counter()\n"
                  "rs = [proj.sleepy.delay(i) for i in range(1000)]\n"
                  "assert [r.get(timeout=120) for r in rs] == list(range(1000))\n"
                  "print(time.perf_counter() - t)")
        out = subprocess.run([sys.executable, "-c", client], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        wall = float(out.stdout)
        r = redis.Redis.from_url(redis_url)
        peak = int(r.get("gauge:peak") or 0)
        record_property("wall_seconds_1000_tasks", wall)
        print(f"1,000 tasks of asyncio.sleep(1) on -P asyncio -c 1000: {wall:.2f}s, "
              f"peak {peak} at once")
        assert int(r.get("gauge:running") or 0) == 0
        assert peak >= 900
    finally:
        worker.terminate()
        worker.wait(60)


def test_a_hard_time_limit_cancels_a_coroutine(redis_app: Corekit) -> None:
    from corekit import TimeLimitExceeded

    @redis_app.task(name="proj.dawdle", time_limit=0.3)
    async def dawdle() -> None:
        await asyncio.sleep(60)

    @redis_app.task(name="proj.quick")
    async def quick() -> str:
        return "quick"

    with start_worker(redis_app, pool="asyncio", concurrency=4):
        with pytest.raises(TimeLimitExceeded, match="hard time limit"):
            dawdle.delay().get(timeout=15)
        assert quick.delay().get(timeout=15) == "quick"


def test_limits_the_pool_cannot_enforce_fail_at_start(memory_app: Corekit) -> None:
    from corekit.exceptions import ImproperlyConfigured

    @memory_app.task(name="proj.soft", soft_time_limit=1)
    async def soft() -> None:
        pass

    with pytest.raises(ImproperlyConfigured, match="soft_time_limit"):
        memory_app.Worker(pool="asyncio", concurrency=2).setup()

    del memory_app.tasks["proj.soft"]

    @memory_app.task(name="proj.blocking", time_limit=1)
    def blocking() -> None:  # a thread in the executor cannot be stopped
        pass

    with pytest.raises(ImproperlyConfigured, match="proj.blocking has a time_limit"):
        memory_app.Worker(pool="asyncio", concurrency=2).setup()
