"""Admin pages of the ``django-db`` schedule store: periodic tasks (with
"enable", "disable" and "run now" actions) and their schedules.

Saving a periodic task or a schedule goes through the models' ``save()``,
which moves the store's cursor: running beats pick the change up within a
second.  A form whose columns do not make a valid entry (no schedule, two
schedules, args that are not a JSON list, a zone that does not exist) is
refused with the reason next to the field.  Entries that come from
``COREKIT_BEAT_SCHEDULE`` are read-only here, but for ``enabled``: the next
beat start would write the rest back.
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from corekit.contrib.django.schedule_models import (SCHEDULE_FIELDS, ClockedSchedule,
                                                    CrontabSchedule, IntervalSchedule,
                                                    PeriodicTask, SolarSchedule)
from corekit.schedules.entry import ScheduleError


def project_app() -> Any:
    """The project's corekit app (``COREKIT_APP``, or ``<settings package>.corekit:app``)."""
    from django.conf import settings

    from corekit.cli.appload import load_app
    from corekit.contrib.django.plugin import django_app_path

    return load_app(django_app_path(settings))


def registered_task_names() -> list[str]:
    try:
        app = project_app()
        app.discover_tasks()
    except Exception:  # no app: the field is plain text, the form still works
        return []
    return sorted(name for name in app.tasks if not name.startswith("celery."))


class TaskNameInput(forms.TextInput):
    """A text field that suggests the registered task names (a datalist):
    a task registered only on other workers can still be typed in."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> Any:
        listing = f"{name}-registered"
        html = super().render(name, value, {**(attrs or {}), "list": listing}, renderer)
        options = format_html_join("", '<option value="{}">', (
            (task,) for task in registered_task_names()))
        return format_html('{}<datalist id="{}">{}</datalist>', html, listing, options)


class PeriodicTaskForm(forms.ModelForm):
    class Meta:
        model = PeriodicTask
        fields = "__all__"
        widgets = {"task": TaskNameInput(attrs={"size": 60}), "args": forms.TextInput(attrs={"size": 60}),
                   "kwargs": forms.TextInput(attrs={"size": 60}),
                   "headers": forms.TextInput(attrs={"size": 60}),
                   "options": forms.TextInput(attrs={"size": 60})}

    def _post_clean(self) -> None:
        """After the model's own checks (`PeriodicTask.clean`): send options
        that `send_task` takes (a typo such as ``expire`` would fail every run)."""
        super()._post_clean()
        if self.errors:
            return
        try:
            entry = self.instance.to_entry()
            if entry.options:
                project_app().prepare_task(entry.task, (), {}, **entry.options)
        except (ScheduleError, TypeError, ValueError) as exc:
            self.add_error(None, f"send options: {exc}")


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    form = PeriodicTaskForm
    list_display = ("name", "enabled", "task", "schedule", "last_run_at", "total_run_count",
                    "source")
    list_filter = ("enabled", "source", "task", "last_run_at")
    search_fields = ("name", "task", "description")
    actions = ("enable_tasks", "disable_tasks", "run_tasks_now")
    readonly_fields = ("source", "last_run_at", "last_task_id", "total_run_count",
                       "date_changed")
    fieldsets = (
        (None, {"fields": ("name", "task", "enabled", "description")}),
        ("Schedule (set one)", {"fields": (*SCHEDULE_FIELDS, "missed", "timezone")}),
        ("Arguments", {"fields": ("args", "kwargs")}),
        ("Sending", {"fields": ("queue", "exchange", "routing_key", "priority", "headers",
                                "expires", "expire_seconds", "options"),
                     "classes": ("collapse",)}),
        ("Runs", {"fields": ("source", "last_run_at", "last_task_id", "total_run_count",
                             "date_changed")}))

    @admin.display(description="schedule")
    def schedule(self, obj: PeriodicTask) -> str:
        row = obj.schedule_row()
        return str(row) if row is not None else "(none: set one)"

    def get_readonly_fields(self, request: Any, obj: Any = None) -> Any:
        if obj is not None and obj.source == "config":  # beat_schedule owns it
            return [f.name for f in PeriodicTask._meta.fields if f.name != "enabled"]
        return self.readonly_fields

    @admin.action(description="Enable the selected periodic tasks")
    def enable_tasks(self, request: Any, queryset: Any) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected periodic tasks")
    def disable_tasks(self, request: Any, queryset: Any) -> None:
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request: Any, queryset: Any, enabled: bool) -> None:
        changed = 0
        for task in queryset:
            if task.enabled != enabled:
                task.enabled = enabled
                task.save()  # through save(): running beats see it
                changed += 1
        self.message_user(request, f"{changed} periodic task(s) "
                          f"{'enabled' if enabled else 'disabled'}.")

    @admin.action(description="Run the selected periodic tasks now")
    def run_tasks_now(self, request: Any, queryset: Any) -> None:
        """Send each task once, now, as its schedule would (its run state is
        the beat's and stays as it is)."""
        app = project_app()
        sent = []
        for task in queryset:
            try:
                entry = task.to_entry()
                result = app.send_task(entry.task, entry.args, entry.kwargs, **entry.options)
            except Exception as exc:
                self.message_user(request, f"{task.name}: not sent: {exc}", messages.ERROR)
                continue
            sent.append(f"{task.name} ({result.id})")
        if sent:
            self.message_user(request, f"Sent {len(sent)} task(s): {', '.join(sent)}.")


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "every", "period", "relative")
    list_filter = ("period",)


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "minute", "hour", "day_of_week", "day_of_month",
                    "month_of_year", "timezone")
    list_filter = ("timezone",)


@admin.register(SolarSchedule)
class SolarScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "event", "latitude", "longitude")
    list_filter = ("event",)


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "clocked_time")
    date_hierarchy = "clocked_time"
