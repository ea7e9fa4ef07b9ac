"""When an entry's runs fall, as Unix seconds: the beat's arithmetic.

A run is identified by ``(entry name, scheduled_at)``, and every beat must
compute the same ``scheduled_at`` for it, so runs sit on a fixed timeline
that depends only on stored facts:

- an interval runs at ``anchor + k * every`` (k = 1, 2, ...), where the
  anchor is the entry's last run or, if it never ran, when its definition
  was written (``changed_at``): lateness never drifts the grid;
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

__all__ = ["effective_schedule", "anchor_of", "next_run", "upcoming", "due_runs"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: how far back `due_runs` looks for a calendar schedule's missed runs before
#: it walks from the anchor (a monthly job may have missed only old runs)
_RECENT = 7 * 86400.0


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


def anchor_of(last_run_at: float | None, changed_at: float) -> float:
    """Where the timeline starts: the last run, else when the entry was written."""
    return last_run_at if last_run_at is not None else changed_at


def next_run(sched: Any, after: float) -> float | None:
    """The first scheduled time strictly after *after* (None: never again).

    For an interval, *after* must be on the grid's anchor or use
    `_interval_next`; the beat calls this with the anchor or a run time."""
    if isinstance(sched, schedule):
        return after + sched.seconds
    if isinstance(sched, clocked):
        when = sched.when.timestamp()
        return when if when > after else None
    return sched.next_after(_dt(after)).timestamp()


def upcoming(sched: Any, anchor: float, now: float) -> float | None:
    """The first scheduled time after *now* on the entry's timeline (None: never)."""
    if isinstance(sched, schedule):
        count, _ = _interval_runs(sched.seconds, anchor, now)
        return anchor + (count + 1) * sched.seconds
    return next_run(sched, max(anchor, now))


def _interval_runs(every: float, anchor: float, now: float) -> tuple[int, float]:
    """``(count, latest)``: how many grid runs are in ``(anchor, now]`` and the latest."""
    count = max(0, math.floor((now - anchor) / every))
    while count and anchor + count * every > now:  # floating point at the edge
        count -= 1
    while anchor + (count + 1) * every <= now:
        count += 1
    return count, anchor + count * every


def due_runs(sched: Any, anchor: float, now: float, policy: str, late_window: float,
             limit: int = 1000) -> list[float]:
    """The scheduled times to fire now, oldest first (see the module docstring)."""
    if isinstance(sched, schedule):
        return _due_interval(sched.seconds, anchor, now, policy, late_window, limit)
    runs: list[float] = []
    first = next_run(sched, anchor)
    if first is None or first > now:
        return runs
    start = anchor
    if policy != "all" and first < now - _RECENT:
        recent = next_run(sched, now - _RECENT)
        if recent is not None and recent <= now:
            start = now - _RECENT  # only the latest missed run can matter
        else:  # the latest run is older than the recent span: walk from the anchor
            start = anchor
    t = next_run(sched, start)
    while t is not None and t <= now:
        runs.append(t)
        if policy == "all" and len(runs) >= limit:
            return runs
        if len(runs) > limit:  # keep the newest only
            del runs[: len(runs) - limit]
        t = next_run(sched, t)
    return _apply_policy(runs, now, policy, late_window, first < now - late_window)


def _due_interval(every: float, anchor: float, now: float, policy: str, late_window: float,
                  limit: int) -> list[float]:
    count, latest = _interval_runs(every, anchor, now)
    if not count:
        return []
    if policy == "all":
        return [anchor + k * every for k in range(1, min(count, limit) + 1)]
    late_from = now - late_window
    first_late = max(1, math.ceil((late_from - anchor) / every))
    late = [anchor + k * every for k in range(first_late, count + 1)
            if anchor + k * every >= late_from][-limit:]
    missed = anchor + every < late_from
    if policy == "once" and missed:
        return [latest]
    return late


def _apply_policy(runs: list[float], now: float, policy: str, late_window: float,
                  missed: bool) -> list[float]:
    if not runs or policy == "all":
        return runs
    if policy == "once" and missed:
        return [runs[-1]]
    return [t for t in runs if t >= now - late_window]
