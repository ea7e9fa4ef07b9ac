"""corekit.schedules.crontab: croniter as the oracle (with Celery's day rule), the DST rule,
bad input, Celery's is_due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corekit.schedules import crontab, schedstate

UTC = timezone.utc
FIELDS = [("minute", 0, 59), ("hour", 0, 23), ("day_of_month", 1, 31),
          ("month_of_year", 1, 12), ("day_of_week", 0, 7)]
NAMES = {"day_of_week": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
         "month_of_year": ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                           "oct", "nov", "dec"]}


@st.composite
def field_part(draw, name: str, low: int, high: int) -> str:
    """One comma-separated part in any syntax form croniter shares with crontab."""
    a = draw(st.integers(low, high - 1))
    b = draw(st.integers(a + 1, high))  # croniter 7 reads 'N-N' as '*' (a bug): ranges span 2+
    n = draw(st.integers(low, high))
    step = draw(st.integers(1, max(1, high - low)))
    kind = draw(st.sampled_from(["num", "range", "star_step", "range_step", "start_step", "name"]))
    if kind == "name" and name in NAMES:
        names = NAMES[name]
        i = draw(st.integers(0, len(names) - 1))
        j = draw(st.integers(i, len(names) - 1))  # i == j: a single name, no 'N-N' range
        return names[i] if i == j else f"{names[i]}-{names[j]}"
    return {"num": str(n), "range": f"{a}-{b}", "star_step": f"*/{step}",
            "range_step": f"{a}-{b}/{step}", "start_step": f"{n}/{step}"}.get(kind, str(n))


@st.composite
def field_spec(draw, name: str, low: int, high: int) -> str:
    if draw(st.integers(0, 2)) == 0:
        return "*"
    return ",".join(draw(st.lists(field_part(name, low, high), min_size=1, max_size=3)))


@st.composite
def expressions(draw) -> dict[str, str]:
    return {name: draw(field_spec(name, low, high)) for name, low, high in FIELDS}


def cron_line(f: dict[str, str]) -> str:
    return " ".join(f[k] for k in ("minute", "hour", "day_of_month", "month_of_year",
                                   "day_of_week"))


@st.composite
def instants(draw) -> datetime:
    """Random instants, often near month ends, Feb 28/29 and Dec 31."""
    year = draw(st.integers(1999, 2101))
    anchor = draw(st.sampled_from([(2, 28), (2, 28), (12, 31), (1, 31), (4, 30), None]))
    if anchor is None:
        base = datetime(year, draw(st.integers(1, 12)), draw(st.integers(1, 28)))
    else:
        base = datetime(year, *anchor)
    offset = draw(st.integers(-3 * 86400, 3 * 86400))
    return (base + timedelta(seconds=offset)).replace(tzinfo=UTC)


def build(f: dict[str, str], tz=None) -> crontab:
    """The crontab for ``f``; an expression that never occurs (Feb 30) is left out."""
    try:
        return crontab(tz=tz, **f)
    except ValueError:  # refused when made (tested on its own below); croniter gives up
        assume(False)
        raise


def cron_next(f: dict[str, str], start: datetime) -> datetime:
    """croniter's next run with Celery's day rule (``day_or=False``: both day fields)."""
    return croniter(cron_line(f), start, day_or=False).get_next(datetime)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), instants())
def test_next_after_agrees_with_croniter_in_utc(fields, moment):
    ours = build(fields).next_after(moment)
    theirs = cron_next(fields, moment)
    assert ours == theirs, cron_line(fields)
    assert ours > moment


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=expressions(), moment=instants())
def test_next_after_agrees_with_croniter_away_from_dst_changes(zone, fields, moment):
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    ours = build(fields, tz).next_after(local)
    # away from a transition: same offset at both ends, too close for two changes between
    offset = ours.astimezone(tz).utcoffset()
    assume(ours - local < timedelta(days=90) and offset == local.utcoffset())
    assume(offset == (ours - timedelta(hours=3)).astimezone(tz).utcoffset())
    theirs = cron_next(fields, local)
    assert ours == theirs, cron_line(fields)


def runs(cron: crontab, start: datetime, count: int) -> list[datetime]:
    out, t = [], start
    for _ in range(count):
        t = cron.next_after(t)
        out.append(t)
    return out


def test_first_monday_of_the_month_the_celery_idiom():
    first_monday = crontab(0, 0, day_of_month="1-7", day_of_week="mon")
    days = [r.date().isoformat() for r in runs(first_monday, datetime(2024, 1, 1, tzinfo=UTC), 6)]
    assert days == [
        "2024-02-05", "2024-03-04", "2024-04-01", "2024-05-06", "2024-06-03", "2024-07-01"]
    assert first_monday.next_after(datetime(2023, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2024, 1, 1, tzinfo=UTC)  # Jan 1 2024 is itself a Monday


def test_day_of_month_and_day_of_week_both_restricted_must_both_match():
    first_and_monday = crontab(0, 0, day_of_month=1, day_of_week="mon")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    days = [r.date().isoformat() for r in runs(first_and_monday, start, 3)]
    assert days == ["2024-04-01", "2024-07-01", "2025-09-01"]
    friday_13th = crontab(0, 0, day_of_month=13, day_of_week="fri")
    assert friday_13th.next_after(datetime(2024, 1, 1, tzinfo=UTC)) == datetime(
        2024, 9, 13, tzinfo=UTC)
    for every_day in ("*", "*/1", "0-6", "sun-sat", list(range(7))):  # by meaning, not text
        assert crontab(0, 0, day_of_month=1, day_of_week=every_day).next_after(
            datetime(2024, 1, 5, tzinfo=UTC)) == datetime(2024, 2, 1, tzinfo=UTC)
    for every_date in ("*", "1-31", "*/1"):
        assert crontab(0, 0, day_of_month=every_date, day_of_week="mon").next_after(
            datetime(2024, 1, 2, tzinfo=UTC)) == datetime(2024, 1, 8, tzinfo=UTC)
    only_mondays = crontab(0, 0, day_of_week="mon")  # day_of_month '*': weekdays alone
    assert only_mondays.next_after(datetime(2024, 1, 31, tzinfo=UTC)).day == 5


def test_names_sets_ints_wraps_and_sunday_as_seven_mean_the_same():
    assert crontab(day_of_week="mon-fri").day_of_week == {1, 2, 3, 4, 5}
    assert crontab(day_of_week="sat-sun").day_of_week == {6, 0}
    assert crontab(day_of_week="fri-mon").day_of_week == {5, 6, 0, 1}
    assert crontab(day_of_week="7").day_of_week == {0} == crontab(day_of_week="sun").day_of_week
    assert crontab(day_of_week="5-7").day_of_week == {5, 6, 0}
    assert crontab(day_of_week="1/2").day_of_week == {1, 3, 5}  # to Saturday, not to 7
    assert crontab(day_of_week="*/3").day_of_week == {0, 3, 6}
    assert crontab(month_of_year="jan-mar").month_of_year == {1, 2, 3}
    assert crontab(month_of_year="JAN,Dec").month_of_year == {1, 12}
    assert crontab(minute=5).minute == {5}
    assert crontab(minute={0, 30}, hour=[1, "3-4"]).hour == {1, 3, 4}
    assert crontab(minute="*/15").minute == {0, 15, 30, 45}
    assert crontab(minute="10-50/20").minute == {10, 30, 50}
    assert crontab(minute="50/5").minute == {50, 55}
    assert crontab(minute=" 1 , 2 ").minute == {1, 2}
    assert crontab(minute=0, hour=0) == crontab(minute="0", hour="00")
    assert crontab(day_of_week="3-3").day_of_week == {3}  # croniter 7 reads this as '*'
    assert crontab(0, 0, day_of_week="3-3").next_after(
        datetime(1999, 2, 28, tzinfo=UTC)) == datetime(1999, 3, 3, tzinfo=UTC)


@pytest.mark.parametrize("kwargs, message", [
    ({"minute": "61"}, "crontab minute '61': out of range 0-59"),
    ({"minute": -1}, "crontab minute '-1': out of range 0-59"),
    ({"hour": "24"}, "crontab hour '24': out of range 0-23"),
    ({"day_of_month": "0"}, "crontab day_of_month '0': out of range 1-31"),
    ({"day_of_month": "32"}, "crontab day_of_month '32': out of range 1-31"),
    ({"month_of_year": "13"}, "crontab month_of_year '13': out of range 1-12"),
    ({"day_of_week": "8"}, "crontab day_of_week '8': out of range 0-7"),
    ({"day_of_week": "funday"}, "crontab day_of_week 'funday': 'funday' is not a number"),
    ({"month_of_year": "jan-foo"}, "crontab month_of_year 'jan-foo': 'foo' is not a number"),
    ({"minute": "*/0"}, "crontab minute '*/0': step must be"),
    ({"minute": "*/x"}, "crontab minute '*/x': step must be"),
    ({"minute": "1,,2"}, "crontab minute '1,,2': empty part"),
    ({"minute": ""}, "crontab minute '': empty part"),
    ({"hour": []}, "crontab hour '[]': empty"),
    ({"hour": True}, "crontab hour 'True': expected a cron string"),
    ({"hour": 1.5}, "crontab hour '1.5': expected a cron string"),
    ({"minute": "1-2-3"}, "crontab minute '1-2-3'"),
    ({"minute": "**"}, "crontab minute '**'"),
    ({"day_of_month": "30", "month_of_year": "feb"}, "crontab day_of_month '30': never occurs"),
    ({"day_of_month": 31, "month_of_year": "feb"},
     "crontab day_of_month '31': never occurs in month_of_year 'feb'"),
    ({"day_of_month": "30", "month_of_year": "feb", "day_of_week": "mon"},
     "crontab day_of_month '30': never occurs in month_of_year 'feb'"),
    ({"day_of_month": "31", "month_of_year": "apr,jun,sep,nov", "day_of_week": "*/2"},
     "crontab day_of_month '31': never occurs in month_of_year 'apr,jun,sep,nov'"),
    ({"day_of_month": "30-31", "month_of_year": 2}, "crontab day_of_month '30-31': never occurs"),
    ({"tz": "Mars/Olympus"}, "crontab tz 'Mars/Olympus': unknown time zone"),
])
def test_bad_input_names_the_field_and_the_bad_part(kwargs, message):
    with pytest.raises(ValueError) as info:
        crontab(**kwargs)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_feb_29_only_skips_to_the_next_leap_year_and_on_a_weekday_up_to_40_years():
    leap = crontab(0, 0, day_of_month=29, month_of_year=2)
    assert leap.next_after(datetime(2096, 3, 1, tzinfo=UTC)) == datetime(2104, 2, 29, tzinfo=UTC)
    leap_monday = crontab(0, 0, day_of_month=29, month_of_year=2, day_of_week="mon")
    assert leap_monday.next_after(datetime(2072, 3, 1, tzinfo=UTC)) == datetime(
        2112, 2, 29, tzinfo=UTC)  # 2100 is no leap year: the longest wait, 40 years
    assert leap_monday.next_after(datetime(2024, 2, 1, tzinfo=UTC)) == datetime(
        2044, 2, 29, tzinfo=UTC)
    assert crontab(0, 0, day_of_month="29-31", month_of_year="feb,apr").next_after(
        datetime(2023, 3, 1, tzinfo=UTC)) == datetime(2023, 4, 29, tzinfo=UTC)


def fires(cron: crontab, start: datetime, end: datetime) -> list[datetime]:
    out, t = [], start
    while (t := cron.next_after(t)) < end:
        out.append(t)
    return out


@pytest.mark.parametrize("zone, spring_day, fall_day", [
    ("America/New_York", (2024, 3, 10), (2024, 11, 3)),
    ("Europe/London", (2024, 3, 31), (2024, 10, 27)),
    ("Australia/Lord_Howe", (2024, 10, 6), (2024, 4, 7)),
])
def test_daily_0230_runs_exactly_once_on_both_dst_change_days(zone, spring_day, fall_day):
    tz = ZoneInfo(zone)
    cron = crontab(30, 2, tz=zone)
    for day in (spring_day, fall_day):
        start = datetime(*day, tzinfo=tz) - timedelta(days=1)
        runs = fires(cron, start, start + timedelta(days=3))
        assert [r.astimezone(tz).day for r in runs] == [
            (start + timedelta(days=i)).day for i in range(3)]


def test_new_york_spring_gap_fires_at_0300_and_fall_repeat_fires_first_occurrence():
    ny = ZoneInfo("America/New_York")
    cron = crontab(30, 2, tz=ny)
    run = cron.next_after(datetime(2024, 3, 10, 0, 0, tzinfo=ny))
    assert run == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT, once
    assert run.astimezone(ny).strftime("%H:%M %Z") == "03:00 EDT"
    assert cron.next_after(run) == datetime(2024, 3, 11, 2, 30, tzinfo=ny)
    one_thirty = crontab(30, 1, tz=ny)
    runs = fires(one_thirty, datetime(2024, 11, 3, 0, 0, tzinfo=ny),
                 datetime(2024, 11, 3, 12, 0, tzinfo=ny))
    assert runs == [datetime(2024, 11, 3, 5, 30, tzinfo=UTC)]  # 01:30 EDT, not EST too
    # asked from inside the repeated hour, the repeated wall time does not fire again
    inside = datetime(2024, 11, 3, 6, 10, tzinfo=UTC)  # 01:10 EST, the second pass
    assert one_thirty.next_after(inside) == datetime(2024, 11, 4, 6, 30, tzinfo=UTC)


def test_every_15_minutes_through_the_gap_collapses_into_one_run():
    ny = ZoneInfo("America/New_York")
    runs = fires(crontab("*/15", tz=ny), datetime(2024, 3, 10, 1, 30, tzinfo=ny),
                 datetime(2024, 3, 10, 3, 31, tzinfo=ny))
    assert [r.astimezone(ny).strftime("%H:%M") for r in runs] == [
        "01:45", "03:00", "03:15", "03:30"]


@pytest.mark.parametrize("zone, gap_day, gap_wall, fires_at, fold_day, fold_wall", [
    ("Europe/London", (2024, 3, 31), (1, 30), "02:00 BST", (2024, 10, 27), (1, 30)),
    ("Australia/Lord_Howe", (2024, 10, 6), (2, 15), "02:30 +11", (2024, 4, 7), (1, 45)),
])
def test_gap_and_repeat_rules_in_london_and_lord_howe(zone, gap_day, gap_wall, fires_at,
                                                     fold_day, fold_wall):
    tz = ZoneInfo(zone)
    gap = crontab(gap_wall[1], gap_wall[0], tz=zone)
    run = gap.next_after(datetime(*gap_day, tzinfo=tz))
    assert run.astimezone(tz).strftime("%H:%M %Z") == fires_at
    assert (run.astimezone(tz).month, run.astimezone(tz).day) == gap_day[1:]
    repeat = crontab(fold_wall[1], fold_wall[0], tz=zone)
    start = datetime(*fold_day, tzinfo=tz)
    runs = fires(repeat, start, start + timedelta(hours=12))
    assert len(runs) == 1
    assert runs[0] == datetime(*fold_day, *fold_wall, tzinfo=tz, fold=0).astimezone(UTC)


def test_is_due_and_remaining_estimate_have_celerys_meaning():
    cron = crontab(minute=0)  # hourly
    last = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    before = datetime(2024, 5, 1, 10, 45, tzinfo=UTC)
    assert cron.remaining_estimate(last, now=before) == timedelta(minutes=15)
    assert cron.is_due(last, now=before) == schedstate(False, 900.0)
    after = datetime(2024, 5, 1, 11, 0, 20, tzinfo=UTC)
    assert cron.is_due(last, now=after) == schedstate(True, 3580.0)
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    assert cron.is_due(long_ago, now=after).is_due
    assert cron.remaining_estimate(long_ago, now=after) < timedelta(0)
    clock = crontab(minute=0, nowfun=lambda: before)
    assert clock.is_due(last) == (False, 900.0)
    assert cron.is_due(datetime(2024, 5, 1, 10, 0), now=before).next == 900.0  # naive = UTC
