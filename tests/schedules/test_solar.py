"""corekit.schedules.solar: ephem (what Celery's solar uses) as the oracle, polar days,
the search's determinism, bad input, the missing extra, Celery's is_due, the stored form."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import ephem
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from corekit.exceptions import ImproperlyConfigured
from corekit.schedules import schedstate, solar
from corekit.schedules.entry import (ScheduleEntry, entry_from_json, schedule_from_dict,
                                     schedule_to_dict)
from corekit.schedules.solar import EVENTS

UTC = timezone.utc
TROMSO = (69.6492, 18.9553)
#: Celery's ephem settings per event: horizon, method, whether the sun's centre counts
EPHEM = {
    "dawn_astronomical": ("-18", "next_rising", True),
    "dawn_nautical": ("-12", "next_rising", True),
    "dawn_civil": ("-6", "next_rising", True),
    "sunrise": ("-0:34", "next_rising", False),
    "solar_noon": ("0", "next_transit", False),
    "sunset": ("-0:34", "next_setting", False),
    "dusk_civil": ("-6", "next_setting", True),
    "dusk_nautical": ("-12", "next_setting", True),
    "dusk_astronomical": ("-18", "next_setting", True),
}
#: ours and ephem's agree to ~10 s (astral's noon to ~30 s); a minute leaves room
TOLERANCE = timedelta(minutes=1)


def ephem_observer(lat: float, lon: float, horizon: str = "0") -> ephem.Observer:
    obs = ephem.Observer()
    obs.lat, obs.lon, obs.elev, obs.pressure, obs.horizon = str(lat), str(lon), 0, 0, horizon
    return obs


def ephem_next(event: str, lat: float, lon: float, after: datetime) -> datetime:
    """The event's next time after ``after`` by ephem, skipping days it does not happen."""
    horizon, method, use_center = EPHEM[event]
    obs, sun = ephem_observer(lat, lon, horizon), ephem.Sun()
    start = ephem.Date(after.astimezone(UTC).replace(tzinfo=None))
    options = {"use_center": True} if use_center else {}  # next_transit takes no use_center
    for _ in range(400):
        try:
            found = getattr(obs, method)(sun, start=start, **options)
            return found.datetime().replace(tzinfo=UTC)
        except ephem.CircumpolarError:
            start = obs.next_antitransit(sun, start=start)
    raise AssertionError(f"ephem found no {event} at {lat}, {lon}")


def degrees_per_minute(lat: float, lon: float, at: datetime) -> float:
    """How fast the sun's altitude changes at ``at`` (by ephem)."""
    obs = ephem_observer(lat, lon)

    def altitude(moment: datetime) -> float:
        obs.date = ephem.Date(moment.astimezone(UTC).replace(tzinfo=None))
        return math.degrees(float(ephem.Sun(obs).alt))

    return abs(altitude(at + timedelta(minutes=10)) - altitude(at - timedelta(minutes=10))) / 20


@st.composite
def instants(draw) -> datetime:
    seconds = draw(st.integers(0, 150 * 365 * 86400))
    return datetime(1950, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.sampled_from(EVENTS), lat=st.floats(-66, 66), lon=st.floats(-180, 180),
       moment=instants())
def test_next_after_agrees_with_ephem(event, lat, lon, moment):
    ours = solar(event, lat, lon).next_after(moment)
    theirs = ephem_next(event, lat, lon, moment)
    if event != "solar_noon":
        # where the sun barely reaches the event's altitude it creeps along it, and any
        # two sun models (ephem's too) disagree by minutes, or on whether it happens
        assume(min(degrees_per_minute(lat, lon, ours), degrees_per_minute(lat, lon, theirs))
               >= 0.05)
    assert ours > moment and ours.tzinfo is UTC
    assert abs(ours - theirs) <= TOLERANCE, (ours, theirs)


@pytest.mark.parametrize("start", [datetime(2024, 12, 1, tzinfo=UTC),
                                   datetime(2024, 6, 1, tzinfo=UTC),
                                   datetime(2024, 11, 20, tzinfo=UTC),
                                   datetime(2024, 5, 10, tzinfo=UTC)])
@pytest.mark.parametrize("event", EVENTS)
def test_tromso_polar_night_and_midnight_sun_skip_to_the_next_day_it_happens(event, start):
    assert abs(solar(event, *TROMSO).next_after(start) - ephem_next(event, *TROMSO, start)) \
        <= TOLERANCE


def test_tromso_sunrise_waits_out_the_polar_night_and_sunset_the_midnight_sun():
    sunrise, sunset = solar("sunrise", *TROMSO), solar("sunset", *TROMSO)
    assert sunrise.next_after(datetime(2024, 12, 1, tzinfo=UTC)).date().isoformat() == "2025-01-15"
    assert sunset.next_after(datetime(2024, 6, 1, tzinfo=UTC)).date().isoformat() == "2024-07-25"
    noon = solar("solar_noon", *TROMSO)  # noon happens every day, polar or not
    assert noon.next_after(datetime(2024, 12, 21, tzinfo=UTC)).date().isoformat() == "2024-12-21"


def test_at_the_poles_the_sun_rises_once_a_year():
    north, south = solar("sunrise", 90, 0), solar("sunrise", -90, 0)
    assert north.next_after(datetime(2024, 4, 1, tzinfo=UTC)).strftime("%Y-%m") == "2025-03"
    assert south.next_after(datetime(2024, 4, 1, tzinfo=UTC)).strftime("%Y-%m") == "2024-09"


def test_an_event_missing_for_longer_than_the_search_is_a_clear_error():
    sunrise = solar("sunrise", *TROMSO)
    sunrise.max_search_days = 10
    with pytest.raises(ValueError) as info:
        sunrise.next_after(datetime(2024, 12, 1, tzinfo=UTC))
    assert str(info.value).startswith(
        "solar 'sunrise' at latitude 69.6492, longitude 18.9553: does not happen within 10 days")


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("place", [(51.5074, -0.1278), (-33.87, 151.21), TROMSO, (0.0, 179.9),
                                   (10.0, -179.9), (64.0, 100.0)])
def test_next_after_strictly_increases_a_day_apart(event, place):
    sched, t = solar(event, *place), datetime(2024, 1, 3, 5, 17, tzinfo=UTC)
    runs = []
    for _ in range(40):
        t = sched.next_after(t)
        runs.append(t)
    gaps = [b - a for a, b in zip(runs, runs[1:])]
    assert all(gap > timedelta(hours=20) for gap in gaps), gaps
    if place != TROMSO:  # at Tromsø some January events do not happen every day
        assert all(gap < timedelta(hours=28) for gap in gaps), gaps


@pytest.mark.parametrize("event", EVENTS)
def test_every_instant_before_an_event_finds_the_same_instant(event):
    sched = solar(event, 48.85, 2.35)
    run = sched.next_after(datetime(2024, 3, 30, 12, 0, tzinfo=UTC))
    assert run.microsecond == 0
    for before in (timedelta(microseconds=1), timedelta(seconds=1), timedelta(hours=3),
                   timedelta(hours=20)):
        assert sched.next_after(run - before) == run
    assert sched.next_after(run) > run + timedelta(hours=20)
    naive = (run - timedelta(hours=1)).replace(tzinfo=None)  # naive means UTC
    assert sched.next_after(naive) == run


@pytest.mark.parametrize("args, error, message", [
    (("sunrize", 0, 0), ValueError, "solar event 'sunrize': unknown; use one of "
                                    "dawn_astronomical, dawn_nautical, dawn_civil, sunrise,"),
    (("", 0, 0), ValueError, "solar event '': unknown"),
    ((None, 0, 0), ValueError, "solar event None: unknown"),
    (("sunrise", 90.5, 0), ValueError, "solar lat 90.5: must be between -90 and 90 degrees"),
    (("sunrise", -91, 0), ValueError, "solar lat -91: must be between -90 and 90"),
    (("sunrise", 0, 180.01), ValueError, "solar lon 180.01: must be between -180 and 180"),
    (("sunrise", 0, -181), ValueError, "solar lon -181: must be between -180 and 180"),
    (("sunrise", math.nan, 0), ValueError, "solar lat nan: must be between"),
    (("sunrise", 0, math.inf), ValueError, "solar lon inf: must be between"),
    (("sunrise", "51.5", 0), TypeError, "solar lat must be a number of degrees, got str '51.5'"),
    (("sunrise", 0, None), TypeError, "solar lon must be a number of degrees, got NoneType"),
    (("sunrise", True, 0), TypeError, "solar lat must be a number of degrees, got bool"),
])
def test_bad_input_names_the_argument(args, error, message):
    with pytest.raises(error) as info:
        solar(*args)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_without_astral_solar_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "astral", None)  # import astral -> ImportError
    monkeypatch.setitem(sys.modules, "astral.sun", None)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'corekit\[solar\]'"):
        solar("sunrise", 51.5, 0)


def test_importing_the_schedules_does_not_import_astral():
    code = "import sys, corekit.schedules; print('astral' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_is_due_and_remaining_estimate_have_celerys_meaning():
    sunrise = solar("sunrise", 51.5074, -0.1278)
    last = sunrise.next_after(datetime(2024, 5, 1, tzinfo=UTC))
    following = sunrise.next_after(last)
    before = following - timedelta(minutes=15)
    assert sunrise.remaining_estimate(last, now=before) == timedelta(minutes=15)
    assert sunrise.is_due(last, now=before) == schedstate(False, 900.0)
    after = following + timedelta(seconds=20)
    due = sunrise.is_due(last, now=after)
    assert due.is_due and due.next == (sunrise.next_after(after) - after).total_seconds()
    assert sunrise.remaining_estimate(last - timedelta(days=3), now=after) < timedelta(0)
    clock = solar("sunrise", 51.5074, -0.1278, nowfun=lambda: before)
    assert clock.is_due(last) == (False, 900.0)


def test_equality_hash_repr_and_pickle():
    a = solar("sunset", 40, -74)
    assert a == solar("sunset", 40.0, -74.0) and hash(a) == hash(solar("sunset", 40.0, -74))
    assert a != solar("sunrise", 40, -74) and a != solar("sunset", 40, -73.9)
    assert a != "sunset"
    assert repr(a) == "<solar: sunset at latitude 40.0, longitude: -74.0>"
    assert pickle.loads(pickle.dumps(a)) == a


def test_the_stored_form_round_trips():
    sched = solar("dusk_nautical", -33.87, 151.21)
    data = schedule_to_dict(sched)
    assert data == {"type": "solar", "event": "dusk_nautical", "lat": -33.87, "lon": 151.21}
    assert schedule_from_dict(data) == sched
    entry = ScheduleEntry("lights-off", "home.lights_off", sched)
    assert entry_from_json("lights-off", entry.to_json()).schedule == sched
    with pytest.raises(ValueError, match="solar lat 123"):
        schedule_from_dict({**data, "lat": 123})
