"""The database tables of the ``django-db`` result backend (`backend`),
and of the camera's snapshots (`camera`).

Each result row keeps what the backend stored (``meta``, encoded as the
result serializer wrote it: the backend reads only that), and, for the
admin and for queries, the state, the readable result and traceback, and
with ``result_extended`` the task's name and worker.
"""
from __future__ import annotations

from django.db import models

from corekit import states

STATUS_CHOICES = sorted((state, state) for state in states.ALL_STATES)


class TaskResult(models.Model):
    task_id = models.CharField("task id", max_length=255, unique=True)
    task_name = models.CharField("task name", max_length=255, null=True, blank=True,
                                 db_index=True, help_text="with result_extended")
    status = models.CharField(max_length=50, choices=STATUS_CHOICES, db_index=True)
    result = models.TextField(null=True, blank=True, help_text="the return value or the "
                              "exception, as JSON")
    traceback = models.TextField(null=True, blank=True)
    worker = models.CharField(max_length=255, null=True, blank=True)
    meta = models.BinaryField(help_text="what the result backend stored")
    date_created = models.DateTimeField(auto_now_add=True, db_index=True)
    date_done = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "task result"
        ordering = ["-date_done"]

    def __str__(self) -> str:
        return f"{self.task_name or 'task'}[{self.task_id}] {self.status}"


class GroupResult(models.Model):
    group_id = models.CharField("group id", max_length=255, unique=True)
    meta = models.BinaryField(help_text="the group's members, as the result backend stored them")
    date_done = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "group result"
        ordering = ["-date_done"]

    def __str__(self) -> str:
        return f"group {self.group_id}"


class Counter(models.Model):
    """A chord's join counter (the backend's ``incr``)."""

    key = models.CharField(max_length=255, unique=True)
    value = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)


class Revocation(models.Model):
    """A revoke kept for workers that start later."""

    at = models.FloatField(db_index=True)
    entry = models.TextField()


class WorkerState(models.Model):
    """A worker as the camera last saw it (``manage.py corekit cam``)."""

    hostname = models.CharField(max_length=255, unique=True)
    last_heartbeat = models.DateTimeField(null=True, blank=True, db_index=True)
    status = models.CharField(max_length=20, default="OFFLINE")
    active = models.IntegerField(null=True, blank=True)
    processed = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "worker"
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class TaskState(models.Model):
    """A task as the camera last saw it, from the workers' events."""

    task_id = models.CharField("task id", max_length=255, unique=True)
    state = models.CharField(max_length=50, choices=STATUS_CHOICES, db_index=True)
    name = models.CharField(max_length=255, null=True, blank=True, db_index=True)
    tstamp = models.DateTimeField("event received", db_index=True)
    args = models.TextField(null=True, blank=True)
    kwargs = models.TextField(null=True, blank=True)
    eta = models.CharField(max_length=64, null=True, blank=True)
    expires = models.CharField(max_length=64, null=True, blank=True)
    result = models.TextField(null=True, blank=True)
    traceback = models.TextField(null=True, blank=True)
    runtime = models.FloatField(null=True, blank=True, help_text="seconds")
    retries = models.IntegerField(default=0)
    worker = models.ForeignKey(WorkerState, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        verbose_name = "task"
        ordering = ["-tstamp"]
        get_latest_by = "tstamp"

    def __str__(self) -> str:
        return f"{self.name or 'task'}[{self.task_id}] {self.state}"


# the django-db schedule store: periodic tasks and the beat's own rows
from corekit.contrib.django.beat_rows import (BeatLease, BeatRemoved, BeatRun,  # noqa: E402
                                              BeatState, BeatTaken)
from corekit.contrib.django.schedule_models import (ClockedSchedule,  # noqa: E402
                                                    CrontabSchedule, IntervalSchedule,
                                                    PeriodicTask, SolarSchedule)

__all__ = ["TaskResult", "GroupResult", "Counter", "Revocation", "WorkerState", "TaskState",
           "PeriodicTask", "IntervalSchedule", "CrontabSchedule", "SolarSchedule",
           "ClockedSchedule", "BeatState", "BeatLease", "BeatRun", "BeatTaken", "BeatRemoved"]
