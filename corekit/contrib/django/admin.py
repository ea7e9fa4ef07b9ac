"""Admin pages of the ``django-db`` result backend's tables and of the
camera's snapshots: read-only (workers and the camera write them),
filtered by state, task name, worker and date, searched by id.  The
periodic tasks' pages are in `schedule_admin`."""
from __future__ import annotations

from typing import Any

from django.contrib import admin

from corekit.contrib.django.models import GroupResult, TaskResult, TaskState, WorkerState


class ReadOnly(admin.ModelAdmin):
    """Rows the workers write: shown and deleted, never edited or added here."""

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False


@admin.register(TaskResult)
class TaskResultAdmin(ReadOnly):
    list_display = ("task_id", "task_name", "status", "date_done", "worker")
    list_filter = ("status", "task_name", "date_done", "worker")
    search_fields = ("task_id", "task_name")
    date_hierarchy = "date_done"
    exclude = ("meta",)
    readonly_fields = ("task_id", "task_name", "status", "result", "traceback", "worker",
                       "date_created", "date_done", "expires_at")


@admin.register(GroupResult)
class GroupResultAdmin(ReadOnly):
    list_display = ("group_id", "date_done")
    search_fields = ("group_id",)
    date_hierarchy = "date_done"
    exclude = ("meta",)
    readonly_fields = ("group_id", "date_done", "expires_at")


@admin.register(TaskState)
class TaskStateAdmin(ReadOnly):
    list_display = ("task_id", "name", "state", "tstamp", "worker", "runtime")
    list_filter = ("state", "name", "worker", "tstamp")
    search_fields = ("task_id", "name")
    date_hierarchy = "tstamp"
    readonly_fields = ("task_id", "name", "state", "tstamp", "args", "kwargs", "eta",
                       "expires", "result", "traceback", "runtime", "retries", "worker")


@admin.register(WorkerState)
class WorkerStateAdmin(ReadOnly):
    list_display = ("hostname", "status", "last_heartbeat", "active", "processed")
    list_filter = ("status",)
    search_fields = ("hostname",)
    readonly_fields = ("hostname", "status", "last_heartbeat", "active", "processed")


from corekit.contrib.django import schedule_admin  # noqa: E402,F401 - periodic tasks' pages
