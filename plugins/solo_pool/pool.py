"""The ``solo`` pool: runs each task in the consumer's own thread."""
from __future__ import annotations

from typing import Any, Callable

from corekit.pool import Pool


class SoloPool(Pool):
    """Runs each job in the caller's thread before `apply` returns."""

    name = "solo"
    inline = True

    def __init__(self, concurrency: int = 1, **options: Any) -> None:
        if concurrency != 1:
            raise ValueError("the solo pool runs one task at a time: concurrency must be 1, "
                             f"not {concurrency}")
        super().__init__(concurrency, **options)
        self._active = 0

    def apply(self, job: Callable[[], Any]) -> None:
        """Run *job* now; whatever it raises reaches the caller."""
        self._active += 1
        try:
            job()
        finally:
            self._active -= 1

    def active(self) -> int:
        return self._active
