"""Solar schedules: ``solar(event, lat, lon)`` runs at a sun event, as Celery's ``solar``.

The events are Celery's: ``dawn_astronomical``, ``dawn_nautical``,
``dawn_civil``, ``sunrise``, ``solar_noon``, ``sunset``, ``dusk_civil``,
``dusk_nautical`` and ``dusk_astronomical``, with Celery's definitions: the
sun's centre 18, 12 or 6 degrees below the horizon for the twilights, its
upper limb 34 arc minutes below it (the usual allowance for refraction) for
sunrise and sunset, and its transit for noon; no atmosphere model, sea level.

The sun's position comes from the ``astral`` package (``pip install
'corekit[solar]'``), imported when a ``solar`` is made, so importing
``corekit.schedules`` stays light.  Each day's event is found between that
day's solar noon and the anti-transit 12 hours before (dawns, sunrise) or
after (sunset, dusks), to the second; the search depends only on the day, so
every beat computes the same instant for a run, whatever it asks from.

Near the poles an event does not happen on some days (no sunrise in the polar
night, no astronomical dusk in a northern summer): ``next_after`` goes on to
the next day it happens, up to ``max_search_days``; past that it raises
ValueError naming the event and the place.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from numbers import Real
from typing import Any, Callable, NamedTuple

from corekit.exceptions import ImproperlyConfigured
from corekit.schedules.interval import CalendarSchedule, as_aware_utc, utcnow

__all__ = ["solar", "EVENTS"]


class _Event(NamedTuple):
    elevation: float  # of the sun's centre, in degrees (unused for the transit)
    direction: int  # +1: rising through it, -1: setting through it, 0: the transit


_LIMB = 34 / 60 + 16 / 60  # 34' of refraction allowance plus the sun's 16' semi-diameter
_EVENT_TABLE: dict[str, _Event] = {
    "dawn_astronomical": _Event(-18.0, +1),
    "dawn_nautical": _Event(-12.0, +1),
    "dawn_civil": _Event(-6.0, +1),
    "sunrise": _Event(-_LIMB, +1),
    "solar_noon": _Event(0.0, 0),
    "sunset": _Event(-_LIMB, -1),
    "dusk_civil": _Event(-6.0, -1),
    "dusk_nautical": _Event(-12.0, -1),
    "dusk_astronomical": _Event(-18.0, -1),
}
#: the event names solar() accepts, in the order they happen in a day
EVENTS: tuple[str, ...] = tuple(_EVENT_TABLE)
_HALF_DAY = 12 * 3600  # seconds from a solar noon to the anti-transits beside it
_INSTALL_HINT = "solar schedules need the astral package: pip install 'corekit[solar]'"


def _astral() -> Any:
    """The ``astral`` package with ``astral.sun``, imported on first use (an optional extra)."""
    try:
        import astral.sun
    except ImportError:
        raise ImproperlyConfigured(_INSTALL_HINT) from None
    return astral


def _coordinate(name: str, value: Any, limit: int) -> float:
    """``value`` as a float in -limit..limit, or a TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"solar {name} must be a number of degrees, got "
                        f"{type(value).__name__} {value!r}")
    number = float(value)
    if not -limit <= number <= limit:  # also refuses NaN
        raise ValueError(f"solar {name} {value!r}: must be between -{limit} and {limit} degrees")
    return number


class solar(CalendarSchedule):
    """Runs at a sun event at a place; see the module docstring for the events."""

    #: days next_after looks ahead for an event that does not happen every day
    max_search_days = 367

    def __init__(self, event: str, lat: float, lon: float,
                 nowfun: Callable[[], datetime] | None = None) -> None:
        if not isinstance(event, str) or event not in _EVENT_TABLE:
            raise ValueError(f"solar event {event!r}: unknown; use one of {', '.join(EVENTS)}")
        self.event = event
        self.lat = _coordinate("lat", lat, 90)
        self.lon = _coordinate("lon", lon, 180)
        self.nowfun = nowfun or utcnow
        astral = _astral()
        self._observer = astral.Observer(latitude=self.lat, longitude=self.lon, elevation=0.0)
        self._sun = astral.sun
        self._target, self._direction = _EVENT_TABLE[event]

    # -- the search -------------------------------------------------------

    def _elevation(self, moment: datetime) -> float:
        return float(self._sun.elevation(self._observer, moment, with_refraction=False))

    def _crossing(self, start: datetime, end: datetime) -> datetime | None:
        """The second the sun's centre passes the target between start and end, or None.

        The elevation moves one way over the half day, so a crossing exists
        when the two ends lie on either side; bisection finds it to the second.
        """
        sign = self._direction
        if sign * (self._elevation(start) - self._target) >= 0:
            return None  # already past it at the start: always above (or below) that day
        if sign * (self._elevation(end) - self._target) < 0:
            return None  # never gets there
        lo, hi = 0, int((end - start).total_seconds())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if sign * (self._elevation(start + timedelta(seconds=mid)) - self._target) < 0:
                lo = mid
            else:
                hi = mid
        return start + timedelta(seconds=hi)

    def _event_on(self, day: date, after: datetime) -> datetime | None:
        """``day``'s event when it is later than ``after``, else None.

        Dawns and sunrise lie in the half day before ``day``'s solar noon,
        sunset and dusks in the half day after it.
        """
        noon = self._sun.noon(self._observer, day)
        if self._direction == 0:
            return noon if noon > after else None
        half_day = timedelta(seconds=_HALF_DAY)
        start, end = (noon - half_day, noon) if self._direction > 0 else (noon, noon + half_day)
        if end <= after:
            return None  # the whole half day is over: skip the sun maths
        found = self._crossing(start, end)
        return found if found is not None and found > after else None

    def next_after(self, dt: datetime) -> datetime:
        """The first instant strictly after ``dt`` the event happens, aware in UTC."""
        moment = as_aware_utc(dt, "dt").astimezone(timezone.utc)
        day = moment.date() - timedelta(days=1)  # its event may fall on the next UTC date
        for offset in range(self.max_search_days + 2):
            found = self._event_on(day + timedelta(days=offset), moment)
            if found is not None:
                return found.astimezone(timezone.utc)
        raise ValueError(f"solar {self.event!r} at latitude {self.lat}, longitude {self.lon}: "
                         f"does not happen within {self.max_search_days} days after "
                         f"{moment.isoformat()}")

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude: {self.lon}>"

    def __reduce__(self) -> tuple[type, tuple[str, float, float]]:
        return self.__class__, (self.event, self.lat, self.lon)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, solar):
            return NotImplemented
        return (self.event, self.lat, self.lon) == (other.event, other.lat, other.lon)

    def __hash__(self) -> int:
        return hash((solar, self.event, self.lat, self.lon))
