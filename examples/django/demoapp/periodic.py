"""Periodic tasks made with the ORM: the admin makes the same rows, and
running beats see them within a second (``manage.py corekit beat list``
shows them)."""
from corekit.contrib.django.models import CrontabSchedule, IntervalSchedule, PeriodicTask


def schedule_reports():
    every_10s, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.update_or_create(name="add-every-10s", defaults=dict(
        task="demoapp.tasks.add", interval=every_10s, args="[2, 3]"))
    nightly, _ = CrontabSchedule.objects.get_or_create(minute="30", hour="2",
                                                       timezone="Europe/London")
    PeriodicTask.objects.update_or_create(name="nightly-count", defaults=dict(
        task="demoapp.tasks.count_users", crontab=nightly, queue="reports",
        expire_seconds=3600))
