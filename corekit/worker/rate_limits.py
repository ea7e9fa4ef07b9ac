"""The consumer's rate limiters: which jobs of a batch may run now.

A task's ``rate_limit`` becomes a token bucket per task type, built the
first time a job of that task arrives (`corekit.ratelimit`): in this worker
(`TokenBucket`), or on the broker for ``rate_limit_global`` (`BrokerBucket`).
A job without a token waits in the consumer's timer until its token is due.

Remote control's ``rate_limit`` command changes a task's limit from its own
thread; `reset` swaps the dict of limiters whole, so the loop, which reads
it once per batch, sees either the old limiters or the new ones.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

from corekit.exceptions import ImproperlyConfigured
from corekit.ratelimit import BrokerBucket, TokenBucket, parse_rate

if TYPE_CHECKING:
    from corekit.transport import Transport
    from corekit.worker.job import Job


class RateLimits:
    """Per-task limiters for one consumer and its transport."""

    def __init__(self, transport: Transport, tasks: Iterable[Any]) -> None:
        self.transport = transport
        #: task name -> its limiter, or None for a task without a limit
        self.limiters: dict[str, Any] = {}
        check_global_limits(transport, tasks)

    def admit(self, jobs: list[Job], hold: Callable[[float, Job], None]) -> list[Job]:
        """The jobs their task's limit lets run now; the others go to *hold*
        with the time their token is due (their messages stay unacked)."""
        limiters = self.limiters  # one dict per batch: `reset` swaps it
        admitted: list[Job] = []
        limited: dict[str, tuple[Any, list[Job]]] = {}
        for job in jobs:
            task = job.task
            try:
                limiter = limiters[task.name]
            except KeyError:
                limiter = limiters[task.name] = self.limiter_for(task)
            if limiter is None:
                admitted.append(job)
            else:
                limited.setdefault(task.name, (limiter, []))[1].append(job)
        if limited:
            now = time.time()
            for limiter, group in limited.values():
                granted, wait = limiter.take(len(group))
                admitted += group[:granted]
                for i, job in enumerate(group[granted:]):
                    hold(now + wait + i / limiter.rate, job)
        return admitted

    def limiter_for(self, task: Any) -> Any:
        """A new limiter for *task*'s ``rate_limit`` as it is now (None: no limit)."""
        rate = parse_rate(task.rate_limit)
        if rate is None:
            return None
        if task.rate_limit_global:
            return BrokerBucket(self.transport, f"rate:{task.name}", rate)
        return TokenBucket(rate)

    def reset(self, task_name: str) -> None:
        """Forget *task_name*'s limiter: its next job builds one from the
        task's ``rate_limit`` as it is then.  Jobs already waiting for a
        token keep their turn."""
        fresh = dict(self.limiters)
        fresh.pop(task_name, None)
        self.limiters = fresh


def check_global_limits(transport: Transport, tasks: Iterable[Any]) -> None:
    """Refuse to start when a task wants a global rate limit this broker cannot keep."""
    if "rate_limit" in transport.capabilities:
        return
    for task in tasks:
        if task.rate_limit and task.rate_limit_global:
            raise ImproperlyConfigured(
                f"task {task.name} has a global rate limit, which needs a broker that "
                f"keeps it (a transport with the rate_limit capability), "
                f"not {transport.scheme}://")
