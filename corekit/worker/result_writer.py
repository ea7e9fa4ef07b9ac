"""One thread writes every finished task's state, many at a time.

Pool threads hand over metas and go back to work; the writer stores all that
has piled up in one backend round trip (one SQLite transaction, one Redis
pipeline).  A late-acked message is released for acking only once its result
is stored (`take_acks`), so an ack never comes before its result.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Mapping, Sequence

from corekit.result_backend import ResultBackend
from corekit.worker.startup import is_connection_error, one_line_reason

logger = logging.getLogger("corekit.worker")

MAX_BATCH = 1000
MAX_RETRY_DELAY = 5.0
_STOP = object()


class ResultWriter:
    def __init__(self, backend: ResultBackend) -> None:
        self.backend = backend
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._acks: list[Any] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="corekit-results", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._thread.is_alive():
            self._stopping.set()
            self._queue.put(_STOP)
            self._thread.join()

    def submit(self, metas: Sequence[Mapping[str, Any]], ack: Any = None,
               then: Callable[[], None] | None = None) -> None:
        """Store *metas* (in order); then *ack* (a message, or None) is ready
        to be acked, and *then* is called (a chord's join counts a part only
        once the part's state is stored)."""
        self._queue.put((metas, ack) if then is None else (metas, ack, then))

    def take_acks(self) -> list[Any]:
        """Messages whose results are stored, to ack now."""
        acks, self._acks = self._acks, []
        return acks

    def flush(self) -> None:
        """Block until everything submitted so far is written."""
        if self._thread.is_alive():
            written = threading.Event()
            self._queue.put(((), written))
            written.wait()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(item is _STOP for item in batch)
            items = [item for item in batch if item is not _STOP]
            self._write(items)
            if stopping:
                self._write(self._drain())
                return

    def _store(self, metas: list[Mapping[str, Any]]) -> None:
        """Store, retrying while the backend is down (0.1 s doubling to 5 s):
        results are not dropped for an outage.  Once stopping, three more
        tries, then the loss is logged.  `store_many` raises only for an
        outage: a meta that cannot be encoded becomes its task's FAILURE."""
        delay, failures = 0.1, 0
        while True:
            try:
                self.backend.store_many(metas)
                if failures:
                    logger.warning("result backend is back after %d failed attempt(s)",
                                   failures)
                return
            except Exception as exc:
                failures += 1
                if failures == 1:  # one line for an outage; a bug keeps its traceback
                    logger.error("could not store %d task result(s) at %s: %s; retrying with "
                                 "backoff (0.1 s doubling to %g s)", len(metas),
                                 self.backend.describe(), one_line_reason(exc), MAX_RETRY_DELAY,
                                 exc_info=None if is_connection_error(exc) else exc)
                logger.debug("result backend failing (attempt %d)", failures, exc_info=exc)
                if self._stopping.is_set() and failures >= 3:
                    logger.error("gave up storing %d task result(s) at shutdown", len(metas))
                    return
                self._stopping.wait(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    def _drain(self) -> list[Any]:
        items = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return items
            if item is not _STOP:
                items.append(item)

    def _write(self, items: list[tuple[Any, ...]]) -> None:
        if not items:
            return
        metas = [meta for item in items for meta in item[0]]
        if metas:
            self._store(metas)
        for item in items:
            if len(item) == 3:
                try:
                    item[2]()
                except Exception:
                    logger.exception("after storing %s", [m.get("task_id") for m in item[0]])
            ack = item[1]
            if isinstance(ack, threading.Event):
                ack.set()
            elif ack is not None:
                self._acks.append(ack)
