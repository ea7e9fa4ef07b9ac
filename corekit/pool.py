"""The pool contract: where task bodies run."""
from __future__ import annotations

import os
from typing import Any, Callable, ClassVar

from corekit.exceptions import ImproperlyConfigured

#: Options every pool gets from the worker and may ignore.
COMMON_OPTIONS = frozenset({"app", "hostname"})


class Pool:
    """Runs jobs with bounded concurrency.  Subclasses are registered by name
    through ``corekit_register_pools``.

    A job (`corekit.worker.job.Job`) is a zero-argument callable that runs
    one task to its end in the calling thread (its result stored, its
    completion reported); it never raises.  A pool that runs tasks in other
    processes sends ``job.call()`` (a picklable `TaskCall`) there, runs
    ``corekit.worker.job.execute(call, app.tasks[call.task], started)`` on
    it, and hands the returned metas back to ``job.finish(metas)`` in the
    worker process (``job.started(metas)`` for a STARTED state on the way).
    ``job.task`` is the task (`time_limits` resolves a call's limits);
    ``job.fail``, ``job.revoke`` and ``job.requeue`` end a job the task's
    code did not end.
    `apply` may block while every slot is busy; the worker never submits more
    jobs than `concurrency` at once unless prefetched.
    """

    name: ClassVar[str] = ""
    #: True when `apply` runs the job before returning (the solo pool).
    inline: ClassVar[bool] = False
    #: Worker options this pool honours besides `COMMON_OPTIONS`
    #: (``max_tasks_per_child``, ``max_memory_per_child``, ``autoscale``...);
    #: any other option given a value is refused at start-up.
    supports: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, concurrency: int, **options: Any) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        refused = sorted(k for k, v in options.items()
                         if v is not None and k not in COMMON_OPTIONS | self.supports)
        if refused:
            raise ImproperlyConfigured(
                f"the {self.name} pool cannot honour {', '.join(refused)}: "
                f"use a pool that can, or leave it out")
        self.concurrency = concurrency
        self.options = options

    def start(self) -> None:
        """Start the workers (threads, processes...)."""

    def stop(self, wait: bool = True) -> None:
        """Stop; with *wait*, let running jobs finish first."""

    def apply(self, job: Callable[[], Any]) -> None:
        """Run *job* in the pool."""
        raise NotImplementedError

    def time_limits(self, call: Any, task: Any) -> tuple[float | None, float | None]:
        """``(hard, soft)`` seconds for a `TaskCall` of *task*: the call's
        own, else the task's, else the worker's (``time_limit`` /
        ``soft_time_limit`` options)."""
        return (_first(call.time_limit, task.time_limit, self.options.get("time_limit")),
                _first(call.soft_time_limit, task.soft_time_limit,
                       self.options.get("soft_time_limit")))

    def enforces(self, task: Any, limit: str) -> bool:
        """Whether this pool enforces *task*'s ``time_limit`` or
        ``soft_time_limit`` (a worker refuses to start when not)."""
        return limit in self.supports

    def terminate(self, job: Any, signum: int) -> bool:
        """Kill *job* where it runs and report it REVOKED (``job.revoke(
        "terminated", terminated=True, signum=signum)``); False when this pool
        cannot stop a running task (threads, solo)."""
        return False

    def active(self) -> int:
        """How many jobs are running now."""
        raise NotImplementedError

    def resize(self, concurrency: int) -> None:
        """Run up to *concurrency* jobs at once from now on (remote control's
        ``pool_grow`` / ``pool_shrink``): extra slots are ready at once, and
        slots let go finish their running job first.  Any thread.
        NotImplementedError when this pool has a fixed size (solo)."""
        raise NotImplementedError(f"the {self.name} pool cannot change its size")

    def autoscale(self, maximum: int, minimum: int) -> None:
        """Keep between *minimum* and *maximum* slots by load from now on
        (remote control's ``autoscale``).  Any thread.  NotImplementedError
        when this pool does not autoscale (most do not)."""
        raise NotImplementedError(f"the {self.name} pool does not autoscale: use a pool "
                                  f"that does")

    @property
    def autoscaling(self) -> tuple[int, int] | None:
        """``(max, min)`` while this pool autoscales, else None."""
        return None

    def pid_of(self, job: Any) -> int:
        """The process running *job* (remote inspection's ``worker_pid``)."""
        return os.getpid()

    def info(self) -> dict[str, Any]:
        return {"implementation": self.name, "max-concurrency": self.concurrency}


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
