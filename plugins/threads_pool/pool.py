"""The ``threads`` pool: N daemon threads fed from a queue."""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable

from corekit.pool import Pool

logger = logging.getLogger("corekit.pool")
_STOP = object()


class ThreadsPool(Pool):
    """``concurrency`` threads named ``corekit-pool-N`` take jobs from one
    unbounded queue, so `apply` never blocks: the worker bounds submissions.
    `resize` starts threads, or queues a stop for each thread let go (it
    exits after the jobs queued before it)."""

    name = "threads"

    def __init__(self, concurrency: int, **options: Any) -> None:
        super().__init__(concurrency, **options)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._active = 0
        self._lock = threading.Lock()
        self._closed = False
        self._named = 0  # threads started so far, for their names

    def start(self) -> None:
        """Start the threads (once; a second call does nothing)."""
        if self._closed:
            raise RuntimeError("the threads pool was stopped and cannot start again")
        if self._threads:
            return
        self._spawn(self.concurrency)

    def _spawn(self, n: int) -> None:
        for _ in range(n):
            self._named += 1
            t = threading.Thread(target=self._loop, name=f"corekit-pool-{self._named}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def resize(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if self._closed:
            raise RuntimeError("the threads pool is stopped")
        with self._lock:
            change, self.concurrency = concurrency - self.concurrency, concurrency
            if not self._threads:  # not started: `start` makes the new number
                return
            self._threads = [t for t in self._threads if t.is_alive()]
            if change > 0:
                self._spawn(change)
        for _ in range(-change):
            self._jobs.put(_STOP)

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            with self._lock:
                self._active += 1
            try:
                job()
            except BaseException:  # a raising job must not cost the pool a slot
                logger.exception("pool job %r raised", job)
            finally:
                with self._lock:
                    self._active -= 1

    def apply(self, job: Callable[[], Any]) -> None:
        """Queue *job*; never blocks.  Jobs applied before `start` wait for it."""
        if self._closed:
            raise RuntimeError("the threads pool is stopped: it takes no new jobs")
        self._jobs.put(job)

    def active(self) -> int:
        return self._active

    def stop(self, wait: bool = True) -> None:
        """With *wait*, run every queued job, then join the threads.  Without,
        drop the jobs not yet started and return while running ones finish."""
        first_call = not self._closed
        self._closed = True
        if first_call:
            if not wait:
                self._discard_queued()
            for _ in self._threads:
                self._jobs.put(_STOP)
        if wait:
            for t in self._threads:
                t.join()
            self._threads = []

    def _discard_queued(self) -> None:
        dropped = 0
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        if dropped:
            logger.warning("threads pool stopped without waiting: %d queued job(s) "
                           "not started", dropped)

    def info(self) -> dict[str, Any]:
        alive = sum(t.is_alive() for t in self._threads)
        return {**super().info(), "threads": alive}
