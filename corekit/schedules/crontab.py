"""Cron schedules: ``crontab(minute, hour, day_of_week, day_of_month, month_of_year, tz)``.

Each field takes the cron syntax Celery's ``crontab`` takes: ``*``, numbers,
lists ``1,5``, ranges ``1-5`` (a range whose end is below its start wraps:
``fri-mon``), steps ``*/15``, ``10-50/5`` and ``5/15`` (from 5 to the end),
names (``sun``..``sat``, ``jan``..``dec``), and also an int or a set/list of
ints and strings.  ``day_of_week`` runs 0-6 with Sunday = 0, and 7 is Sunday
too, as in cron.

**Day rule (Celery's, not cron's).**  A day runs when it matches *both*
``day_of_month`` and ``day_of_week``: ``crontab(0, 0, day_of_month="1-7",
day_of_week="mon")`` is the first Monday of each month, the Celery idiom, and
Celery code runs unchanged.  Cron (and croniter by default) uses the
either-rule when both fields are restricted, so that line means "days 1-7 and
every Monday" under cron: a crontab line copied from a cron table can mean
something else here.  A field left at ``*`` matches every day, so one
restricted field alone works as in cron.  A ``day_of_month`` that no chosen
month has (``30`` with ``feb``) is refused when the crontab is made; any real
date falls on every weekday in some year, so ``day_of_week`` never makes a
combination impossible, only rare (Feb 29 on a Monday: up to 40 years apart).

**Time zones.**  Fields match the wall clock of ``tz`` (a zoneinfo name or a
tzinfo; default UTC; the beat passes the app's ``timezone`` setting).  On a
DST change each matching wall time fires exactly once:

- a wall time that does not exist (the spring-forward gap) fires once, at the
  first instant after the gap (a daily 02:30 in America/New_York runs at 03:00
  EDT on the spring-forward day; several gap times all collapse into that one run);
- a wall time that occurs twice (fall-back) fires once, at its first occurrence;
  the repeated hour fires nothing.

Naive datetimes passed in mean UTC, as on the wire.  ``next_after`` jumps
field by field (month, day, hour, minute), never minute by minute.
"""

from __future__ import annotations

import calendar
import functools
from bisect import bisect_left
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Callable, Iterable, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from corekit.schedules.interval import CalendarSchedule, as_aware_utc, utcnow

__all__ = ["crontab"]

FieldSpec = Union[str, int, Iterable[Union[int, str]]]

_DAY_NAMES = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_MONTH_NAMES = {n: i + 1 for i, n in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
# field -> (lowest, highest accepted, names); day_of_week accepts 7 (= Sunday)
_FIELDS: dict[str, tuple[int, int, dict[str, int]]] = {
    "minute": (0, 59, {}),
    "hour": (0, 23, {}),
    "day_of_week": (0, 7, _DAY_NAMES),
    "day_of_month": (1, 31, {}),
    "month_of_year": (1, 12, _MONTH_NAMES),
}
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)
_MAX_YEARS = 41  # longest search: Feb 29 on a given weekday, across 2100, is 40 years


class _FieldParser:
    """Turns one field's spec into the set of values it matches."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.low, self.high, self.names = _FIELDS[name]
        # '*' and 'N/step' run to Saturday (6): 7 is only another name for Sunday
        self.top = 6 if name == "day_of_week" else self.high

    def error(self, part: object, why: str) -> ValueError:
        return ValueError(f"crontab {self.name} {str(part)!r}: {why}")

    def parse(self, spec: FieldSpec) -> set[int]:
        if isinstance(spec, bool):
            raise self.error(spec, "expected a cron string, an int or a set of ints")
        if isinstance(spec, int):
            return {self.number(spec, spec)}
        if isinstance(spec, str):
            return self.parse_text(spec)
        try:
            items = list(spec)
        except TypeError:
            raise self.error(spec, "expected a cron string, an int or a set of ints") from None
        if not items:
            raise self.error(spec, "empty; use '*' for every value")
        return set().union(*(self.parse(item) for item in items))

    def parse_text(self, text: str) -> set[int]:
        parts = text.strip().lower().split(",")
        if any(not p.strip() for p in parts):
            raise self.error(text, "empty part; write values like '1,5', '1-5' or '*/15'")
        return set().union(*(self.parse_part(p.strip()) for p in parts))

    def parse_part(self, part: str) -> set[int]:
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise self.error(part, "step must be a whole number of 1 or more")
            step = int(step_text)
        if base == "*":
            values = list(range(self.low, self.top + 1))
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first, last = self.value(first_text, part), self.value(last_text, part)
            values = self.span(first, last)
        else:
            first = self.value(base, part)
            values = self.span(first, self.top) if slash else [first]
        return {self.normalise(v) for v in values[::step]}

    def span(self, first: int, last: int) -> list[int]:
        """``first..last`` inclusive; wraps past the top when ``last < first``."""
        if first <= last:
            return list(range(first, last + 1))
        return list(range(first, self.top + 1)) + list(range(self.low, last + 1))

    def value(self, text: str, part: str) -> int:
        text = text.strip()
        if text in self.names:
            return self.names[text]
        if not text.isdigit():
            hint = f"; use {self.low}-{self.high}" + (
                f" or names like {next(iter(self.names))}" if self.names else "")
            raise self.error(part, f"{text!r} is not a number or name{hint}")
        return self.number(int(text), part)

    def number(self, value: int, part: object) -> int:
        if not self.low <= value <= self.high:
            raise self.error(part, f"out of range {self.low}-{self.high}")
        return value

    def normalise(self, value: int) -> int:
        return 0 if self.name == "day_of_week" and value == 7 else value


#: days in each month of a leap year
_MONTH_DAYS = {m: calendar.monthrange(2024, m)[1] for m in range(1, 13)}


@functools.lru_cache(maxsize=4096)
def _parse_cached(name: str, spec: str | int) -> frozenset[int]:
    return frozenset(_FieldParser(name).parse(spec))


def _parse_field(name: str, spec: FieldSpec) -> frozenset[int]:
    """One field's values; text and int specs are parsed once per process (a
    beat with 100,000 entries builds 500,000 fields from a few hundred specs),
    and equal fields share one frozenset."""
    if isinstance(spec, (str, int)) and not isinstance(spec, bool):
        return _parse_cached(name, spec)
    return frozenset(_FieldParser(name).parse(spec))


def _resolve_tz(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return timezone.utc
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"crontab tz {tz!r}: unknown time zone; use an IANA name "
                             f"such as 'Europe/London'") from None
    raise TypeError(f"crontab tz must be a zone name or a tzinfo, got {type(tz).__name__}")


def _first_at_or_after(values: tuple[int, ...], value: int) -> int | None:
    i = bisect_left(values, value)
    return values[i] if i < len(values) else None


class crontab(CalendarSchedule):
    """A cron schedule; see the module docstring for the syntax, day rule and DST rule."""

    def __init__(
        self,
        minute: FieldSpec = "*",
        hour: FieldSpec = "*",
        day_of_week: FieldSpec = "*",
        day_of_month: FieldSpec = "*",
        month_of_year: FieldSpec = "*",
        tz: str | tzinfo | None = None,
        nowfun: Callable[[], datetime] | None = None,
    ) -> None:
        specs = {"minute": minute, "hour": hour, "day_of_week": day_of_week,
                 "day_of_month": day_of_month, "month_of_year": month_of_year}
        self._orig = specs
        parsed = {name: _parse_field(name, spec) for name, spec in specs.items()}
        self.minute, self.hour = parsed["minute"], parsed["hour"]
        self.day_of_week, self.day_of_month = parsed["day_of_week"], parsed["day_of_month"]
        self.month_of_year = parsed["month_of_year"]
        self._minutes = tuple(sorted(self.minute))
        self._hours = tuple(sorted(self.hour))
        self._months = tuple(sorted(self.month_of_year))
        self._days = tuple(sorted(self.day_of_month))
        self.tz = _resolve_tz(tz)
        #: the zone as given (a name), None when not given: the beat then
        #: applies the entry's ``tz`` or the app's ``timezone``
        self.tz_name: str | None = None if tz is None else str(getattr(self.tz, "key", tz))
        self.nowfun = nowfun or utcnow
        self._check_day_occurs()

    def with_tz(self, tz: str | tzinfo) -> crontab:
        """The same fields read in *tz* (the beat's default zone for a crontab without one)."""
        return crontab(**self._orig, tz=tz, nowfun=self.nowfun)

    def _check_day_occurs(self) -> None:
        """Refuse a day_of_month that no chosen month has (``30`` with ``feb``).

        Only day_of_month against month_of_year: each real date falls on every
        weekday in some year, so with the both-rule day_of_week cannot make a
        combination impossible.
        """
        longest = max(_MONTH_DAYS[m] for m in self._months)
        if min(self.day_of_month) > longest:
            o = self._orig
            raise ValueError(
                f"crontab day_of_month {str(o['day_of_month'])!r}: never occurs in "
                f"month_of_year {str(o['month_of_year'])!r} (whatever day_of_week); "
                f"choose days the months have")

    # -- the search -------------------------------------------------------

    def _first_day(self, year: int, month: int, day: int) -> int | None:
        """The first day >= ``day`` in the month matching both day fields, or None."""
        first_weekday, days = calendar.monthrange(year, month)
        dow = self.day_of_week
        for d in self._days[bisect_left(self._days, day):]:
            if d > days:
                return None
            if (first_weekday + d) % 7 in dow:  # Python Mon=0 -> cron Sun=0
                return d
        return None

    def _next_wall(self, start: datetime) -> datetime:
        """The first matching naive wall-clock minute at or after ``start``."""
        y, mo, d, h, mi = start.year, start.month, start.day, start.hour, start.minute
        while y <= start.year + _MAX_YEARS:
            month = _first_at_or_after(self._months, mo)
            if month is None:
                y, mo, d, h, mi = y + 1, 1, 1, 0, 0
                continue
            if month != mo:
                mo, d, h, mi = month, 1, 0, 0
            day = self._first_day(y, mo, d)
            if day is None:
                y, mo, d, h, mi = (y + 1, 1, 1, 0, 0) if mo == 12 else (y, mo + 1, 1, 0, 0)
                continue
            if day != d:
                d, h, mi = day, 0, 0
            hour = _first_at_or_after(self._hours, h)
            if hour is None:
                nxt = datetime(y, mo, d) + timedelta(days=1)
                y, mo, d, h, mi = nxt.year, nxt.month, nxt.day, 0, 0
                continue
            if hour != h:
                h, mi = hour, 0
            minute = _first_at_or_after(self._minutes, mi)
            if minute is None:
                nxt = datetime(y, mo, d, h) + timedelta(hours=1)
                y, mo, d, h, mi = nxt.year, nxt.month, nxt.day, nxt.hour, 0
                continue
            return datetime(y, mo, d, h, minute)
        raise ValueError(f"{self!r}: no matching time within {_MAX_YEARS} years of {start}")

    def _to_instant(self, wall: datetime) -> datetime:
        """The aware instant a matching wall time fires at (the DST rule)."""
        first = wall.replace(tzinfo=self.tz)  # fold=0: the first occurrence
        if self.tz is timezone.utc:
            return first
        if first.astimezone(timezone.utc).astimezone(self.tz).replace(tzinfo=None) == wall:
            return first
        # in the spring-forward gap: fire at the transition (the first instant after it)
        lo = wall.replace(tzinfo=self.tz, fold=1).astimezone(timezone.utc)
        hi = first.astimezone(timezone.utc)
        lo, hi = min(lo, hi), max(lo, hi)
        before = lo.astimezone(self.tz).utcoffset()
        while hi - lo > _SECOND:
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return hi.replace(microsecond=0)

    def next_after(self, dt: datetime) -> datetime:
        """The next instant strictly after ``dt`` this schedule fires, aware in UTC.

        UTC, not ``tz``: a wall time in the repeated hour is ambiguous in ``tz``,
        and Python compares such datetimes unequal to every other zone's (PEP 495),
        which would break the beat's per-run keys.
        """
        moment = as_aware_utc(dt, "dt")
        wall = moment.astimezone(self.tz).replace(tzinfo=None, fold=0, second=0, microsecond=0)
        wall += _MINUTE
        while True:
            candidate = self._next_wall(wall)
            instant = self._to_instant(candidate)
            if instant > moment:
                return instant.astimezone(timezone.utc)
            wall = candidate + _MINUTE  # a repeated or collapsed wall time already fired

    def __repr__(self) -> str:
        o = self._orig
        return (f"<crontab: {o['minute']} {o['hour']} {o['day_of_month']} "
                f"{o['month_of_year']} {o['day_of_week']} (m/h/dM/MY/d) {self.tz}>")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, crontab):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return (self._minutes, self._hours, frozenset(self.day_of_week),
                self._days, self._months, str(self.tz))
