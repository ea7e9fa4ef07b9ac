"""Pool dispatch, pure Python: the ready FIFO, in-flight accounting against
the pool's capacity, and acks collected for one batched ack.  Twin of
``_dispatch.pyx``."""
from __future__ import annotations

import operator
import threading
from collections import deque
from typing import Any, Callable, Iterable


class Dispatcher:
    """Hands ready requests to ``apply`` while fewer than ``capacity`` are in
    flight.  `dispatch` runs on the consumer's thread; `done` may be called
    from any thread, even from inside ``apply`` (a pool that runs inline).
    ``apply`` is never called with the lock held."""

    __slots__ = ("_apply", "_capacity", "_ready", "_inflight", "_acks", "_lock")

    def __init__(self, apply: Callable[[Any], None], capacity: int) -> None:
        self._apply = apply
        self._capacity = _capacity(capacity)
        self._ready: deque[Any] = deque()
        self._inflight = 0
        self._acks: list[Any] = []
        self._lock = threading.Lock()

    @property
    def apply(self) -> Callable[[Any], None]:
        return self._apply

    @property
    def capacity(self) -> int:
        return self._capacity

    def set_capacity(self, n: int) -> None:
        """Allow *n* requests in flight (0 pauses dispatch)."""
        n = _capacity(n)
        with self._lock:
            self._capacity = n

    def add(self, requests: Iterable[Any]) -> None:
        """Append to the ready FIFO."""
        if type(requests) is not list:
            requests = list(requests)
        with self._lock:
            self._ready.extend(requests)

    def dispatch(self) -> int:
        """Hand ready requests to ``apply`` while there is capacity; return
        how many.  If ``apply`` raises, that request and the rest of its
        batch go back to the front of the FIFO and the exception propagates."""
        handed, apply, lock, ready = 0, self._apply, self._lock, self._ready
        while True:
            with lock:
                k = min(self._capacity - self._inflight, len(ready))
                if k <= 0:
                    return handed
                if k == len(ready):
                    batch = list(ready)
                    ready.clear()
                else:
                    batch = [ready.popleft() for _ in range(k)]
                self._inflight += k
            i = 0
            try:
                for request in batch:
                    apply(request)
                    i += 1
            except BaseException:
                with lock:
                    self._inflight -= k - i
                    ready.extendleft(reversed(batch[i:]))
                raise
            handed += k

    def done(self, request: Any, ack_message: Any) -> None:
        """A dispatched request finished: free its slot and queue
        *ack_message* (None: nothing to ack).  Thread-safe."""
        with self._lock:
            idle = self._inflight <= 0
            if not idle:
                self._inflight -= 1
                if ack_message is not None:
                    self._acks.append(ack_message)
        if idle:
            raise RuntimeError(f"done({request!r}) with nothing in flight")

    def take_acks(self) -> list[Any]:
        """Take every pending ack at once."""
        with self._lock:
            acks, self._acks = self._acks, []
        return acks

    @property
    def inflight(self) -> int:
        return self._inflight

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def reserved(self) -> int:
        """Requests this worker holds: ready plus in flight."""
        with self._lock:
            return len(self._ready) + self._inflight

    def wants(self, prefetch_limit: int) -> int:
        """How many more messages to fetch to hold *prefetch_limit*."""
        return max(0, prefetch_limit - self.reserved)

    def drain_ready(self) -> list[Any]:
        """Remove and return the requests not yet dispatched."""
        with self._lock:
            out = list(self._ready)
            self._ready.clear()
        return out

    def __repr__(self) -> str:
        return (f"<Dispatcher ready={self.ready_count} inflight={self._inflight}"
                f"/{self._capacity}>")


def _capacity(n: int) -> int:
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"capacity must be >= 0, not {n}")
    return n
