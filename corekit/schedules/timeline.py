"""When an entry's runs fall, as Unix seconds: the beat's arithmetic.

A run is identified by ``(entry name, scheduled_at)``, and every beat must
compute the same ``scheduled_at`` for it, so runs sit on a fixed timeline
that depends only on stored facts:

- an interval runs at ``base + k * every`` (k = 1, 2, ...), where the base
  is when its definition was last written (``changed_at``): lateness never
  drifts the grid, and each run's time is one float that every beat
  computes alike (the entry's ``last_run_at`` says which have run);
- a crontab or solar schedule runs at its ``next_after`` instants (a
  crontab without its own zone reads the entry's ``tz``, else the app's
  ``timezone``, else UTC);
- a clocked schedule runs once, at its time.

`due_runs` applies the missed-run policy: a run at most ``late_window``
seconds old is *late* and always fires (a leader hand-over, a short broker
outage); older runs are *missed*:

- ``"once"``: if any run was missed, only the latest due run fires;
- ``"all"``: every run fires, oldest first, at most ``limit`` per call;
- ``"none"``: missed runs are skipped; late ones fire.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from corekit.schedules.clocked import clocked
from corekit.schedules.crontab import crontab
from corekit.schedules.interval import schedule

__all__ = ["effective_schedule", "next_run", "upcoming", "first_pending", "due_runs"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: how far back `due_runs` looks for a calendar schedule's missed runs before
#: it walks from its first pending run (a monthly job may have missed only old runs)
_RECENT = 7 * 86400.0
#: the last second a datetime can show: a run after it is never (`beat list`
#: and the monitor print every run as a date)
_LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def effective_schedule(entry: Any, default_tz: str | None) -> Any:
    """The entry's schedule with the zone it reads in filled in."""
    sched = entry.schedule
    if isinstance(sched, crontab) and sched.tz_name is None:
        zone = entry.tz or default_tz
        if zone:
            return sched.with_tz(zone)
    return sched


def _first_k(every: float, base: float, after: float) -> int:
    """The first k >= 1 with ``base + k * every > after`` (exact in floating point).

    An *after* beyond `_LAST` (or NaN: a store row another program wrote)
    counts as `_LAST`, so k stays small enough for the corrections below to
    move the float, and the run it gives is never."""
    if after < base:
        return 1
    if not after <= _LAST:
        after = _LAST
    k = max(1, math.floor((after - base) / every) + 1)
    while k > 1 and base + (k - 1) * every > after:
        k -= 1
    while base + k * every <= after:
        k += 1
    return k


def _last_k(every: float, base: float, now: float) -> int:
    """The last k with ``base + k * every <= now`` (0: none yet)."""
    return _first_k(every, base, now) - 1


def next_run(sched: Any, after: float, base: float) -> float | None:
    """The first scheduled time strictly after *after* (None: never again).

    An interval's runs are ``base + k * every``, computed from *base* (when
    the entry was written) every time, never from the previous run, so every
    beat gets the very same float for the same run."""
    if not after <= _LAST:  # NaN or past the last date: a store row another program wrote
        return None
    if isinstance(sched, schedule):
        if not abs(base) <= _LAST:  # a changed_at no clock reaches (or NaN): never
            return None
        run = base + _first_k(sched.seconds, base, after) * sched.seconds
        return run if run <= _LAST else None
    if isinstance(sched, clocked):
        when = sched.when.timestamp()
        return when if when > after else None
    try:  # no real run comes before the epoch
        return float(sched.next_after(_dt(max(after, 0.0))).timestamp())
    except OverflowError:  # the next run is after the year 9999
        return None


def _start(sched: Any, base: float, last_run_at: float | None) -> float:
    """After what instant the entry's next run comes: its last run, else its base
    (a clocked entry written after its time still runs once)."""
    if last_run_at is not None:
        return last_run_at
    return float("-inf") if isinstance(sched, clocked) else base


def upcoming(sched: Any, base: float, last_run_at: float | None, now: float) -> float | None:
    """The next run due after *now* that has not run (None: never again)."""
    return next_run(sched, max(_start(sched, base, last_run_at), now), base)


def first_pending(sched: Any, base: float, last_run_at: float | None) -> float | None:
    """The earliest run that has not run yet (it may be in the past)."""
    start = _start(sched, base, last_run_at)
    if start == float("-inf") and isinstance(sched, clocked):
        return sched.when.timestamp()
    return next_run(sched, start, base)


def due_runs(sched: Any, base: float, last_run_at: float | None, now: float, policy: str,
             late_window: float, limit: int = 1000) -> list[float]:
    """The scheduled times to fire now, oldest first (see the module docstring)."""
    if isinstance(sched, schedule):
        if not abs(base) <= _LAST:  # as in next_run
            return []
        return _due_interval(sched.seconds, base, last_run_at, now, policy, late_window, limit)
    runs: list[float] = []
    first = first_pending(sched, base, last_run_at)
    if first is None or first > now:
        return runs
    t: float | None = first
    if policy != "all" and first < now - _RECENT:
        recent = next_run(sched, now - _RECENT, base)
        if recent is not None and recent <= now:
            t = recent  # only the latest missed run can matter
    while t is not None and t <= now:
        runs.append(t)
        if policy == "all" and len(runs) >= limit:
            return runs
        if len(runs) > limit:  # keep the newest only
            del runs[: len(runs) - limit]
        t = next_run(sched, t, base)
    return _apply_policy(runs, now, policy, late_window, first < now - late_window)


def _due_interval(every: float, base: float, last_run_at: float | None, now: float,
                  policy: str, late_window: float, limit: int) -> list[float]:
    k0 = _first_k(every, base, base if last_run_at is None else last_run_at)
    k1 = _last_k(every, base, now)
    if k1 < k0:
        return []
    if policy == "all":
        return [base + k * every for k in range(k0, min(k1, k0 + limit - 1) + 1)]
    late_from = now - late_window
    if policy == "once" and base + k0 * every < late_from:
        return [base + k1 * every]
    k_late = max(k0, _first_k(every, base, late_from) - 1, k1 - limit + 1)
    return [base + k * every for k in range(k_late, k1 + 1) if base + k * every >= late_from]


def _apply_policy(runs: list[float], now: float, policy: str, late_window: float,
                  missed: bool) -> list[float]:
    if not runs or policy == "all":
        return runs
    if policy == "once" and missed:
        return [runs[-1]]
    return [t for t in runs if t >= now - late_window]
