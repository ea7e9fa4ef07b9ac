"""`EventletPool`: the ``eventlet`` pool's implementation (the package's
``__init__`` holds its hooks and its early patch).  It refuses to start in
an unpatched process rather than run green threads that block each other.
eventlet is imported only when the pool is built.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from corekit.exceptions import ImproperlyConfigured, SoftTimeLimitExceeded, TimeLimitExceeded
from corekit.pool import Pool
from corekit.worker.job import Job

logger = logging.getLogger("corekit.pool")

NOT_PATCHED = ("the eventlet pool needs the process monkey patched before anything else "
               "is imported: name it on the command line (corekit worker -P eventlet); "
               "worker_pool = 'eventlet' in the settings is seen too late. An embedding "
               "program calls eventlet.monkey_patch() first thing.")


def _eventlet() -> Any:
    try:
        import eventlet
    except ImportError:
        raise ImproperlyConfigured("the eventlet pool needs eventlet: "
                                   "pip install eventlet") from None
    return eventlet


class EventletPool(Pool):
    """A `eventlet.GreenPool` of ``concurrency`` green threads.  `apply`
    spawns the job in a green thread of its own; it waits for a free slot
    only when the worker submits more than ``concurrency`` jobs."""

    name = "eventlet"
    supports = frozenset({"time_limit", "soft_time_limit"})

    def __init__(self, concurrency: int, **options: Any) -> None:
        super().__init__(concurrency, **options)
        eventlet = _eventlet()
        if not eventlet.patcher.is_monkey_patched("socket"):
            raise ImproperlyConfigured(NOT_PATCHED)
        self._green = eventlet.GreenPool(concurrency)
        self._closed = False
        self._running: dict[int, Any] = {}  # id(job) -> its green thread
        self._terminated: dict[int, int] = {}  # id(job) -> signal, for killed jobs
        self._timed_out: dict[int, float] = {}  # id(job) -> hard limit, for killed jobs

    def apply(self, job: Callable[[], Any]) -> None:
        if self._closed:
            raise RuntimeError("the eventlet pool is stopped: it takes no new jobs")
        # spawn, not spawn_n: a GreenThread is what threading.current_thread()
        # reports inside the task, one per task, as with real threads
        self._green.spawn(self._run, job)

    def _run(self, job: Callable[[], Any]) -> None:
        import greenlet

        self._running[id(job)] = greenlet.getcurrent()
        try:
            timers = self._start_timers(job) if isinstance(job, Job) else []
        except Exception as exc:  # the job cannot be read (a corekit bug): its FAILURE
            logger.exception("internal error starting %r", job)
            self._running.pop(id(job), None)
            job.fail(exc)
            return
        try:
            job()
        except greenlet.GreenletExit:  # killed: by `terminate` or a hard time limit
            self._killed(job)
        except Exception:  # jobs never raise; should one, it is logged, not lost
            logger.exception("pool job %r failed", job)
        finally:
            for timer in timers:
                timer.cancel()
            self._running.pop(id(job), None)

    def _start_timers(self, job: Job) -> list[Any]:
        """Soft limit: `SoftTimeLimitExceeded` is raised where the task
        waits; hard limit: its green thread is killed."""
        eventlet = _eventlet()
        hard, soft = self.time_limits(job.call(), job.task)
        thread = self._running[id(job)]
        timers = []
        if soft:
            timers.append(eventlet.spawn_after(soft, eventlet.kill, thread, SoftTimeLimitExceeded,
                                               SoftTimeLimitExceeded(
                                                   f"soft time limit ({soft}s) exceeded")))
        if hard:
            def kill() -> None:
                self._timed_out[id(job)] = hard
                thread.kill()

            timers.append(eventlet.spawn_after(hard, kill))
        return timers

    def _killed(self, job: Any) -> None:
        signum = self._terminated.pop(id(job), None)
        hard = self._timed_out.pop(id(job), None)
        if signum is not None:
            job.revoke("terminated", terminated=True, signum=signum)
        elif hard is not None:
            logger.error("Hard time limit (%ss) exceeded for %r: green thread killed", hard, job)
            job.fail(TimeLimitExceeded(f"hard time limit ({hard}s) exceeded"))

    def terminate(self, job: Any, signum: int) -> bool:
        """Kill *job*'s green thread: ``GreenletExit`` is raised where it waits."""
        thread = self._running.get(id(job))
        if thread is None:
            return True  # it has finished already
        self._terminated[id(job)] = signum
        thread.kill()
        return True

    def active(self) -> int:
        return self._green.running()

    def resize(self, concurrency: int) -> None:
        """Change how many green threads run at once; surplus ones finish
        their task first."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        green, change = self._green, concurrency - self._green.size
        if change > 0:  # released one by one: an apply waiting for a slot wakes up
            green.size = concurrency
            for _ in range(change):
                green.sem.release()
        else:
            green.resize(concurrency)
        self.concurrency = concurrency

    def stop(self, wait: bool = True) -> None:
        """Take no new jobs; with *wait*, return once running ones finished."""
        self._closed = True
        if wait:
            self._green.waitall()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "free": self._green.free()}
