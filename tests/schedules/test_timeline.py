"""`corekit.schedules.timeline`: when an entry's runs fall and which fire now.

Every beat must compute the same float for a run, so the interval tests
check ``base + k * every`` bit for bit; the calendar tests walk the beat's
own calls (`first_pending`, `due_runs`) through missed months and DST days.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from corekit.schedules import clocked, crontab, schedule
from corekit.schedules.timeline import (due_runs, effective_schedule, first_pending, next_run,
                                        upcoming)

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
LATE = 15.0


def at(*fields: int, tz: Any = UTC) -> float:
    return datetime(*fields, tzinfo=tz).timestamp()


def local(ts: float, tz: Any = NEW_YORK) -> datetime:
    return datetime.fromtimestamp(ts, tz)


# -- intervals ---------------------------------------------------------------

BASE = 1_700_000_000.123
EVERY_10 = schedule(10)


def grid(*ks: int, every: float = 10.0) -> list[float]:
    return [BASE + k * every for k in ks]


def test_an_interval_runs_on_its_grid_from_the_base() -> None:
    assert first_pending(EVERY_10, BASE, None) == BASE + 10
    assert next_run(EVERY_10, BASE + 10, BASE) == BASE + 20
    assert next_run(EVERY_10, BASE + 15.5, BASE) == BASE + 20
    assert next_run(EVERY_10, BASE - 1000, BASE) == BASE + 10  # never before the base
    assert upcoming(EVERY_10, BASE, None, BASE + 33) == BASE + 40
    assert upcoming(EVERY_10, BASE, BASE + 40, BASE + 33) == BASE + 50


def test_a_late_run_does_not_drift_the_grid() -> None:
    # last ran the run due at +10, now it is +17.3: the next run is still +20
    assert upcoming(EVERY_10, BASE, BASE + 10, BASE + 17.3) == BASE + 20
    assert due_runs(EVERY_10, BASE, BASE + 10, BASE + 20.4, "once", LATE) == grid(2)


def test_nothing_is_due_before_the_first_run_or_twice() -> None:
    assert due_runs(EVERY_10, BASE, None, BASE + 9.99, "all", LATE) == []
    assert due_runs(EVERY_10, BASE, None, BASE + 10, "all", LATE) == grid(1)  # due at now
    assert due_runs(EVERY_10, BASE, BASE + 10, BASE + 10, "all", LATE) == []
    assert due_runs(EVERY_10, BASE, BASE + 10, BASE + 19.99, "all", LATE) == []


@pytest.mark.parametrize("policy, expected", [
    ("all", grid(1, 2, 3, 4, 5, 6)),
    ("once", grid(6)),
    ("none", grid(5, 6)),  # +50 is 12.5 s late: within the window
])
def test_interval_missed_policies(policy: str, expected: list[float]) -> None:
    assert due_runs(EVERY_10, BASE, None, BASE + 62.5, policy, LATE) == expected


@pytest.mark.parametrize("policy", ["all", "once", "none"])
def test_late_runs_within_the_window_all_fire_under_every_policy(policy: str) -> None:
    # runs at +10 and +20, now +24: both at most 15 s late, none missed
    assert due_runs(EVERY_10, BASE, None, BASE + 24, policy, LATE) == grid(1, 2)


def test_the_late_window_edge_is_inclusive() -> None:
    now = BASE + 10 + LATE  # the run at +10 is exactly LATE seconds old: late, not missed
    assert due_runs(EVERY_10, BASE, None, now, "none", LATE) == grid(1, 2)
    assert due_runs(EVERY_10, BASE, None, now, "once", LATE) == grid(1, 2)
    just_after = math.nextafter(now, math.inf)
    assert due_runs(EVERY_10, BASE, None, just_after, "none", LATE) == grid(2)
    assert due_runs(EVERY_10, BASE, None, just_after, "once", LATE) == grid(2)


def test_a_zero_late_window_fires_only_a_run_due_exactly_now() -> None:
    assert due_runs(EVERY_10, BASE, None, BASE + 30, "none", 0.0) == grid(3)
    assert due_runs(EVERY_10, BASE, None, BASE + 30.5, "none", 0.0) == []
    assert due_runs(EVERY_10, BASE, None, BASE + 30.5, "once", 0.0) == grid(3)


def test_limit_caps_all_oldest_first_and_others_keep_the_newest() -> None:
    now = BASE + 10 * 1_000_000  # a million runs missed
    assert due_runs(EVERY_10, BASE, None, now, "all", LATE, limit=3) == grid(1, 2, 3)
    assert due_runs(EVERY_10, BASE, None, now, "once", LATE, limit=3) == grid(1_000_000)
    wide = due_runs(EVERY_10, BASE, None, now, "none", 100.0, limit=3)
    assert wide == grid(999_998, 999_999, 1_000_000)
    # the next call of "all" carries on from the last claimed run
    assert due_runs(EVERY_10, BASE, BASE + 30, now, "all", LATE, limit=2) == grid(4, 5)


def test_a_last_run_off_the_grid_or_in_the_future() -> None:
    # the definition changed (new base) after a run of the old one
    assert due_runs(EVERY_10, BASE, BASE - 3, BASE + 10, "once", LATE) == grid(1)
    assert due_runs(EVERY_10, BASE, BASE + 13, BASE + 20, "once", LATE) == grid(2)
    # a last run ahead of now (another beat's clock) makes nothing due
    assert due_runs(EVERY_10, BASE, BASE + 500, BASE + 100, "all", LATE) == []
    assert upcoming(EVERY_10, BASE, BASE + 500, BASE + 100) == BASE + 510


@pytest.mark.parametrize("every", [0.1, 1 / 3, 0.7, 86400.000001],
                         ids=["0.1", "1/3", "0.7", "a day and a microsecond"])
def test_every_run_is_base_plus_k_times_every_bit_for_bit(every: float) -> None:
    sched = schedule(every)
    step = sched.seconds  # what the store and every beat use (timedelta resolution)
    runs = 1_000_000
    for k in range(1, runs + 1):
        run = BASE + k * step
        assert next_run(sched, run, BASE) == BASE + (k + 1) * step, k
        assert next_run(sched, math.nextafter(run, -math.inf), BASE) == run, k
    # the beat's own steps: each run comes due once, as the same float
    last = None
    for k in range(1, 20_001):
        run = BASE + k * step
        assert due_runs(sched, BASE, last, run, "once", LATE) == [run], k
        assert due_runs(sched, BASE, run, run, "all", LATE) == []
        last = run


def test_a_huge_base_and_tiny_interval_still_advance() -> None:
    sched = schedule(timedelta(microseconds=1))
    base = 4_000_000_000.0  # a microsecond is below this float's resolution
    nxt = next_run(sched, base, base)
    assert nxt is not None and nxt > base
    assert next_run(sched, nxt, base) > nxt


# -- crontab -----------------------------------------------------------------

HOURLY = crontab(minute=0)
MONTHLY = crontab(minute=0, hour=0, day_of_month=1)
JAN_1 = at(2024, 1, 1)
FEB_1 = at(2024, 2, 1)


def test_crontab_runs_after_the_base_and_after_the_last_run() -> None:
    assert first_pending(HOURLY, at(2024, 1, 1, 0, 10), None) == at(2024, 1, 1, 1)
    assert first_pending(HOURLY, JAN_1, at(2024, 1, 1, 5)) == at(2024, 1, 1, 6)
    assert upcoming(HOURLY, JAN_1, at(2024, 1, 1, 5), at(2024, 1, 1, 9, 30)) == at(
        2024, 1, 1, 10)


@pytest.mark.parametrize("policy, expected", [
    ("all", [JAN_1 + 3600 * h for h in range(1, 745)]),  # Jan 1 01:00 .. Feb 1 00:00
    ("once", [FEB_1]),
    ("none", [FEB_1]),
])
def test_an_hourly_job_down_for_a_month(policy: str, expected: list[float]) -> None:
    now = FEB_1 + 10  # the Feb 1 00:00 run is 10 s late
    assert due_runs(HOURLY, JAN_1, JAN_1, now, policy, LATE) == expected


def test_an_hourly_job_down_for_a_month_with_nothing_late() -> None:
    now = FEB_1 + 1800
    assert due_runs(HOURLY, JAN_1, JAN_1, now, "none", LATE) == []
    assert due_runs(HOURLY, JAN_1, JAN_1, now, "once", LATE) == [FEB_1]
    assert due_runs(HOURLY, JAN_1, JAN_1, now, "all", LATE, limit=2) == [
        JAN_1 + 3600, JAN_1 + 7200]


@pytest.mark.parametrize("policy, expected", [
    ("all", [at(2023, m, 1) for m in range(2, 13)] + [at(2024, m, 1) for m in range(1, 7)]),
    ("once", [at(2024, 6, 1)]),
    ("none", []),
])
def test_a_monthly_job_whose_missed_runs_are_all_older_than_a_week(
        policy: str, expected: list[float]) -> None:
    # the _RECENT shortcut finds no run in the last week: it walks from the first pending
    now = at(2024, 6, 15)
    assert due_runs(MONTHLY, at(2022, 12, 1), at(2023, 1, 1), now, policy, LATE) == expected


def test_a_monthly_job_with_a_recent_missed_run_takes_the_shortcut() -> None:
    now = at(2024, 6, 3)
    last = at(2020, 1, 1)
    assert due_runs(MONTHLY, last, last, now, "once", LATE) == [at(2024, 6, 1)]
    assert due_runs(MONTHLY, last, last, now, "none", LATE) == []
    assert due_runs(MONTHLY, last, last, at(2024, 6, 1, 0, 0, 5), "none", LATE) == [
        at(2024, 6, 1)]
    every_month = due_runs(MONTHLY, last, last, now, "all", LATE)
    assert len(every_month) == 11 + 3 * 12 + 6  # 2020-02 .. 2024-06
    assert (every_month[0], every_month[-1]) == (at(2020, 2, 1), at(2024, 6, 1))


def test_a_minutely_job_down_for_years_is_bounded() -> None:
    minutely = crontab()
    last = at(2020, 1, 1)
    now = at(2024, 1, 1, 0, 0, 5)
    assert due_runs(minutely, last, last, now, "once", LATE) == [at(2024, 1, 1)]
    assert due_runs(minutely, last, last, now, "all", LATE, limit=3) == [
        last + 60, last + 120, last + 180]


def daily_runs_per_local_day(sched: Any, start: float, days: int, step: float) -> dict[Any, int]:
    """Walk a beat's calls over *days*: due_runs every *step* seconds."""
    per_day: dict[Any, int] = {}
    last = None
    now = start
    while now < start + days * 86400:
        for run in due_runs(sched, start, last, now, "once", LATE):
            day = local(run).date()
            per_day[day] = per_day.get(day, 0) + 1
            last = run
        now += step
    return per_day


@pytest.mark.parametrize("start", [at(2024, 3, 8, tz=NEW_YORK), at(2024, 10, 31, tz=NEW_YORK)],
                         ids=["spring-forward", "fall-back"])
@pytest.mark.parametrize("hour", [2, 1], ids=["02:30", "01:30"])
def test_a_daily_new_york_job_runs_once_a_day_through_a_dst_change(
        start: float, hour: int) -> None:
    sched = effective_schedule(SimpleNamespace(schedule=crontab(minute=30, hour=hour),
                                               tz=None), "America/New_York")
    runs: list[float] = []
    last = None
    for _ in range(5):  # first_pending, as `beat list` and the leader's heap use it
        run = first_pending(sched, start, last)
        assert run is not None
        runs.append(run)
        last = run
    days = [local(r).date() for r in runs]
    assert days == [local(start).date() + timedelta(days=d) for d in range(5)]
    assert all(b > a for a, b in zip(runs, runs[1:]))
    per_day = daily_runs_per_local_day(sched, start, 5, 137.0)
    assert sorted(per_day.values()) == [1] * 5, per_day
    wall = [(local(r).hour, local(r).minute) for r in runs]
    if hour == 2 and local(start).month == 3:  # 02:30 does not exist on Mar 10: 03:00
        assert wall == [(2, 30), (2, 30), (3, 0), (2, 30), (2, 30)]
    else:  # 01:30 twice on Nov 3: only the first
        assert wall == [(hour, 30)] * 5


def test_the_fall_back_run_is_the_first_of_the_repeated_wall_time() -> None:
    sched = crontab(minute=30, hour=1, tz="America/New_York")
    run = first_pending(sched, at(2024, 11, 3, 0, tz=NEW_YORK), None)
    assert run == at(2024, 11, 3, 5, 30)  # 01:30 EDT = 05:30 UTC, not 06:30 (EST)


# -- clocked -----------------------------------------------------------------

WHEN = datetime(2030, 1, 1, 12, tzinfo=UTC)
ONCE = clocked(WHEN)


def test_a_future_clocked_is_pending_until_its_time() -> None:
    base = WHEN.timestamp() - 3600
    assert first_pending(ONCE, base, None) == WHEN.timestamp()
    assert due_runs(ONCE, base, None, WHEN.timestamp() - 0.001, "all", LATE) == []
    assert due_runs(ONCE, base, None, WHEN.timestamp(), "once", LATE) == [WHEN.timestamp()]


@pytest.mark.parametrize("policy", ["once", "all"])
def test_a_clocked_written_after_its_time_still_runs_once(policy: str) -> None:
    written = WHEN.timestamp() + 86400
    assert first_pending(ONCE, written, None) == WHEN.timestamp()
    assert due_runs(ONCE, written, None, written + 1, policy, LATE) == [WHEN.timestamp()]


def test_a_clocked_that_ran_is_never_due_again() -> None:
    ran = WHEN.timestamp()
    assert first_pending(ONCE, ran - 10, ran) is None
    assert upcoming(ONCE, ran - 10, ran, ran + 5) is None
    assert due_runs(ONCE, ran - 10, ran, ran + 10**6, "all", LATE) == []
    assert next_run(ONCE, ran, ran) is None


def test_a_missed_clocked_under_none_is_skipped() -> None:
    written = WHEN.timestamp() - 10
    assert due_runs(ONCE, written, None, WHEN.timestamp() + 3600, "none", LATE) == []


# -- effective_schedule ------------------------------------------------------

def entry(schedule_: Any, tz: str | None = None) -> Any:
    return SimpleNamespace(schedule=schedule_, tz=tz)


def test_a_crontab_without_a_zone_reads_the_entry_zone_then_the_app_zone() -> None:
    plain = crontab(hour=2, minute=30)
    assert effective_schedule(entry(plain, "Asia/Tokyo"), "Europe/London").tz_name == \
        "Asia/Tokyo"
    assert effective_schedule(entry(plain), "Europe/London").tz_name == "Europe/London"
    assert effective_schedule(entry(plain), None) is plain  # UTC


def test_a_crontab_with_its_own_zone_keeps_it() -> None:
    own = crontab(hour=2, minute=30, tz="America/New_York")
    assert effective_schedule(entry(own, "Asia/Tokyo"), "Europe/London") is own


def test_other_schedules_ignore_zones() -> None:
    for sched in (EVERY_10, ONCE):
        assert effective_schedule(entry(sched, "Asia/Tokyo"), "Europe/London") is sched


def test_the_zone_moves_the_run() -> None:
    plain = crontab(hour=2, minute=30)
    start = at(2024, 6, 1)
    in_tokyo = first_pending(effective_schedule(entry(plain, "Asia/Tokyo"), None), start, None)
    in_utc = first_pending(effective_schedule(entry(plain), None), start, None)
    assert in_utc == at(2024, 6, 1, 2, 30)
    assert in_tokyo == at(2024, 6, 1, 17, 30)  # 02:30 on Jun 2 in Tokyo (UTC+9)


def test_a_run_after_the_year_9999_is_never() -> None:
    # no datetime can show it: `beat list` and the monitor failed on the whole listing
    huge = schedule(1e13)
    assert next_run(huge, BASE, BASE) is None
    assert first_pending(huge, BASE, None) is None
    assert upcoming(huge, BASE, None, BASE + 5) is None
    assert due_runs(huge, BASE, None, BASE + 10**6, "all", LATE) == []
    last_second = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
    assert next_run(schedule(1), last_second - 0.5, last_second - 2) == last_second
    assert next_run(schedule(1), last_second, last_second - 2) is None


@pytest.mark.parametrize("last_run_at", [1e20, 1e300, math.inf, math.nan, -1e300, -math.inf])
def test_a_last_run_no_clock_reaches_ends_at_once(last_run_at: float) -> None:
    # a store row another program wrote: 1e300 used to loop forever in the k correction
    for every in (5.0, 1e-6, 1 / 3):
        sched = schedule(every)
        pending = first_pending(sched, BASE, last_run_at)
        due = due_runs(sched, BASE, last_run_at, BASE + 10, "all", LATE)
        if last_run_at < BASE:
            assert pending == BASE + sched.seconds and due[0] == BASE + sched.seconds
        else:  # at or after the last date, or not a time at all: never
            assert pending is None and due == []


@pytest.mark.parametrize("last_run_at", [1e20, 1e300, math.inf, math.nan, -1e20, -math.inf])
def test_a_calendar_last_run_no_clock_reaches_raises_nothing(last_run_at: float) -> None:
    # the beat leader computes these for every entry: one bad row used to stop all firing
    for sched in (HOURLY, crontab(minute=0, tz="America/New_York")):
        pending = first_pending(sched, JAN_1, last_run_at)
        due = due_runs(sched, JAN_1, last_run_at, FEB_1 + 10, "once", LATE)
        nxt = upcoming(sched, JAN_1, last_run_at, FEB_1 + 10)
        if last_run_at < JAN_1:  # before any date: counted from the epoch
            assert pending == 3600.0 and due == [FEB_1] and nxt == FEB_1 + 3600
        else:
            assert pending is None and due == [] and nxt is None


@pytest.mark.parametrize("base", [1e300, -1e300, math.inf, -math.inf, math.nan])
def test_an_interval_base_no_clock_reaches_is_never(base: float) -> None:
    # changed_at comes from a store row too; -1e300 used to loop forever like last_run_at
    for last_run_at in (None, BASE):
        assert first_pending(EVERY_10, base, last_run_at) is None
        assert upcoming(EVERY_10, base, last_run_at, BASE + 5) is None
        assert due_runs(EVERY_10, base, last_run_at, BASE + 100, "all", LATE) == []
