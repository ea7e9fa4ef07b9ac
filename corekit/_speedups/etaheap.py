"""The timer heap, pure Python."""
from __future__ import annotations

import heapq
import itertools
from typing import Any


class EtaHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._items: dict[int, Any] = {}
        self._seq = itertools.count()

    def push(self, when: float, item: Any) -> int:
        entry = next(self._seq)
        heapq.heappush(self._heap, (when, entry))
        self._items[entry] = item
        return entry

    def _trim(self) -> None:
        while self._heap and self._heap[0][1] not in self._items:
            heapq.heappop(self._heap)

    def pop_due(self, now: float, limit: int = -1) -> list[Any]:
        out: list[Any] = []
        while limit < 0 or len(out) < limit:
            self._trim()
            if not self._heap or self._heap[0][0] > now:
                break
            _, entry = heapq.heappop(self._heap)
            out.append(self._items.pop(entry))
        return out

    def cancel(self, entry: int) -> bool:
        return self._items.pop(entry, None) is not None

    def next_due(self) -> float | None:
        self._trim()
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
