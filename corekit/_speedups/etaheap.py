"""The worker's short-horizon timer, pure Python: a heap of ``(when, seq)``
with items kept by ``seq``; `cancel` is lazy.  Twin of ``_etaheap.pyx``."""
from __future__ import annotations

import heapq
from typing import Any

_MISSING: Any = object()
#: Rebuild the heap when it holds more than this many cancelled entries and
#: more cancelled than live ones.
COMPACT_AFTER = 1024


class EtaHeap:
    """Items due at an epoch time, popped earliest first (ties in push order)."""

    __slots__ = ("_heap", "_items", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._items: dict[int, Any] = {}
        self._seq = 0

    def push(self, when: float, item: Any) -> int:
        """Schedule *item* at *when*; return its entry id for `cancel`."""
        if type(when) is not float:
            if isinstance(when, (str, bytes, bytearray)):
                raise TypeError(f"when must be a number, not {type(when).__name__}")
            when = float(when)
        if when != when:
            raise ValueError("when is NaN")
        seq = self._seq
        self._seq = seq + 1
        heapq.heappush(self._heap, (when, seq))
        self._items[seq] = item
        return seq

    def pop_due(self, now: float, limit: int = -1) -> list[Any]:
        """Remove and return the items due at *now* (``when <= now``),
        earliest first; at most *limit* of them when it is >= 0."""
        heap, items = self._heap, self._items
        out: list[Any] = []
        while heap and (limit < 0 or len(out) < limit):
            when, seq = heap[0]
            if seq not in items:  # cancelled
                heapq.heappop(heap)
                continue
            if not when <= now:
                break
            heapq.heappop(heap)
            out.append(items.pop(seq))
        return out

    def cancel(self, entry_id: int) -> bool:
        """Forget an entry; False if it was already popped or cancelled."""
        if type(entry_id) is not int or self._items.pop(entry_id, _MISSING) is _MISSING:
            return False
        dead = len(self._heap) - len(self._items)
        if dead > COMPACT_AFTER and dead > len(self._items):
            self._heap = [entry for entry in self._heap if entry[1] in self._items]
            heapq.heapify(self._heap)
        return True

    def next_due(self) -> float | None:
        """The earliest live ``when``, or None when empty."""
        heap, items = self._heap, self._items
        while heap and heap[0][1] not in items:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __repr__(self) -> str:
        return f"<EtaHeap {len(self._items)} due, next at {self.next_due()!r}>"
