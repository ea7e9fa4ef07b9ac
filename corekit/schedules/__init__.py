"""Schedule types for periodic tasks (issue 14): pure computation the beat uses.

``schedule`` (an interval), ``crontab`` (cron fields, time zones, DST rule),
``solar`` (sun events; needs the ``solar`` extra when made, not when imported) and
``clocked`` (one-off), each with Celery's ``is_due(last_run_at)`` ->
``schedstate(is_due, next)`` and ``remaining_estimate(last_run_at)``.
"""

from corekit.schedules.clocked import clocked
from corekit.schedules.crontab import crontab
from corekit.schedules.interval import schedstate, schedule
from corekit.schedules.solar import solar

__all__ = ["schedstate", "schedule", "crontab", "solar", "clocked"]
