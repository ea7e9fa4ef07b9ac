"""Drives any pool the way the worker does: with `Job` objects whose tasks
are registered on a real app, so that a pool running task bodies in other
processes (prefork) or green threads (eventlet) takes the same jobs as one
calling them in a thread.

What a task does is seen in two ways that work across processes:

* its outcome comes back through ``job.started``/``job.finish`` in this
  process, whatever the pool (recorded by the `Driver`);
* while it runs, it leaves marks on a `Board`: files in a directory, which
  any process can write and count.

Nothing sleeps to make something happen: waits poll for a condition and
give up at a deadline.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from corekit import Corekit, states
from corekit.pluginmanager import default_manager
from corekit.pool import Pool
from corekit.request import Request
from corekit.task import Task
from corekit.worker.job import Job, TaskCall

PM = default_manager()
WAIT = 10.0  # upper bound for things that must happen; never reached when green
HOSTNAME = "contract@localhost"


def wait_until(predicate: Callable[[], Any], timeout: float = WAIT) -> bool:
    """True once *predicate* holds, False at the deadline (time.sleep is
    green under eventlet, so green threads run meanwhile)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def eventlet_patched() -> bool:
    """Is this process monkey patched by eventlet (the only way its pool runs)?"""
    patcher = sys.modules.get("eventlet.patcher")
    return patcher is not None and bool(patcher.is_monkey_patched("socket"))


class Board:
    """Marks left by tasks in any process: one empty file per mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def post(self, mark: str) -> None:
        (self.path / mark).touch()

    def remove(self, mark: str) -> None:
        (self.path / mark).unlink()

    def has(self, mark: str) -> bool:
        return (self.path / mark).exists()

    def count(self, prefix: str) -> int:
        return sum(1 for _ in self.path.glob(f"{prefix}*"))

    def highest(self, prefix: str) -> int:
        """The highest N of the marks ``<prefix>N``; 0 without any."""
        return max((int(p.name[len(prefix):]) for p in self.path.glob(f"{prefix}*")),
                   default=0)


# -- the tasks: plain functions, registered on each driver's app ------------------------
def echo(value: Any) -> Any:
    return value


def whereami() -> list[int]:
    """The process and thread running the task."""
    return [os.getpid(), threading.get_ident()]


def boom() -> None:
    raise RuntimeError("job failed")


def hold(board_dir: str) -> int:
    """Run until ``release`` is posted, counted among ``running-*`` the
    while; returns how many ran at once when it started (also posted as
    ``seen-N``, so the highest one is the peak)."""
    board, me = Board(Path(board_dir)), f"running-{uuid.uuid4().hex}"
    board.post(me)
    now = board.count("running-")
    board.post(f"seen-{now}")
    wait_until(lambda: board.has("release"))
    board.remove(me)
    return now


TASKS = (echo, whereami, boom, hold)


@dataclass(frozen=True)
class Headers:
    """What a pool may read of a job's message without decoding its body."""

    id: str
    task: str
    expires: float | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    ignore_result: bool = False


class ContractJob(Job):
    """A `Job` as the consumer hands it to a pool, without a broker: its
    call is built here, and how it ends is reported to its `Driver`.  It
    has what pools use: ``__call__`` (inherited: `execute`, then
    `finish`), `call`, `task`, `id`, `headers`, `acks_late`, `started`,
    `finish`, `fail` (inherited: `finish` with FAILURE), `requeue` and
    `request`."""

    def __init__(self, driver: Driver, pool: Pool, task: Task[Any, Any],
                 args: tuple[Any, ...]) -> None:
        self.driver, self.pool, self.task = driver, pool, task
        self.args = list(args)
        self.kwargs: dict[str, Any] = {}
        self.acks_late = False
        self.headers = Headers(uuid.uuid4().hex, task.name)
        #: the states reported, in order: STARTED, then how it ended
        #: (REQUEUED for `requeue`, nothing for a finish without a result)
        self.history: list[str] = []
        #: pool.active() seen each time the job reported STARTED
        self.active_when_started: list[int] = []
        self.endings: list[list[dict[str, Any]]] = []

    def call(self) -> TaskCall:
        h = self.headers
        return TaskCall(task=h.task, id=h.id, args=self.args, kwargs={},
                        request={"id": h.id, "task": h.task, "args": self.args, "kwargs": {},
                                 "hostname": HOSTNAME},
                        hostname=HOSTNAME, track_started=True,
                        time_limit=h.time_limit, soft_time_limit=h.soft_time_limit)

    def request(self) -> Request:
        return Request(**self.call().request)

    def started(self, metas: list[dict[str, Any]]) -> None:
        self.active_when_started.append(self.pool.active())
        self.history += [meta["status"] for meta in metas]

    def finish(self, metas: list[dict[str, Any]]) -> None:
        self.driver.ended(self, metas)

    def requeue(self) -> None:
        self.history.append("REQUEUED")
        self.driver.ended(self, [])

    # -- how it ended, once it did -------------------------------------------------
    @property
    def meta(self) -> dict[str, Any]:
        """The one meta the job finished with."""
        [metas] = self.endings
        [meta] = metas
        return meta

    @property
    def result(self) -> Any:
        assert self.meta["status"] == states.SUCCESS, self.meta
        return self.meta["result"]


class Driver:
    """Pools of one kind, given jobs whose tasks are registered on an app of
    the driver's own (before any pool forks), with a `Board` for the marks."""

    def __init__(self, pool_name: str, tmp_path: Path) -> None:
        self.pool_name = pool_name
        self.factory: type[Pool] = PM.get("pools", pool_name)
        name = uuid.uuid4().hex
        self.app = Corekit("contract", broker=f"memory://{name}", backend=f"memory://{name}")
        self.tasks = {fn.__name__: self.app.task(name=f"contract.{fn.__name__}")(fn)
                      for fn in TASKS}
        self.board = Board(tmp_path / "board")
        self.pools: list[Pool] = []
        self.jobs: list[ContractJob] = []
        self._ended = threading.Condition()
        self._ended_count = 0

    @property
    def inline(self) -> bool:
        return self.factory.inline

    def make_pool(self, concurrency: int) -> Pool:
        """A started pool with the options the worker gives (an inline pool
        always gets one slot)."""
        pool = self.factory(1 if self.inline else concurrency, app=self.app,
                            hostname=HOSTNAME)
        pool.start()
        self.pools.append(pool)
        return pool

    def submit(self, pool: Pool, task: str, *args: Any) -> ContractJob:
        job = ContractJob(self, pool, self.tasks[task], args)
        self.jobs.append(job)
        pool.apply(job)
        return job

    def hold(self, pool: Pool) -> ContractJob:
        """A job that runs until `release`."""
        return self.submit(pool, "hold", str(self.board.path))

    def release(self) -> None:
        self.board.post("release")

    def ended(self, job: ContractJob, metas: list[dict[str, Any]]) -> None:
        with self._ended:
            job.history += [meta["status"] for meta in metas]
            job.endings.append(metas)
            self._ended_count += 1
            self._ended.notify_all()

    def wait_ended(self, count: int, timeout: float = WAIT) -> bool:
        """True once *count* jobs ended (finished, failed or requeued)."""
        with self._ended:
            return self._ended.wait_for(lambda: self._ended_count >= count, timeout)

    def close(self) -> None:
        """A failed test must not leave children, threads or waiting tasks."""
        self.release()
        for pool in self.pools:
            pool.stop(wait=False)
        self.app.close()
