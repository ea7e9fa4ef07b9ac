"""`ScheduleEntry`: ``beat_schedule`` items as Celery users write them, every
bad one refused naming the entry and the field, the stored form (kombu JSON)
round trip, and stored definitions another program wrote wrong."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from corekit.exceptions import ImproperlyConfigured
from corekit.schedules import clocked, crontab, schedule, solar
from corekit.schedules.entry import (ScheduleEntry, ScheduleError, entry_from_config,
                                     entry_from_json)

WHEN = datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def item(**fields: Any) -> dict[str, Any]:
    return {"task": "proj.tasks.report", "schedule": 30.0, **fields}


def roundtrip(entry: ScheduleEntry) -> ScheduleEntry:
    return entry_from_json(entry.name, entry.to_json())


# -- what Celery users write ---------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (30, schedule(30)), (30.0, schedule(30)), (0.25, schedule(0.25)),
    (timedelta(minutes=5), schedule(300)), (schedule(10), schedule(10)),
    (crontab(minute="*/15", hour="9-17", day_of_week="mon-fri"),
     crontab(minute="*/15", hour="9-17", day_of_week="mon-fri")),
    (clocked(WHEN), clocked(WHEN)),
], ids=["int", "float", "fraction", "timedelta", "schedule", "crontab", "clocked"])
def test_schedule_values_celery_users_write(value: Any, expected: Any) -> None:
    entry = entry_from_config("e", item(schedule=value))
    assert entry.schedule == expected
    assert roundtrip(entry) == entry


def test_solar_schedule() -> None:
    entry = entry_from_config("sun", item(schedule=solar("sunset", -33.87, 151.21)))
    assert roundtrip(entry).schedule == solar("sunset", -33.87, 151.21)


def test_a_full_item_keeps_every_field() -> None:
    entry = entry_from_config("add-every-30", {
        "task": "tasks.add", "schedule": 30.0, "args": (16, 16), "kwargs": {"z": 1},
        "options": {"queue": "hipri", "expires": 25}, "enabled": False, "missed": "all",
        "tz": "Europe/Paris"})
    assert (entry.name, entry.task, entry.args, entry.kwargs) == (
        "add-every-30", "tasks.add", (16, 16), {"z": 1})
    assert entry.options == {"queue": "hipri", "expires": 25}
    assert (entry.enabled, entry.missed, entry.tz) == (False, "all", "Europe/Paris")
    assert roundtrip(entry) == entry


@pytest.mark.parametrize("args", [[1, 2], (1, 2)], ids=["list", "tuple"])
def test_args_list_or_tuple_become_a_tuple(args: Any) -> None:
    assert entry_from_config("e", item(args=args)).args == (1, 2)


def test_defaults() -> None:
    entry = entry_from_config("e", item())
    assert (entry.args, entry.kwargs, entry.options) == ((), {}, {})
    assert (entry.enabled, entry.missed, entry.tz) == (True, None, None)
    assert entry_from_config("e", item(args=None, kwargs=None, options=None)) == entry


@pytest.mark.parametrize("value", [30, timedelta(hours=1)])
def test_relative_makes_a_relative_interval(value: Any) -> None:
    entry = entry_from_config("e", item(schedule=value, relative=True))
    assert entry.schedule.relative is True
    assert roundtrip(entry).schedule.relative is True
    assert entry_from_config("e", item(schedule=value)).schedule.relative is False


def test_relative_is_ignored_for_a_schedule_object_as_in_celery() -> None:
    cron = crontab(minute=5)
    assert entry_from_config("e", item(schedule=cron, relative=True)).schedule == cron


def test_crontab_with_its_own_zone_keeps_it() -> None:
    for tz in ("America/New_York", ZoneInfo("America/New_York")):
        entry = entry_from_config("e", item(schedule=crontab(hour=2, minute=30, tz=tz)))
        assert roundtrip(entry).schedule.tz_name == "America/New_York"


def test_crontab_lists_and_names_survive_storage() -> None:
    cron = crontab(minute=[0, 30, 5], hour={1, 2}, month_of_year="jan,jul")
    assert roundtrip(entry_from_config("e", item(schedule=cron))).schedule == cron


def test_clocked_in_another_zone_is_the_same_instant() -> None:
    when = datetime(2031, 1, 1, 9, tzinfo=ZoneInfo("America/New_York"))
    stored = roundtrip(entry_from_config("e", item(schedule=clocked(when))))
    assert stored.schedule.when == when


def test_kombu_json_types_in_args_kwargs_options_survive() -> None:
    values = [datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1), date(2024, 2, 29),
              Decimal("1.10"), UUID("6c0b8b9e-3f43-4c1e-9a51-2f1d8c2f0b7a")]
    entry = entry_from_config("e", item(args=values, kwargs={"when": values[0]},
                                        options={"eta_hint": values[3]}))
    back = roundtrip(entry)
    assert back.args == tuple(values)
    assert [type(v) for v in back.args] == [type(v) for v in values]
    assert back.kwargs == {"when": values[0]} and back.options == {"eta_hint": Decimal("1.10")}


def test_the_stored_form_is_json_text_every_program_can_read() -> None:
    data = json.loads(entry_from_config("e", item(args=[1])).to_json())
    assert data["task"] == "proj.tasks.report"
    assert data["schedule"] == {"type": "interval", "every": 30.0, "relative": False}


def test_replace_makes_a_changed_copy() -> None:
    entry = entry_from_config("e", item())
    assert entry.replace(enabled=False).enabled is False and entry.enabled is True


# -- bad items: each names the entry and the field -----------------------------

def refused(name: str, value: Any) -> str:
    with pytest.raises(ScheduleError) as info:
        entry_from_config(name, value)
    message = str(info.value)
    assert f"periodic task {name!r}" in message, message
    assert "\n" not in message
    return message


def test_schedule_error_is_a_configuration_error() -> None:
    assert issubclass(ScheduleError, ImproperlyConfigured)


@pytest.mark.parametrize("missing", ["task", "schedule"])
def test_missing_task_or_schedule(missing: str) -> None:
    fields = item()
    del fields[missing]
    assert f"{missing}: missing" in refused("nightly", fields)


def test_an_unknown_key_is_named_with_the_known_ones() -> None:
    message = refused("nightly", item(shedule=5))
    assert "unknown key 'shedule'" in message
    for known in ("args", "kwargs", "options", "relative", "schedule", "task", "missed", "tz"):
        assert known in message


@pytest.mark.parametrize("typo, meant", [("shedule", "schedule"), ("kwarg", "kwargs"),
                                         ("option", "options"), ("Task", "task")])
def test_an_unknown_key_suggests_the_one_meant(typo: str, meant: str) -> None:
    assert f"did you mean {meant!r}?" in refused("nightly", item(**{typo: 1}))


def test_an_unrelated_unknown_key_suggests_nothing() -> None:
    assert "did you mean" not in refused("nightly", item(queue="hipri"))
    assert "unknown key 5" in refused("nightly", {**item(), 5: "x", "zzz": 1})


def test_an_item_that_is_not_a_dict() -> None:
    assert "must be a dict" in refused("nightly", ("proj.tasks.report", 30))


@pytest.mark.parametrize("field, value, words", [
    ("task", 3, "task: must be a task name"),
    ("task", "", "task: must be a task name"),
    ("task", None, "task: must be a task name"),
    ("schedule", "*/5 * * * *", "schedule: unsupported schedule type str"),
    ("schedule", True, "schedule: unsupported schedule type bool"),
    ("schedule", None, "schedule: unsupported schedule type NoneType"),
    ("schedule", {"every": 5}, "schedule: unsupported schedule type dict"),
    ("schedule", 0, "schedule: "),
    ("schedule", -5, "schedule: "),
    ("schedule", float("nan"), "schedule: "),
    ("schedule", float("inf"), "schedule: "),
    ("schedule", 1e-9, "schedule: schedule run_every 1e-09: must be at least a microsecond"),
    ("args", "16,16", "args: must be a list or tuple, got str"),
    ("args", {1, 2}, "args: must be a list or tuple, got set"),
    ("args", 0, "args: must be a list or tuple, got int"),
    ("args", {}, "args: must be a list or tuple, got dict"),
    ("args", "", "args: must be a list or tuple, got str"),
    ("kwargs", [1], "kwargs: must be a dict, got list"),
    ("kwargs", {1: 2}, "kwargs: "),
    ("options", "hipri", "options: must be a dict, got str"),
    ("enabled", "no", "enabled: must be True or False"),
    ("enabled", 0, "enabled: must be True or False"),
    ("missed", "twice", "missed: 'twice' is not one of once, all, none"),
    ("missed", "ONCE", "missed: "),
    ("tz", "Mars/Olympus", "tz: "),
    ("tz", "../../etc/passwd", "tz: "),
    ("tz", 5, "tz: "),
    ("relative", "yes", "relative: "),
])
def test_wrong_values_name_the_field(field: str, value: Any, words: str) -> None:
    assert words in refused("nightly", item(**{field: value}))


def test_unknown_missed_policy_lists_the_policies() -> None:
    assert "once, all, none" in refused("nightly", item(missed="sometimes"))


def test_an_unknown_zone_says_what_a_zone_looks_like() -> None:
    assert "IANA" in refused("nightly", item(tz="Europe/Lodnon"))


@pytest.mark.parametrize("field, value", [
    ("args", [object()]), ("kwargs", {"x": object()}), ("options", {"priority": 1j}),
    ("args", [b"\xff" * 3, lambda: 1]),
])
def test_values_json_cannot_encode_are_refused_at_once(field: str, value: Any) -> None:
    message = refused("nightly", item(**{field: value}))
    assert "cannot be stored as JSON" in message


def test_a_dict_that_looks_like_a_kombu_marker_but_is_not_one_is_refused() -> None:
    # stored as is, it would be decoded as a datetime when read: no beat could read the row
    fake = {"__type__": "datetime", "__value__": "not a time"}
    assert "cannot be stored as JSON" in refused("nightly", item(args=[fake]))
    assert "cannot be stored as JSON" in refused("nightly", item(kwargs={"when": fake}))


def test_a_crontab_zone_that_cannot_be_stored_is_refused_at_once() -> None:
    # a fixed-offset tzinfo has no IANA name: storing it would leave a row no beat can read
    cron = crontab(hour=2, tz=timezone(timedelta(hours=2)))
    assert "schedule: " in refused("nightly", item(schedule=cron))


def test_an_unsupported_schedule_object() -> None:
    class Weekly:
        def is_due(self, last_run_at: Any) -> Any: ...

    assert "schedule: unsupported schedule type Weekly" in refused("nightly", item(
        schedule=Weekly()))


@pytest.mark.parametrize("name", ["", "x" * 201])
def test_a_bad_name(name: str) -> None:
    with pytest.raises(ScheduleError, match="periodic task name"):
        entry_from_config(name, item())


def test_a_bad_crontab_field_fails_where_the_user_writes_it() -> None:
    with pytest.raises(ValueError, match="minute"):
        crontab(minute="61")


# -- stored definitions another program wrote wrong ----------------------------

GOOD_SCHEDULE = {"type": "interval", "every": 5}


def stored(**fields: Any) -> str:
    return json.dumps({"task": "t", "schedule": GOOD_SCHEDULE, **fields})


@pytest.mark.parametrize("text, words", [
    ("not json", "not JSON"),
    ("", "not JSON"),
    (b"\xff\xfe{", "not JSON"),
    ("[1, 2]", "must be an object"),
    ("null", "must be an object"),
    ('"text"', "must be an object"),
    (json.dumps({"task": "t"}), "schedule: "),
    (json.dumps({"task": "t", "schedule": "every 5"}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "weekly"}}),
     "schedule: unknown schedule type 'weekly'"),
    (json.dumps({"task": "t", "schedule": {"type": ["interval"]}}), "unknown schedule type"),
    (json.dumps({"task": "t", "schedule": {"type": "interval"}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "interval", "every": "5"}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "interval", "every": True}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "interval", "every": -1}}), "schedule: "),
    ('{"task": "t", "schedule": {"type": "interval", "every": 1e999}}', "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "interval", "every": 5,
                                           "relative": "false"}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "crontab", "minute": "99"}}),
     "schedule: crontab minute"),
    (json.dumps({"task": "t", "schedule": {"type": "crontab", "tz": "Nowhere/City"}}),
     "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "clocked", "when": "tomorrow"}}),
     "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "clocked", "when": 5}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "clocked"}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "solar", "event": "noonish", "lat": 0,
                                           "lon": 0}}), "schedule: "),
    (json.dumps({"task": "t", "schedule": {"type": "solar", "event": "sunrise", "lat": "0",
                                           "lon": 0}}), "schedule: "),
    (stored(task=5), "task: "),
    (stored(task=None), "task: "),
    (stored(args=5), "args: "),
    (stored(args="abc"), "args: "),
    (stored(args={"a": 1}), "args: "),
    (stored(kwargs=[1]), "kwargs: "),
    (stored(options="hipri"), "options: "),
    (stored(enabled="yes"), "enabled: "),
    (stored(missed=3), "missed: "),
    (stored(missed="twice"), "missed: "),
    (stored(tz=3), "tz: "),
    (stored(tz="Mars/Olympus"), "tz: "),
    (stored(args=[{"__type__": "datetime", "__value__": "garbage"}]), "periodic task"),
])
def test_hostile_stored_definitions_raise_schedule_error_naming_the_entry(
        text: Any, words: str) -> None:
    with pytest.raises(ScheduleError) as info:
        entry_from_json("nightly", text)
    message = str(info.value)
    assert message.startswith("periodic task 'nightly'"), message
    assert words in message, message
    assert "\n" not in message


def test_a_missing_stored_field_is_named_as_missing() -> None:
    with pytest.raises(ScheduleError, match=r"schedule: .*every.*missing|missing.*every"):
        entry_from_json("nightly", json.dumps({"task": "t", "schedule": {"type": "interval"}}))


def test_a_stored_definition_with_defaults_left_out_reads() -> None:
    entry = entry_from_json("e", json.dumps({"task": "t", "schedule": GOOD_SCHEDULE}))
    assert (entry.args, entry.kwargs, entry.enabled, entry.missed) == ((), {}, True, None)
