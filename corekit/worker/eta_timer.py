"""The consumer's timer: jobs held in this worker until a time.

Two kinds wait here: a message that arrived before its ETA on a broker that
cannot hold it (no ``delayed_delivery``), and a job whose task's rate limit
has no token for it yet.  Their messages stay unacked while they wait; a
warm shutdown or a lost lease takes them all back out (`drain`).

The heap is the Cython-backed `EtaHeap` (DESIGN §5); `waiting` mirrors it
for remote inspection (``inspect scheduled``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corekit._speedups import EtaHeap

if TYPE_CHECKING:
    from corekit.worker.job import Job


class EtaTimer:
    """Jobs due at an epoch time, released earliest first."""

    __slots__ = ("heap", "waiting")

    def __init__(self) -> None:
        self.heap = EtaHeap()
        #: id(job) -> (due, job): what the heap holds, for inspection from
        #: another thread; replaced whole, never cleared in place
        self.waiting: dict[int, tuple[float, Job]] = {}

    def __len__(self) -> int:
        return len(self.heap)

    def hold(self, when: float, job: Job) -> None:
        """Keep *job* until *when* (epoch seconds)."""
        self.heap.push(when, job)
        self.waiting[id(job)] = (when, job)

    def pop_due(self, now: float) -> list[Job]:
        """The jobs due at *now*, earliest first, no longer held."""
        due: list[Any] = self.heap.pop_due(now)
        if due:
            waiting = self.waiting
            for job in due:
                waiting.pop(id(job), None)
        return due

    def next_due(self) -> float | None:
        """When the earliest job is due, or None when none is held."""
        return self.heap.next_due()

    def drain(self) -> list[Job]:
        """Every held job, whenever it is due; the timer is empty after."""
        jobs: list[Any] = self.heap.pop_due(float("inf")) if len(self.heap) else []
        self.waiting = {}
        return jobs
