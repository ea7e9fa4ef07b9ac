"""The ``threads`` pool: N threads fed from a queue."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from corekit.hookspecs import hookimpl
from corekit.pool import Pool

logger = logging.getLogger("corekit.pool")
_STOP = object()


class ThreadsPool(Pool):
    name = "threads"

    def __init__(self, concurrency: int, **options: Any) -> None:
        super().__init__(concurrency, **options)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._active = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        for n in range(self.concurrency):
            t = threading.Thread(target=self._loop, name=f"corekit-pool-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            with self._lock:
                self._active += 1
            try:
                job()
            except Exception:
                logger.exception("pool job raised")
            finally:
                with self._lock:
                    self._active -= 1

    def apply(self, job: Callable[[], Any]) -> None:
        self._jobs.put(job)

    def active(self) -> int:
        return self._active

    def stop(self, wait: bool = True) -> None:
        for _ in self._threads:
            self._jobs.put(_STOP)
        if wait:
            for t in self._threads:
                t.join()
        self._threads = []


@hookimpl
def corekit_register_pools() -> dict[str, type[Pool]]:
    return {"threads": ThreadsPool}
