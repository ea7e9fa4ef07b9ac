"""Pool dispatch, pure Python."""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable


class Dispatcher:
    def __init__(self, apply: Callable[[Any], None], capacity: int) -> None:
        self.apply = apply
        self.capacity = capacity
        self._ready: deque[Any] = deque()
        self._inflight = 0
        self._acks: list[Any] = []
        self._lock = threading.Lock()

    def add(self, requests: list[Any]) -> None:
        self._ready.extend(requests)

    def dispatch(self) -> int:
        n = 0
        while self._ready:
            with self._lock:
                if self._inflight >= self.capacity:
                    break
                self._inflight += 1
            req = self._ready.popleft()
            try:
                self.apply(req)
            except BaseException:
                with self._lock:
                    self._inflight -= 1
                self._ready.appendleft(req)
                raise
            n += 1
        return n

    def done(self, request: Any, ack_message: Any) -> None:
        with self._lock:
            self._inflight -= 1
            if ack_message is not None:
                self._acks.append(ack_message)

    def take_acks(self) -> list[Any]:
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
        return len(self._ready) + self._inflight

    def wants(self, prefetch_limit: int) -> int:
        return max(0, prefetch_limit - self.reserved)

    def drain_ready(self) -> list[Any]:
        out = list(self._ready)
        self._ready.clear()
        return out

    def set_capacity(self, n: int) -> None:
        self.capacity = n
