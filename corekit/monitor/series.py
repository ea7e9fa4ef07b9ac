"""Counts over time for the monitor's charts: how many tasks succeeded,
failed... in each second of the last minutes and each minute of the last hour."""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable

#: Event types counted in the series, by the name the charts use.
COUNTED = {"task-received": "received", "task-succeeded": "succeeded",
           "task-failed": "failed", "task-retried": "retried", "task-revoked": "revoked"}


class RateSeries:
    """Counts per *step*-second bucket over the last *length* buckets.

    Buckets are keyed by wall-clock time of arrival (not the event's own
    timestamp), so that workers with skewed clocks land in the right place.
    """

    def __init__(self, step: float, length: int, kinds: Iterable[str]) -> None:
        self.step = step
        self.length = length
        self.kinds = tuple(kinds)
        self._buckets: dict[int, dict[str, int]] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, when: float | None = None, count: int = 1) -> None:
        index = int((time.time() if when is None else when) // self.step)
        with self._lock:
            bucket = self._buckets.get(index)
            if bucket is None:
                bucket = self._buckets[index] = dict.fromkeys(self.kinds, 0)
                self._forget_before(index - self.length + 1)
            bucket[kind] = bucket.get(kind, 0) + count

    def _forget_before(self, index: int) -> None:
        for old in [i for i in self._buckets if i < index]:
            del self._buckets[old]

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        """``{"step", "start", "counts": {kind: [n, ...]}}``: *length* counts
        per kind, oldest first, the last one being the current bucket."""
        last = int((time.time() if now is None else now) // self.step)
        first = last - self.length + 1
        with self._lock:
            buckets = {i: dict(b) for i, b in self._buckets.items() if i >= first}
        counts = {kind: [buckets.get(i, {}).get(kind, 0) for i in range(first, last + 1)]
                  for kind in self.kinds}
        return {"step": self.step, "start": first * self.step, "counts": counts}


class Throughput:
    """Per-second (last 5 minutes) and per-minute (last hour) task counts."""

    def __init__(self) -> None:
        kinds = tuple(COUNTED.values())
        self.per_second = RateSeries(1.0, 300, kinds)
        self.per_minute = RateSeries(60.0, 60, kinds)

    def event(self, event_type: str, when: float | None = None) -> None:
        kind = COUNTED.get(event_type)
        if kind is None:
            return
        when = time.time() if when is None else when
        self.per_second.add(kind, when)
        self.per_minute.add(kind, when)

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        return {"per_second": self.per_second.as_dict(now),
                "per_minute": self.per_minute.as_dict(now)}
