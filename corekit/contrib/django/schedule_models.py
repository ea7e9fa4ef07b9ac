"""The periodic tasks of the ``django-db`` schedule store, as Django models:
`PeriodicTask` and the four schedule kinds it points at (`IntervalSchedule`,
`CrontabSchedule`, `SolarSchedule`, `ClockedSchedule`), the tables
django-celery-beat users know, edited in the admin or with the ORM.

Beats read one column of a `PeriodicTask`: ``definition``, the entry as
JSON text (`corekit.schedules.entry`), which `PeriodicTask.save` writes
from the other columns.  So any ``save()`` (the admin, user code, a
schedule row's ``save()`` for every task using it) and any ``delete()``
moves the store's change cursor in the same transaction, and running
beats see the change within a second.  ``QuerySet.update()`` skips
``save()``: beats do not see such a change until the row is saved.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models.signals import post_delete

from corekit.schedules.entry import MISSED_POLICIES, ScheduleEntry, ScheduleError, \
    entry_from_json, json_codec

PERIODS = ("days", "hours", "minutes", "seconds", "microseconds")
_PERIOD_SECONDS = {"days": 86_400, "hours": 3600, "minutes": 60, "seconds": 1}
#: send options that have columns of their own (the rest go in ``options``)
OPTION_COLUMNS = ("queue", "exchange", "routing_key", "priority", "headers", "expires")
SCHEDULE_FIELDS = ("interval", "crontab", "solar", "clocked")
#: the columns `PeriodicTask.set_from_entry` writes
ENTRY_COLUMNS = [*SCHEDULE_FIELDS, "task", "enabled", "args", "kwargs", "options", "missed",
                 "timezone", "queue", "exchange", "routing_key", "priority", "headers",
                 "expires", "expire_seconds"]
#: tombstones of removed entries are kept this long; a cursor older than the
#: newest pruned one gets everything from `changes` (as `load` would)
TOMBSTONE_SECONDS = 7 * 86_400.0


def _solar_events() -> list[tuple[str, str]]:
    from corekit.schedules.solar import EVENTS

    return [(event, event.replace("_", " ")) for event in EVENTS]


class ScheduleRow(models.Model):
    """A schedule kind: saving one re-saves the periodic tasks that use it."""

    class Meta:
        abstract = True

    def schedule(self) -> Any:
        raise NotImplementedError

    def clean(self) -> None:
        try:
            self.schedule()
        except (TypeError, ValueError) as exc:
            raise ValidationError(str(exc)) from None

    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic(using=kwargs.get("using") or self._state.db or "default"):
            super().save(*args, **kwargs)
            for task in self.periodictask_set.all():  # type: ignore[attr-defined]
                task.save()


class IntervalSchedule(ScheduleRow):
    every = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    period = models.CharField(max_length=24, choices=[(p, p) for p in PERIODS],
                              default="seconds")
    relative = models.BooleanField(default=False, help_text="run at whole periods of the "
                                   "clock (Celery's relative=True)")

    class Meta:
        verbose_name = "interval"
        ordering = ["period", "every"]

    def schedule(self) -> Any:
        from corekit.schedules.interval import schedule

        return schedule(timedelta(**{self.period: self.every}), relative=self.relative)

    @classmethod
    def fields_of(cls, sched: Any) -> dict[str, Any]:
        seconds = float(sched.seconds)
        for period, size in _PERIOD_SECONDS.items():
            if seconds >= size and seconds % size == 0:
                return {"every": int(seconds // size), "period": period,
                        "relative": bool(sched.relative)}
        return {"every": max(1, round(seconds * 1_000_000)), "period": "microseconds",
                "relative": bool(sched.relative)}

    def __str__(self) -> str:
        return f"every {self.every} {self.period}"


class CrontabSchedule(ScheduleRow):
    minute = models.CharField(max_length=240, default="*")
    hour = models.CharField(max_length=96, default="*")
    day_of_week = models.CharField(max_length=64, default="*")
    day_of_month = models.CharField(max_length=124, default="*")
    month_of_year = models.CharField(max_length=64, default="*")
    timezone = models.CharField(max_length=63, blank=True, default="",
                                help_text="an IANA zone; blank: the task's or COREKIT_TIMEZONE")

    class Meta:
        verbose_name = "crontab"
        ordering = ["month_of_year", "day_of_month", "day_of_week", "hour", "minute"]

    CRON = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")

    def schedule(self) -> Any:
        from corekit.schedules.crontab import crontab

        return crontab(**{f: getattr(self, f) for f in self.CRON}, tz=self.timezone or None)

    @classmethod
    def fields_of(cls, sched: Any) -> dict[str, Any]:
        from corekit.schedules.entry import schedule_to_dict

        stored = schedule_to_dict(sched)
        return {**{f: stored[f] for f in cls.CRON}, "timezone": stored["tz"] or ""}

    def __str__(self) -> str:
        zone = f" ({self.timezone})" if self.timezone else ""
        return " ".join(getattr(self, f) for f in self.CRON) + zone


class SolarSchedule(ScheduleRow):
    event = models.CharField(max_length=24, choices=_solar_events)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180),
                                              MaxValueValidator(180)])

    class Meta:
        verbose_name = "solar event"
        ordering = ["event", "latitude", "longitude"]

    def schedule(self) -> Any:
        from corekit.schedules.solar import solar

        return solar(self.event, self.latitude, self.longitude)

    @classmethod
    def fields_of(cls, sched: Any) -> dict[str, Any]:
        return {"event": sched.event, "latitude": sched.lat, "longitude": sched.lon}

    def __str__(self) -> str:
        return f"{self.event} at ({self.latitude}, {self.longitude})"


class ClockedSchedule(ScheduleRow):
    clocked_time = models.DateTimeField(help_text="runs once, at this time")

    class Meta:
        verbose_name = "clocked time"
        ordering = ["clocked_time"]

    def schedule(self) -> Any:
        from corekit.schedules.clocked import clocked

        when = self.clocked_time
        return clocked(when if when.tzinfo else when.replace(tzinfo=timezone.utc))

    @classmethod
    def fields_of(cls, sched: Any) -> dict[str, Any]:
        return {"clocked_time": sched.when}

    def __str__(self) -> str:
        return f"at {self.clocked_time.isoformat()}"


SCHEDULE_MODELS: dict[str, type[ScheduleRow]] = {
    "interval": IntervalSchedule, "crontab": CrontabSchedule, "solar": SolarSchedule,
    "clocked": ClockedSchedule}


def _kind(sched: Any) -> str:
    from corekit.schedules.entry import schedule_to_dict

    return str(schedule_to_dict(sched)["type"])


def dump_json(value: Any) -> str:
    """kombu's JSON (datetimes and decimals survive), as text."""
    return json_codec().dumps(value).decode()  # type: ignore[no-any-return]


def load_json(text: str, field: str, name: str) -> Any:
    try:
        return json_codec().loads((text or "null").encode())
    except Exception as exc:
        raise ScheduleError(f"periodic task {name!r}: {field}: not JSON: {exc}") from None


class PeriodicTask(models.Model):
    """One periodic task: what it sends, when, and how often it ran."""

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=200, help_text="the registered name of the task to "
                            "send, e.g. demoapp.tasks.add")
    interval = models.ForeignKey(IntervalSchedule, on_delete=models.CASCADE, null=True,
                                 blank=True)
    crontab = models.ForeignKey(CrontabSchedule, on_delete=models.CASCADE, null=True,
                                blank=True)
    solar = models.ForeignKey(SolarSchedule, on_delete=models.CASCADE, null=True, blank=True)
    clocked = models.ForeignKey(ClockedSchedule, on_delete=models.CASCADE, null=True,
                                blank=True)
    args = models.TextField(default="[]", blank=True, help_text='JSON list, e.g. [2, 3]')
    kwargs = models.TextField(default="{}", blank=True, help_text='JSON object, e.g. '
                              '{"user": "ada"}')
    queue = models.CharField(max_length=200, blank=True, default="")
    exchange = models.CharField(max_length=200, blank=True, default="")
    routing_key = models.CharField(max_length=200, blank=True, default="")
    headers = models.TextField(default="{}", blank=True, help_text="JSON object")
    priority = models.PositiveIntegerField(null=True, blank=True,
                                           validators=[MaxValueValidator(255)])
    expires = models.DateTimeField(null=True, blank=True, help_text="no run is sent "
                                   "after this time")
    expire_seconds = models.PositiveIntegerField(null=True, blank=True, help_text="each "
                                                 "run expires this long after it is sent")
    options = models.TextField(default="{}", blank=True, help_text="other send options, "
                               "as a JSON object")
    missed = models.CharField(max_length=8, blank=True, default="", choices=[
        (p, p) for p in MISSED_POLICIES], help_text="runs missed while no beat ran; blank: "
        "COREKIT_BEAT_MISSED_RUNS")
    timezone = models.CharField(max_length=63, blank=True, default="", help_text="the zone "
                                "of a crontab with none of its own; blank: COREKIT_TIMEZONE")
    enabled = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")
    # the run state, written by beats
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_task_id = models.CharField(max_length=255, null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    date_changed = models.DateTimeField(auto_now=True)
    # what beats read (see the module docstring)
    source = models.CharField(max_length=8, default="api", editable=False,
                              help_text="config: from COREKIT_BEAT_SCHEDULE")
    definition = models.TextField(default="", editable=False)
    version = models.BigIntegerField(default=0, db_index=True, editable=False)
    changed_unix = models.FloatField(default=0.0, editable=False)
    last_run_unix = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "periodic task"
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule_row() or 'no schedule'}"

    # -- columns <-> entry ---------------------------------------------------
    def schedule_row(self) -> ScheduleRow | None:
        rows = [getattr(self, f) for f in SCHEDULE_FIELDS if getattr(self, f"{f}_id")]
        return rows[0] if len(rows) == 1 else None

    def to_entry(self) -> ScheduleEntry:
        """The entry these columns describe; `ScheduleError` naming the field."""
        set_ = [f for f in SCHEDULE_FIELDS if getattr(self, f"{f}_id")]
        if len(set_) != 1:
            raise ScheduleError(f"periodic task {self.name!r}: schedule: set exactly one of "
                                f"{', '.join(SCHEDULE_FIELDS)} (set: {', '.join(set_) or 'none'})")
        try:
            sched = getattr(self, set_[0]).schedule()
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"periodic task {self.name!r}: {set_[0]}: {exc}") from None
        options = load_json(self.options, "options", self.name) or {}
        if not isinstance(options, dict):
            raise ScheduleError(f"periodic task {self.name!r}: options: must be a JSON object")
        for column in ("queue", "exchange", "routing_key"):
            if getattr(self, column):
                options[column] = getattr(self, column)
        if self.priority is not None:
            options["priority"] = self.priority
        headers = load_json(self.headers, "headers", self.name)
        if headers:
            options["headers"] = headers
        if self.expire_seconds is not None:
            options["expires"] = self.expire_seconds
        elif self.expires is not None:
            options["expires"] = self.expires
        return ScheduleEntry(self.name, self.task, sched, load_json(self.args, "args", self.name),
                             load_json(self.kwargs, "kwargs", self.name), options,
                             self.enabled, self.missed or None, self.timezone or None)

    def set_from_entry(self, entry: ScheduleEntry, using: str) -> None:
        """These columns from *entry* (schedule rows found or created)."""
        kind = _kind(entry.schedule)
        model = SCHEDULE_MODELS[kind]
        fields = model.fields_of(entry.schedule)
        row = model.objects.using(using).filter(**fields).first() or \
            model.objects.using(using).create(**fields)
        for f in SCHEDULE_FIELDS:
            setattr(self, f, row if f == kind else None)
        options = dict(entry.options)
        for column in ("queue", "exchange", "routing_key"):
            value = options.get(column)
            setattr(self, column, options.pop(column) if isinstance(value, str) else "")
        priority = options.get("priority")
        self.priority = options.pop("priority") if type(priority) is int and 0 <= priority <= 255 \
            else None
        headers = options.get("headers")
        self.headers = dump_json(options.pop("headers")) if isinstance(headers, dict) else "{}"
        expires = options.get("expires")
        self.expires = self.expire_seconds = None
        if type(expires) is int and expires >= 0:
            self.expire_seconds = options.pop("expires")
        elif isinstance(expires, datetime):
            self.expires = options.pop("expires")
        self.task, self.enabled = entry.task, entry.enabled
        self.args, self.kwargs = dump_json(list(entry.args)), dump_json(entry.kwargs)
        self.options = dump_json(options)
        self.missed, self.timezone = entry.missed or "", entry.tz or ""

    def clean(self) -> None:
        """The columns make an entry that can be stored (the admin's check)."""
        try:
            self.to_entry().to_json()
        except ScheduleError as exc:
            raise ValidationError(str(exc)) from None

    def definition_changed(self, entry: ScheduleEntry) -> bool:
        """Whether *entry* differs from what ``definition`` says (its text is
        kept when it means the same, as ``beat_schedule`` wrote it)."""
        if not self.definition:
            return True
        try:
            return entry_from_json(self.name, self.definition) != entry
        except ScheduleError:
            return True

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Write ``definition`` from the columns and move the cursor, in one
        transaction; `ScheduleError` if the columns do not make an entry."""
        from corekit.contrib.django.beat_rows import BeatRemoved, database_now, next_version

        using = kwargs.get("using") or self._state.db or "default"
        entry = self.to_entry()
        with transaction.atomic(using=using):
            if self.definition_changed(entry):
                self.definition = entry.to_json()
                self.changed_unix = database_now(using)
            self.version = next_version(using)
            super().save(*args, **kwargs)
            BeatRemoved.objects.using(using).filter(name=self.name).delete()


def record_removal(sender: Any, instance: PeriodicTask, using: str, **_: Any) -> None:
    """After a periodic task's row is deleted (the admin, ``delete()``, a
    schedule row's cascade, the store's ``remove``), in that transaction:
    move the cursor, leave a tombstone, drop its run records."""
    from corekit.contrib.django.beat_rows import BeatRemoved, BeatRun, BeatTaken, \
        database_now, next_version, set_counter

    now = database_now(using)
    BeatRemoved.objects.using(using).update_or_create(
        name=instance.name, defaults={"version": next_version(using), "removed_at": now})
    BeatRun.objects.using(using).filter(name=instance.name).delete()
    BeatTaken.objects.using(using).filter(name=instance.name).delete()
    old = BeatRemoved.objects.using(using).filter(removed_at__lt=now - TOMBSTONE_SECONDS)
    newest = old.aggregate(models.Max("version"))["version__max"]
    if newest is not None:
        old.delete()
        set_counter(using, "horizon", newest)


post_delete.connect(record_removal, sender=PeriodicTask, dispatch_uid="corekit-beat-removal")


def as_datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)
