"""The in-process ``memory://`` result backend.

Backends built with the same URL share one store.  `wait_for` sleeps on the
store's condition variable and is woken by the store itself, so a result is
seen the moment it is written, with no polling.  Results live as long as the
process (or until `reset`): there is no expiry, for counters neither.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Mapping, Sequence

from corekit import states
from corekit.result_backend import ResultBackend
from corekit.exceptions import TimeoutError as CorekitTimeoutError
from corekit.serialization import Codecs


class ResultStore:
    """``task_id -> (encoded meta, status)``, the counters, and a condition
    to wait on (its lock guards both dicts)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.data: dict[str, tuple[bytes, str]] = {}
        self.counters: dict[str, int] = {}
        self.revocations: list[dict[str, Any]] = []

    def reset(self) -> None:
        with self.cond:
            self.data.clear()
            self.counters.clear()
            self.revocations.clear()


_stores: dict[str, ResultStore] = {}
_lock = threading.Lock()


def store_for(url: str) -> ResultStore:
    with _lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = ResultStore()
        return store


def reset() -> None:
    """Forget every stored result of every memory:// URL, in place."""
    with _lock:
        stores = list(_stores.values())
    for store in stores:
        store.reset()


class MemoryBackend(ResultBackend):
    """Results in a dict shared per URL."""

    scheme = "memory"

    def __init__(self, url: str, codecs: Codecs, options: Mapping[str, Any] | None = None
                 ) -> None:
        super().__init__(url, codecs, options)
        self.store = store_for(url)

    def _get(self, task_id: str) -> bytes | None:
        with self.store.cond:
            entry = self.store.data.get(task_id)
        return entry[0] if entry else None

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        with self.store.cond:
            for task_id, data, status in items:
                self.store.data[task_id] = (data, status)
            self.store.cond.notify_all()

    def _delete(self, task_id: str) -> None:
        with self.store.cond:
            self.store.data.pop(task_id, None)

    def incr(self, key: str, amount: int = 1) -> int:
        with self.store.cond:
            value = self.store.counters[key] = self.store.counters.get(key, 0) + amount
        return value

    def get_counter(self, key: str) -> int:
        with self.store.cond:
            return self.store.counters.get(key, 0)

    def delete_counter(self, key: str) -> None:
        with self.store.cond:
            self.store.counters.pop(key, None)

    def add_revocations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        oldest = time.time() - float(self.options.get("revokes_expire", 10800.0))
        with self.store.cond:
            self.store.revocations = [e for e in self.store.revocations if e["at"] >= oldest]
            self.store.revocations.extend(dict(e) for e in entries if e["at"] >= oldest)

    def revocations(self, since: float) -> list[dict[str, Any]]:
        with self.store.cond:
            return [dict(e) for e in self.store.revocations if e["at"] >= since]

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5
                 ) -> dict[str, Any]:
        """Sleep until `_set_many` stores a ready state for *task_id*."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.store.cond:
            while True:
                entry = self.store.data.get(task_id)
                if entry is not None and entry[1] in states.READY_STATES:
                    data = entry[0]
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise CorekitTimeoutError(f"the operation timed out after {timeout}s "
                                              f"waiting for task {task_id}")
                self.store.cond.wait(left)
        return self.decode_meta(data)
