"""What remote control changes in a running consumer: the queues it
consumes, how much it prefetches, its rate limiters.

The control thread calls these methods while the consumer's loop runs on
its own thread.  The loop reads `queues`, `prefetch_limit` and the rate
limiters once per turn; each is replaced whole, never changed in place, so
a turn sees either the old value or the new one and needs no lock.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from corekit._speedups import Dispatcher
    from corekit.worker.rate_limits import RateLimits


class LiveSettings:
    """The consumer's settings remote control may change while it runs."""

    def __init__(self, queues: Sequence[str], prefetch_multiplier: int, concurrency: int,
                 dispatcher: Dispatcher, rate_limits: RateLimits | None,
                 wake: threading.Event) -> None:
        self.queues = list(queues)
        self.prefetch_multiplier = max(1, prefetch_multiplier)
        #: messages the consumer holds at most (ready, running, waiting in its timer)
        self.prefetch_limit = self.prefetch_multiplier * concurrency
        #: None when the worker runs with rate limits off
        self.rate_limits = rate_limits
        self._dispatcher = dispatcher
        self._wake = wake

    def add_queue(self, name: str) -> bool:
        """Consume *name* too, from the next turn on; False if it already is."""
        if name in self.queues:
            return False
        self.queues = [*self.queues, name]
        self._wake.set()
        return True

    def cancel_queue(self, name: str) -> bool:
        """Stop consuming *name* from the next turn on (messages already
        fetched from it still run); False if it was not consumed."""
        if name not in self.queues:
            return False
        if len(self.queues) == 1:
            raise ValueError(f"cannot stop consuming {name!r}: it is the only queue this "
                             f"worker consumes")
        self.queues = [q for q in self.queues if q != name]
        return True

    def reset_rate_limit(self, task_name: str) -> None:
        """*task_name*'s next job takes the task's ``rate_limit`` as it is now."""
        if self.rate_limits is None:
            raise ValueError("rate limits are off on this worker (worker_disable_rate_limits)")
        self.rate_limits.reset(task_name)

    def resize(self, concurrency: int) -> None:
        """The pool now runs *concurrency* jobs at once: hand it that many
        and prefetch for that many."""
        self._dispatcher.set_capacity(concurrency)
        self.prefetch_limit = self.prefetch_multiplier * concurrency
        self._wake.set()
