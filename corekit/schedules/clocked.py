"""One-off schedules: ``clocked(when)`` runs once, when ``now >= when``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from corekit.schedules.interval import as_aware_utc, schedstate, utcnow

__all__ = ["clocked"]


class clocked:
    """Due once at ``when`` (aware; naive means UTC).

    ``is_due(last_run_at)`` is True when ``when`` has come and the entry has not
    run since (``last_run_at`` is None or earlier than ``when``); after that it
    is never due again, and ``next`` is a long nap the beat may cut short when
    the entry is changed or removed.
    """

    #: seconds to report as ``next`` once the one run is done
    DONE_NAP = 3600.0

    def __init__(self, when: datetime, nowfun: Callable[[], datetime] | None = None) -> None:
        self.when = as_aware_utc(when, "clocked when")
        self.nowfun = nowfun or utcnow

    def now(self) -> datetime:
        return as_aware_utc(self.nowfun(), "nowfun()")

    def has_run(self, last_run_at: datetime | None) -> bool:
        return last_run_at is not None and as_aware_utc(last_run_at, "last_run_at") >= self.when

    def remaining_estimate(self, last_run_at: datetime | None = None,
                           now: datetime | None = None) -> timedelta:
        """Time left until ``when`` (negative when it has passed)."""
        current = as_aware_utc(now, "now") if now is not None else self.now()
        return self.when - current

    def is_due(self, last_run_at: datetime | None = None,
               now: datetime | None = None) -> schedstate:
        """Due once: when ``when`` has come and no run happened at or after it."""
        if self.has_run(last_run_at):
            return schedstate(False, self.DONE_NAP)
        remaining = self.remaining_estimate(last_run_at, now).total_seconds()
        if remaining <= 0:
            return schedstate(True, self.DONE_NAP)
        return schedstate(False, remaining)

    def __repr__(self) -> str:
        return f"<clocked: {self.when.isoformat()}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, clocked):
            return self.when == other.when
        return NotImplemented

    def __hash__(self) -> int:
        return hash((clocked, self.when))
