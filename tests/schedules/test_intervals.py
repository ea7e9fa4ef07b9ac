"""corekit.schedules: schedule (intervals) and clocked (one-off), with Celery's meaning."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from corekit.schedules import clocked, schedstate, schedule

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_seconds_and_timedelta_mean_the_same_interval():
    assert schedule(90) == schedule(timedelta(seconds=90)) == schedule(90.0)
    assert schedule(1.5).seconds == 1.5
    assert schedule(30) != schedule(31)
    assert hash(schedule(30)) == hash(schedule(timedelta(seconds=30)))


def test_is_due_after_the_interval_and_next_is_the_full_interval():
    every_30s = schedule(30)
    assert every_30s.is_due(T0, now=T0 + timedelta(seconds=10)) == schedstate(False, 20.0)
    assert every_30s.is_due(T0, now=T0 + timedelta(seconds=30)) == schedstate(True, 30.0)
    assert every_30s.is_due(T0, now=T0 + timedelta(hours=5)) == schedstate(True, 30.0)
    assert every_30s.remaining_estimate(T0, now=T0 + timedelta(seconds=45)) == timedelta(seconds=-15)


def test_last_run_in_another_zone_or_naive_counts_as_the_same_instant():
    every_minute = schedule(60)
    ny = T0.astimezone(ZoneInfo("America/New_York"))
    naive = T0.replace(tzinfo=None)  # naive means UTC
    for last in (T0, ny, naive):
        assert every_minute.remaining_estimate(last, now=T0) == timedelta(seconds=60)


def test_nowfun_is_the_clock():
    clock = schedule(10, nowfun=lambda: T0 + timedelta(seconds=4))
    assert clock.is_due(T0) == (False, 6.0)
    assert schedule(10).is_due(datetime(2000, 1, 1, tzinfo=UTC)).is_due  # the real clock


def test_relative_rounds_to_the_interval_resolution():
    last = datetime(2024, 5, 1, 12, 17, 42, tzinfo=UTC)
    hourly = schedule(timedelta(hours=1), relative=True)
    assert hourly.remaining_estimate(last, now=last) == datetime(
        2024, 5, 1, 13, 0, tzinfo=UTC) - last
    plain = schedule(timedelta(hours=1))
    assert plain.remaining_estimate(last, now=last) == timedelta(hours=1)
    daily = schedule(timedelta(days=1), relative=True)
    assert daily.remaining_estimate(last, now=last) == datetime(2024, 5, 2, tzinfo=UTC) - last


@pytest.mark.parametrize("bad, error, message", [
    (0, ValueError, "schedule run_every 0: must be more than 0 seconds"),
    (-5, ValueError, "schedule run_every -5: must be more than 0 seconds"),
    (timedelta(0), ValueError, "must be more than 0 seconds"),
    (math.nan, ValueError, "must be more than 0 seconds"),
    (math.inf, ValueError, "schedule run_every inf: must be more than 0 seconds and a finite"),
    (10**15, ValueError, "a finite interval"),  # past timedelta.max
    ("10", TypeError, "schedule run_every must be seconds (int/float) or a timedelta, got str"),
    (None, TypeError, "got NoneType"),
    (True, TypeError, "got bool"),
])
def test_bad_interval_is_a_clear_error(bad, error, message):
    with pytest.raises(error) as info:
        schedule(bad)
    assert message in str(info.value)


def test_bad_last_run_at_is_a_clear_error():
    with pytest.raises(TypeError, match="last_run_at must be a datetime, got str"):
        schedule(10).is_due("2024-01-01", now=T0)


def test_clocked_is_due_once_when_its_time_comes():
    when = T0 + timedelta(minutes=5)
    once = clocked(when)
    assert once.is_due(None, now=T0) == schedstate(False, 300.0)
    assert once.is_due(None, now=when).is_due
    assert once.is_due(T0 - timedelta(days=1), now=when + timedelta(hours=2)).is_due  # missed: once
    assert not once.is_due(when, now=when + timedelta(seconds=1)).is_due  # ran: never again
    assert not once.is_due(when + timedelta(seconds=3), now=when + timedelta(days=9)).is_due
    assert once.remaining_estimate(None, now=T0) == timedelta(minutes=5)


def test_clocked_naive_means_utc_and_zones_compare_as_instants():
    naive = clocked(datetime(2024, 5, 1, 12, 5))
    assert naive.when == T0 + timedelta(minutes=5)
    tokyo = clocked(datetime(2024, 5, 1, 21, 5, tzinfo=ZoneInfo("Asia/Tokyo")))
    assert tokyo.is_due(None, now=T0 + timedelta(minutes=5)).is_due
    assert not tokyo.is_due(None, now=T0 + timedelta(minutes=4)).is_due
    assert naive == tokyo
    with pytest.raises(TypeError, match="clocked when must be a datetime, got str"):
        clocked("2024-05-01")
