"""The ``prefork`` pool: task bodies run in forked child processes.

Children are forked (not spawned) so they inherit the app and its registered
tasks and are ready in milliseconds.  Each child has one pipe to the worker:
the worker sends a `TaskCall` (its time limits resolved), the child answers
(`corekit.plugins.prefork.child` is what runs in it).  One supervisor thread
owns every child: it hands queued jobs to idle children (here), reads their
answers, kills a child past its task's hard time limit, reaps children that
died (`corekit.plugins.prefork.children`), replaces them, and grows or
shrinks the pool (``autoscale``, and remote control's ``pool_grow``,
``pool_shrink`` and ``autoscale``: here).  Keeping all of that on one thread
means the child table needs no lock.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any, Callable

from corekit.exceptions import ImproperlyConfigured
from corekit.plugins.prefork.children import Child, Children
from corekit.pool import Pool

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.task import Task
    from corekit.worker.job import Job, TaskCall

logger = logging.getLogger("corekit.pool")

#: autoscale: a child above the minimum exits after this long without work
SHRINK_AFTER = 3.0
#: the longest the supervisor waits at once (poll takes at most 2**31 ms)
MAX_WAIT = 3600.0


def _given(options: dict[str, Any], key: str, setting: Any) -> Any:
    """The worker's override of an option, else the setting's value."""
    value = options.get(key)
    return setting if value is None else value


def _autoscale_range(value: Any) -> tuple[int, int]:
    """``(max, min)`` from ``worker_autoscale`` / ``--autoscale``."""
    try:
        high, low = (int(n) for n in value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"autoscale (worker_autoscale) must be (max, min), two "
                                   f"whole numbers, not {value!r}") from None
    return high, low


class PreforkPool(Pool):
    """``concurrency`` forked children (with ``autoscale=(max, min)``:
    between min and max, and `concurrency` is max).  `apply` queues the job
    and never blocks; the worker submits at most `concurrency` at once."""

    name = "prefork"
    supports = frozenset({"max_tasks_per_child", "max_memory_per_child", "autoscale",
                          "time_limit", "soft_time_limit"})

    def __init__(self, concurrency: int, **options: Any) -> None:
        super().__init__(concurrency, **options)
        if options.get("app") is None:
            raise ImproperlyConfigured("the prefork pool needs the app (the worker passes it)")
        self.app: Corekit = options["app"]
        conf = self.app.conf  # this plugin's settings, unless the worker overrides them
        self.options.update(
            autoscale=_given(options, "autoscale", conf.worker_autoscale),
            max_tasks_per_child=_given(options, "max_tasks_per_child",
                                       conf.worker_max_tasks_per_child),
            max_memory_per_child=_given(options, "max_memory_per_child",
                                        conf.worker_max_memory_per_child))
        self.min_children = concurrency
        self._autoscale = bool(self.options["autoscale"])
        if self._autoscale:
            high, low = _autoscale_range(self.options["autoscale"])
            self.concurrency, self.min_children = high, max(1, min(low, high))
        self.max_tasks: int | None = self.options["max_tasks_per_child"]
        self.max_memory: int | None = self.options["max_memory_per_child"]
        self.time_limit: float | None = options.get("time_limit")
        self.soft_time_limit: float | None = options.get("soft_time_limit")
        self._pending: deque[Job] = deque()
        self._terminations: deque[tuple[Job, int]] = deque()  # revoke(terminate=True)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        #: changed by the supervisor only
        self._children = Children(multiprocessing.get_context("fork"), self.app,
                                  self.max_tasks, self.max_memory,
                                  (self._wake_r, self._wake_w))
        self._thread = threading.Thread(target=self._supervise, name="corekit-prefork",
                                        daemon=True)
        self._closing = self._abandon = False

    # -- the Pool contract -----------------------------------------------------------
    def start(self) -> None:
        """Fork the first children without waiting on them (a forked child
        is ready as soon as it exists), then start the supervisor."""
        if self._closing:
            raise RuntimeError("the prefork pool was stopped and cannot start again")
        if self._thread.is_alive():
            return
        for _ in range(self.min_children):
            self._children.spawn()
        self._thread.start()

    def apply(self, job: Callable[[], Any]) -> None:
        """Queue *job* for the next idle child; never blocks."""
        if self._closing:
            raise RuntimeError("the prefork pool is stopped: it takes no new jobs")
        self._pending.append(job)  # type: ignore[arg-type]
        self._wake()

    def terminate(self, job: Any, signum: int) -> bool:
        """Kill the child running *job* with *signum* (from any thread: the
        supervisor does it)."""
        self._terminations.append((job, signum))
        self._wake()
        return True

    def active(self) -> int:
        return sum(1 for c in self._children if c.job is not None)

    def resize(self, concurrency: int) -> None:
        """Keep *concurrency* children: new ones are forked at once; those
        let go leave when idle (idle ones first, busy ones after their task)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if self._autoscale:
            raise ValueError("this pool autoscales: change its range (autoscale) instead")
        self.concurrency = self.min_children = concurrency
        self._wake()

    def autoscale(self, maximum: int, minimum: int) -> None:
        """Between *minimum* (at least one child, as at start-up) and *maximum*."""
        if not 0 <= minimum <= maximum or maximum < 1:
            raise ValueError(f"autoscale needs 0 <= min <= max and max >= 1, not "
                             f"max={maximum} min={minimum}")
        self._autoscale = True
        self.concurrency, self.min_children = maximum, max(1, minimum)
        self._wake()

    @property
    def autoscaling(self) -> tuple[int, int] | None:
        return (self.concurrency, self.min_children) if self._autoscale else None

    def pid_of(self, job: Any) -> int:
        child = self._children.running(job)
        return child.pid if child is not None else os.getpid()

    def stop(self, wait: bool = True) -> None:
        """With *wait*, run every queued job, then let the children exit.
        Without, terminate them: their running jobs report nothing (a
        late-acked message goes back to the broker when the lease lapses)."""
        self._closing = True
        self._abandon = self._abandon or not wait
        self._wake()
        if self._thread.is_alive():
            self._thread.join()
        elif self._children:  # never supervised
            self._shut_down_children()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "processes": [c.pid for c in self._children],
                "max-tasks-per-child": self.max_tasks,
                "max-memory-per-child": self.max_memory,
                "autoscale": [self.concurrency, self.min_children],
                "timeouts": [self.time_limit, self.soft_time_limit]}

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # full (the supervisor is awake anyway) or closed (stopped)
            pass

    # -- the supervisor --------------------------------------------------------------
    def _supervise(self) -> None:
        """Runs until the pool stops; an error here is logged, never fatal."""
        children = self._children
        while not self._abandon:
            try:
                self._scale()
                self._dispatch()
                if self._closing and not self._pending and not self.active():
                    break
                children.wait_and_read(self._wake_r, self._timeout(), self._closing)
                children.enforce_time_limits()
                while self._terminations:
                    children.terminate(*self._terminations.popleft())
            except Exception:
                logger.exception("prefork pool supervisor error (carrying on)")
                time.sleep(0.1)  # no hot loop if the error repeats
        self._shut_down_children()

    def _timeout(self) -> float | None:
        """How long the supervisor may wait: until the nearest hard time
        limit, at most `MAX_WAIT` (poll takes no more than 2**31 ms)."""
        now = time.monotonic()
        children = list(self._children)
        timeouts = [c.deadline - now for c in children if c.deadline]
        if sum(c.serving for c in children) > self.min_children:
            timeouts.append(SHRINK_AFTER / 4)
        return max(0.0, min(*timeouts, MAX_WAIT)) if timeouts else None

    def _scale(self) -> None:
        """Keep the children the load needs: always `min_children` serving;
        with autoscale, one more per waiting job up to `concurrency`, and a
        surplus child idle for `SHRINK_AFTER` seconds is let go.  While
        stopping, children are only replaced to run what is still queued."""
        if self._closing and not self._pending:
            return
        serving = [c for c in self._children if c.serving]
        busy = sum(c.job is not None for c in serving)
        wanted = max(self.min_children, min(self.concurrency, busy + len(self._pending)))
        if wanted > len(serving) and len(serving) >= self.min_children:
            logger.info("autoscale: %d job(s) waiting, growing to %d child processes",
                        len(self._pending), wanted)
        for _ in range(wanted - len(serving)):
            self._children.spawn()
        if len(serving) > self.concurrency:  # shrunk: idle children leave first
            for child in sorted(serving, key=lambda c: c.job is not None
                                )[:len(serving) - self.concurrency]:
                self._children.retire(child)
                logger.info("Child process %d leaves: the pool shrinks to %d", child.pid,
                            self.concurrency)
            return
        if len(serving) <= self.min_children or self._pending or self._closing:
            return
        now = time.monotonic()
        for child in sorted(serving, key=lambda c: c.idle_since):
            if len(serving) <= self.min_children:
                break
            if child.idle and now - child.idle_since >= SHRINK_AFTER:
                self._children.retire(child)
                serving.remove(child)
                logger.info("autoscale: child process %d idle for %.0fs, shrinking to %d",
                            child.pid, now - child.idle_since, len(serving))

    def _dispatch(self) -> None:
        while self._pending:
            child = self._children.idle()
            if child is None:
                return
            self._send(child, self._pending.popleft())

    def _send(self, child: Child, job: Job) -> None:
        try:
            call = job.call()
            call.time_limit, call.soft_time_limit = self._limits(call, job.task)
            data = ForkingPickler.dumps(call)
        except Exception as exc:
            logger.exception("Cannot send %r to a child process", job)
            job.fail(exc)
            return
        if not self._children.send(child, job, data, call.time_limit):
            self._pending.appendleft(job)

    def _limits(self, call: TaskCall, task: Task[Any, Any]) -> tuple[float | None, float | None]:
        """(hard, soft): the call's own, else the task's, else the worker's."""
        return (first(call.time_limit, task.time_limit, self.time_limit),
                first(call.soft_time_limit, task.soft_time_limit, self.soft_time_limit))

    def _shut_down_children(self) -> None:
        self._children.shut_down(self._abandon, len(self._pending))
        self._pending.clear()


def first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
