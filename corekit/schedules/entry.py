"""`ScheduleEntry`: one periodic task, and how it is written to a schedule store.

An entry is what a ``beat_schedule`` item says (Celery's keys ``task``,
``schedule``, ``args``, ``kwargs``, ``options``, ``relative``) plus three of
corekit's: ``enabled``, ``missed`` (the missed-run policy: ``"once"``,
``"all"`` or ``"none"``; None follows ``beat_missed_runs``) and ``tz`` (the
zone a crontab without its own ``tz`` reads; None follows ``timezone``).

Entries are stored as JSON text (kombu's JSON, so datetimes and decimals in
``args`` survive), so every beat, the CLI and the web monitor read the same
definition.  `entry_from_config` and `entry_from_json` check everything and
raise `ScheduleError` naming the entry and the field.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from corekit.exceptions import ImproperlyConfigured
from corekit.frozen import Frozen
from corekit.schedules.clocked import clocked
from corekit.schedules.crontab import crontab
from corekit.schedules.interval import schedule

__all__ = ["ScheduleEntry", "ScheduleError", "MISSED_POLICIES", "entry_from_config",
           "entry_from_json", "schedule_from_dict", "schedule_to_dict", "as_schedule",
           "json_codec"]

#: what a beat does with runs that came due while no beat ran (see the docs)
MISSED_POLICIES = ("once", "all", "none")
_CONFIG_KEYS = frozenset({"task", "schedule", "args", "kwargs", "options", "relative",
                          "enabled", "missed", "tz"})
_CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def json_codec() -> Any:
    """kombu's JSON (the ``json`` serializer), which every install has."""
    from corekit.pluginmanager import default_manager

    return default_manager().get("serializers", "json")


class ScheduleError(ImproperlyConfigured):
    """A periodic-task entry that cannot be used; the message names the entry and field."""


def as_schedule(value: Any, relative: bool = False) -> Any:
    """Seconds or a timedelta become a `schedule`; a schedule object is kept."""
    if isinstance(value, (int, float, timedelta)) and not isinstance(value, bool):
        return schedule(value, relative=relative)
    if _schedule_kind(value) is None:
        raise TypeError(f"unsupported schedule type {type(value).__name__} (use seconds, a "
                        f"timedelta, schedule, crontab, solar or clocked)")
    return value


def _schedule_kind(value: Any) -> str | None:
    if isinstance(value, schedule):
        return "interval"
    if isinstance(value, crontab):
        return "crontab"
    if isinstance(value, clocked):
        return "clocked"
    if type(value).__name__ == "solar" and type(value).__module__.startswith("corekit."):
        return "solar"
    return None


def schedule_to_dict(value: Any) -> dict[str, Any]:
    """The stored form of a schedule (JSON-ready)."""
    kind = _schedule_kind(value)
    if kind == "interval":
        return {"type": "interval", "every": value.seconds, "relative": value.relative}
    if kind == "crontab":
        return {"type": "crontab", **{f: str(value._orig[f]) if not isinstance(
            value._orig[f], (set, frozenset, list, tuple)) else ",".join(
            str(v) for v in sorted(value._orig[f], key=str)) for f in _CRON_FIELDS},
            "tz": value.tz_name}
    if kind == "clocked":
        return {"type": "clocked", "when": value.when.isoformat()}
    if kind == "solar":
        return {"type": "solar", "event": value.event, "lat": value.lat, "lon": value.lon}
    raise TypeError(f"unsupported schedule type {type(value).__name__}")


def schedule_from_dict(data: Any) -> Any:
    """The schedule a `schedule_to_dict` result describes; ValueError/TypeError if bad."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a stored schedule must be an object, got {type(data).__name__}")
    kind = data.get("type")
    try:
        return _schedule_of_kind(kind, data)
    except KeyError as exc:
        raise ValueError(f"{kind} schedule: {exc.args[0]!r} missing") from None


def _schedule_of_kind(kind: Any, data: Mapping[str, Any]) -> Any:
    if kind == "interval":
        relative = data.get("relative", False)
        if not isinstance(relative, bool):
            raise TypeError(f"relative must be true or false, got {relative!r}")
        return schedule(data["every"], relative=relative)
    if kind == "crontab":
        return crontab(**{f: data.get(f, "*") for f in _CRON_FIELDS}, tz=data.get("tz"))
    if kind == "clocked":
        return clocked(datetime.fromisoformat(data["when"]))
    if kind == "solar":
        from corekit.schedules.solar import solar

        return solar(data["event"], data["lat"], data["lon"])
    raise ValueError(f"unknown schedule type {kind!r} (known: interval, crontab, clocked, "
                     f"solar)")


class ScheduleEntry(Frozen):
    """One periodic task (immutable; `replace` makes a changed copy)."""

    __slots__ = FIELDS = ("name", "task", "schedule", "args", "kwargs", "options", "enabled",
                          "missed", "tz")
    name: str
    task: str
    schedule: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    enabled: bool
    missed: str | None
    tz: str | None

    def __init__(self, name: str, task: Any, schedule: Any, args: Any = (),
                 kwargs: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None, enabled: bool = True,
                 missed: str | None = None, tz: str | None = None) -> None:
        def bad(field: str, why: str) -> ScheduleError:
            return ScheduleError(f"periodic task {name!r}: {field}: {why}")

        if not isinstance(name, str) or not name or len(name) > 200:
            raise ScheduleError(f"periodic task name {name!r}: must be a non-empty string "
                                f"of at most 200 characters")
        if not isinstance(task, str) or not task:
            raise bad("task", f"must be a task name, got {task!r}")
        try:
            sched = as_schedule(schedule)
        except (TypeError, ValueError) as exc:
            raise bad("schedule", str(exc)) from None
        if args is None:
            args = ()
        if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)):
            raise bad("args", f"must be a list or tuple, got {type(args).__name__}")
        if kwargs is not None and not isinstance(kwargs, Mapping):
            raise bad("kwargs", f"must be a dict, got {type(kwargs).__name__}")
        if kwargs is not None and not all(isinstance(key, str) for key in kwargs):
            raise bad("kwargs", "keys must be strings (they are keyword argument names)")
        if options is not None and not isinstance(options, Mapping):
            raise bad("options", f"must be a dict, got {type(options).__name__}")
        if not isinstance(enabled, bool):
            raise bad("enabled", f"must be True or False, got {enabled!r}")
        if missed is not None and missed not in MISSED_POLICIES:
            raise bad("missed", f"{missed!r} is not one of {', '.join(MISSED_POLICIES)}")
        if tz is not None:
            try:
                crontab(tz=tz)
            except (TypeError, ValueError) as exc:
                raise bad("tz", str(exc)) from None
        self._store(name, task, sched, tuple(args), dict(kwargs or {}), dict(options or {}),
                    enabled, missed, tz)

    def to_json(self) -> str:
        """The stored definition (kombu's JSON); `ScheduleError` if a value cannot be encoded."""
        stored_schedule = schedule_to_dict(self.schedule)
        try:  # e.g. a crontab zone without an IANA name would be stored unreadable
            schedule_from_dict(stored_schedule)
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"periodic task {self.name!r}: schedule: cannot be stored: "
                                f"{exc}") from None
        data = {"task": self.task, "schedule": stored_schedule,
                "args": list(self.args), "kwargs": self.kwargs, "options": self.options,
                "enabled": self.enabled, "missed": self.missed, "tz": self.tz}
        codec = json_codec()
        try:
            text = codec.dumps(data)
            codec.loads(text)  # a dict that looks like kombu's {"__type__": ...} marker
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"periodic task {self.name!r}: args/kwargs/options cannot be "
                                f"stored as JSON: {exc}") from None
        return text.decode()  # type: ignore[no-any-return]


def entry_from_config(name: str, item: Any) -> ScheduleEntry:
    """A ``beat_schedule`` item (Celery's keys, and corekit's ``enabled``, ``missed``, ``tz``)."""
    if not isinstance(item, Mapping):
        raise ScheduleError(f"periodic task {name!r}: must be a dict with 'task' and "
                            f"'schedule', got {type(item).__name__}")
    unknown = sorted(set(item) - _CONFIG_KEYS, key=str)
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]).lower(), sorted(_CONFIG_KEYS), n=1,
                                          cutoff=0.75)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ScheduleError(f"periodic task {name!r}: unknown key {unknown[0]!r} ({hint}known: "
                            f"{', '.join(sorted(_CONFIG_KEYS))})")
    for key in ("task", "schedule"):
        if key not in item:
            raise ScheduleError(f"periodic task {name!r}: {key}: missing")
    sched = item["schedule"]
    if not isinstance(item.get("relative", False), bool):
        raise ScheduleError(f"periodic task {name!r}: relative: must be True or False, got "
                            f"{item['relative']!r}")
    if item.get("relative") and isinstance(sched, (int, float, timedelta)):
        sched = schedule(sched, relative=True)
    entry = ScheduleEntry(name, item["task"], sched, item.get("args"),
                          item.get("kwargs"), item.get("options"), item.get("enabled", True),
                          item.get("missed"), item.get("tz"))
    entry.to_json()  # refuse now what could not be stored
    return entry


def entry_from_json(name: str, text: str | bytes) -> ScheduleEntry:
    """The entry a store holds under *name*; `ScheduleError` for a row another
    program wrote wrong (the beat skips that entry and says why, once)."""
    try:
        data = json_codec().loads(text.encode() if isinstance(text, str) else text)
    except Exception as exc:
        raise ScheduleError(f"periodic task {name!r}: stored definition is not JSON: "
                            f"{exc}") from None
    if not isinstance(data, dict):
        raise ScheduleError(f"periodic task {name!r}: stored definition must be an object")
    try:
        sched = schedule_from_dict(data.get("schedule"))
    except (KeyError, TypeError, ValueError) as exc:
        raise ScheduleError(f"periodic task {name!r}: schedule: {exc}") from None
    return ScheduleEntry(name, data.get("task"), sched, data.get("args"),
                         data.get("kwargs"), data.get("options"), data.get("enabled", True),
                         data.get("missed"), data.get("tz"))
