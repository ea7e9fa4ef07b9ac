"""The ``django-db`` schedule store's own tables, beside `PeriodicTask`:
the change cursor (`BeatState`), the leader lease (`BeatLease`), the
record of each claimed run (`BeatRun`), which send of a run workers may run
(`BeatTaken`) and tombstones of removed entries (`BeatRemoved`).  Beats and
workers write them; nobody edits them by hand, so they have no admin pages.

`next_version` moves the cursor inside the caller's transaction: its
``UPDATE`` holds the cursor row until commit, so versions are committed in
the order they are handed out (a reader that sees cursor N has seen every
change up to N).
"""
from __future__ import annotations

import time
from typing import Any

from django.db import connections, models
from django.db.models import F


class BeatState(models.Model):
    """Store-wide counters: ``cursor`` (moved by each change) and
    ``horizon`` (the newest version whose tombstone was pruned)."""

    key = models.CharField(max_length=32, primary_key=True)
    value = models.BigIntegerField(default=0)


class BeatLease(models.Model):
    """The one lease row (id 1): which beat leads, until when (store clock)."""

    holder = models.CharField(max_length=255, default="")
    expires = models.FloatField(default=0.0)


class BeatRun(models.Model):
    """One claimed run; ``sent`` once its message is on the broker."""

    name = models.CharField(max_length=200)
    scheduled_at = models.FloatField()
    task_id = models.CharField(max_length=255)
    claimed_at = models.FloatField(db_index=True)
    sent = models.BooleanField(default=False, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "scheduled_at"],
                                               name="corekit_beatrun_once")]


class BeatTaken(models.Model):
    """The send whose copies of a run may run (`take_runs`)."""

    name = models.CharField(max_length=200)
    scheduled_at = models.FloatField()
    send_id = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "scheduled_at"],
                                               name="corekit_beattaken_once")]


class BeatRemoved(models.Model):
    """A removed entry, so `changes` can say so (kept a week)."""

    name = models.CharField(max_length=200, unique=True)
    version = models.BigIntegerField(db_index=True)
    removed_at = models.FloatField()


#: the database's clock, where it has one we can ask (SQLite is a file on this host)
_NOW_SQL = {"postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())",
            "mysql": "SELECT UNIX_TIMESTAMP(NOW(6))"}


def database_now(using: str) -> float:
    """Unix seconds by the database server's clock (this host's for SQLite)."""
    connection = connections[using]
    sql = _NOW_SQL.get(connection.vendor)
    if sql is None:
        return time.time()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return float(cursor.fetchone()[0])


def _counter(using: str, key: str) -> Any:
    return BeatState.objects.using(using).filter(key=key)


def read_counter(using: str, key: str) -> int:
    value = _counter(using, key).values_list("value", flat=True).first()
    return int(value or 0)


def next_version(using: str) -> int:
    """Move the cursor (in the caller's transaction); the new value."""
    if not _counter(using, "cursor").update(value=F("value") + 1):
        BeatState.objects.using(using).get_or_create(key="cursor", defaults={"value": 0})
        _counter(using, "cursor").update(value=F("value") + 1)
    return read_counter(using, "cursor")


def set_counter(using: str, key: str, value: int) -> None:
    BeatState.objects.using(using).update_or_create(key=key, defaults={"value": value})
