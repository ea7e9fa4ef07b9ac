"""Interval schedules: ``schedule(run_every)``, as Celery's ``celery.schedules.schedule``.

A schedule answers one question for the beat: given when an entry last ran,
is it due now, and how long may the beat sleep before asking again?  The
answer is a :class:`schedstate` ``(is_due, next)`` where ``next`` is seconds,
with Celery's meaning, so code written against Celery's schedules reads the
same here.  Everything is pure computation: no clocks are read except through
``nowfun`` (or a ``now=`` argument), which keeps the types testable.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, NamedTuple

__all__ = ["schedstate", "schedule", "CalendarSchedule", "as_aware_utc", "utcnow"]


class schedstate(NamedTuple):
    """``(is_due, next)``: whether to run now, and seconds until the next check."""

    is_due: bool
    next: float


def utcnow() -> datetime:
    """The current instant, aware, in UTC (the default ``nowfun``)."""
    return datetime.now(timezone.utc)


def as_aware_utc(dt: datetime, what: str = "datetime") -> datetime:
    """Return ``dt`` as an aware datetime; naive means UTC, as on the wire."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt


def _round_down_to(dt: datetime, delta: timedelta) -> datetime:
    """Celery's ``delta_resolution``: drop the units finer than ``delta``'s own."""
    seconds = delta.total_seconds()
    if seconds >= 86400:
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if seconds >= 3600:
        return dt.replace(minute=0, second=0, microsecond=0)
    if seconds >= 60:
        return dt.replace(second=0, microsecond=0)
    return dt


class schedule:
    """Run every ``run_every`` (seconds > 0, or a ``timedelta``).

    ``relative=False`` (the default, like Celery) counts the next run from the
    last run exactly; ``relative=True`` rounds the next run down to the
    resolution of the interval (a 1-hour interval runs on the hour), as Celery's
    ``relative`` does.
    """

    def __init__(
        self,
        run_every: float | timedelta,
        relative: bool = False,
        nowfun: Callable[[], datetime] | None = None,
    ) -> None:
        self.run_every = self._parse_interval(run_every)
        self.relative = bool(relative)
        self.nowfun = nowfun or utcnow

    @staticmethod
    def _parse_interval(run_every: float | timedelta) -> timedelta:
        if isinstance(run_every, bool) or not isinstance(run_every, (int, float, timedelta)):
            raise TypeError(
                f"schedule run_every must be seconds (int/float) or a timedelta, "
                f"got {type(run_every).__name__}"
            )
        if isinstance(run_every, timedelta):
            seconds = run_every.total_seconds()
        else:
            seconds = float(run_every)
        if not 0 < seconds <= timedelta.max.total_seconds():  # also rejects NaN
            raise ValueError(f"schedule run_every {run_every!r}: must be more than 0 seconds "
                             f"and a finite interval")
        interval = run_every if isinstance(run_every, timedelta) else timedelta(seconds=seconds)
        if not interval:  # 1e-9 rounds to timedelta(0): a run every instant
            raise ValueError(f"schedule run_every {run_every!r}: must be at least a "
                             f"microsecond")
        return interval

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self.run_every.total_seconds()

    def now(self) -> datetime:
        """The current instant as this schedule sees it (aware)."""
        return as_aware_utc(self.nowfun(), "nowfun()")

    def remaining_estimate(self, last_run_at: datetime, now: datetime | None = None) -> timedelta:
        """Time left until the next run after ``last_run_at`` (negative when overdue)."""
        start = as_aware_utc(last_run_at, "last_run_at")
        current = as_aware_utc(now, "now") if now is not None else self.now()
        end = start + self.run_every
        if self.relative:
            end = _round_down_to(end, self.run_every).replace(microsecond=0)
        return end - current

    def is_due(self, last_run_at: datetime, now: datetime | None = None) -> schedstate:
        """Celery's meaning: due when the interval has passed since ``last_run_at``.

        When due, ``next`` is the full interval (the entry will have run now);
        otherwise it is the seconds left.
        """
        remaining = self.remaining_estimate(last_run_at, now).total_seconds()
        if remaining <= 0:
            return schedstate(True, self.seconds)
        return schedstate(False, remaining)

    def __repr__(self) -> str:
        return f"<freq: {self.run_every}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every and self.relative == other.relative
        return NotImplemented

    def __hash__(self) -> int:
        return hash((schedule, self.run_every, self.relative))


class CalendarSchedule:
    """Celery's ``is_due``/``remaining_estimate`` for a schedule of instants
    (crontab, solar): a subclass gives ``next_after(dt)`` (the first instant
    strictly after *dt*, aware UTC) and a ``nowfun``."""

    nowfun: Callable[[], datetime]

    def next_after(self, dt: datetime) -> datetime:
        raise NotImplementedError

    def now(self) -> datetime:
        return as_aware_utc(self.nowfun(), "nowfun()")

    def remaining_estimate(self, last_run_at: datetime, now: datetime | None = None) -> timedelta:
        """Time from now until the first run after ``last_run_at`` (negative when overdue)."""
        current = as_aware_utc(now, "now") if now is not None else self.now()
        return self.next_after(last_run_at) - current

    def is_due(self, last_run_at: datetime, now: datetime | None = None) -> schedstate:
        """Due when a run came after ``last_run_at`` by now; ``next``: seconds to the next run."""
        current = as_aware_utc(now, "now") if now is not None else self.now()
        remaining = self.remaining_estimate(last_run_at, current).total_seconds()
        if remaining > 0:
            return schedstate(False, remaining)
        return schedstate(True, max((self.next_after(current) - current).total_seconds(), 0.0))
