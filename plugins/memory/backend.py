"""The in-process ``memory://NAME`` result backend."""
from __future__ import annotations

import threading
import time
from typing import Any, Sequence

from corekit import states
from corekit.backend import ResultBackend
from corekit.exceptions import TimeoutError as CorekitTimeoutError

_stores: dict[str, tuple[threading.Condition, dict[str, tuple[bytes, str]]]] = {}
_lock = threading.Lock()


class MemoryBackend(ResultBackend):
    scheme = "memory"

    def __init__(self, url: str, codecs: Any, options: Any = None) -> None:
        super().__init__(url, codecs, options)
        with _lock:
            self.cond, self.data = _stores.setdefault(url, (threading.Condition(), {}))

    def _get(self, task_id: str) -> bytes | None:
        with self.cond:
            entry = self.data.get(task_id)
        return entry[0] if entry else None

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        with self.cond:
            for task_id, data, status in items:
                self.data[task_id] = (data, status)
            self.cond.notify_all()

    def _delete(self, task_id: str) -> None:
        with self.cond:
            self.data.pop(task_id, None)

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5
                 ) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while True:
                entry = self.data.get(task_id)
                if entry and entry[1] in states.READY_STATES:
                    return self.decode_meta(entry[0])
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise CorekitTimeoutError(
                        f"the operation timed out after {timeout}s waiting for task {task_id}")
                self.cond.wait(left)
