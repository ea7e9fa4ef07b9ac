"""``spoolinline``: runs each task in the consumer's thread, and only in a
process its plugin's early patch prepared (as a green-thread pool would)."""
from __future__ import annotations

from typing import Any, Callable

from corekit.exceptions import ImproperlyConfigured
from corekit.pool import Pool


class InlinePool(Pool):
    name = "spoolinline"
    inline = True

    def __init__(self, concurrency: int = 1, **options: Any) -> None:
        import corekit_spool

        if not corekit_spool.PATCHED:
            raise ImproperlyConfigured("the spoolinline pool needs the process patched first: "
                                       "name it on the command line, corekit worker -P "
                                       "spoolinline")
        super().__init__(concurrency, **options)
        self._active = 0

    def apply(self, job: Callable[[], Any]) -> None:
        self._active += 1
        try:
            job()
        finally:
            self._active -= 1

    def active(self) -> int:
        return self._active
