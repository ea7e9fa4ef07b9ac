"""The ``django-db`` schedule store: periodic tasks in the project's
database, as `PeriodicTask` rows (the admin's pages, the ORM), with the
beat's lease and run claims beside them (`beat_rows`).

``COREKIT_BEAT_STORE_URL = "django-db"`` (``"django-db://ALIAS"`` for a
database other than ``default``); it is also the store by default when the
result backend is ``django-db`` and the broker has no store (RabbitMQ).

How it keeps the contract (`corekit.schedules.store`):

- every change, through this store or any ``save()``/``delete()`` of a
  periodic task, moves one cursor in its transaction (`beat_rows`), and
  `wait_for_change` reads it every `WAIT_POLL` seconds;
- `claim_runs` is one transaction: the lease row read ``FOR UPDATE``
  (a beat taking the lease over waits for it), then per run one
  conditional ``UPDATE`` (``last_run_unix`` before the run), so two beats,
  a lease changing hands or a paused ex-leader never claim a run twice;
- run times are stored as floats (``last_run_unix``), never rounded
  through a datetime; ``last_run_at`` is the same time for people;
- the lease is timed by the database server's clock (PostgreSQL, MySQL),
  or this host's for SQLite, whose file is on this host;
- a call that finds its connection broken closes it, so the beat's retry
  opens another.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

from corekit.schedules.store import (SOURCES, Changes, CursorPoller, Run, ScheduleStore,
                                     StoredEntry, check_definition, check_holder, check_name,
                                     check_put, check_runs, check_takes)

#: Django's name of the database that keeps any type in any column (its
#: columns may hold what another program wrote there)
DYNAMIC_TYPES_VENDOR = "sqlite"
#: How often `wait_for_change` reads the cursor (a change is seen within this).
WAIT_POLL = 0.5
#: Run records are kept this long, and at least the last `KEEP_RUNS` per entry.
KEEP_RUNS_SECONDS = 86_400.0
KEEP_RUNS = 100
#: One claim in this many also prunes its entry's old run records.
PRUNE_ONE_IN = 64


def _as_bytes(field: str) -> Any:
    """SQLite: the column's bytes (text another program wrote may not be UTF-8)."""
    from django.db.models import BinaryField
    from django.db.models.functions import Cast

    return Cast(field, BinaryField())


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode(errors="backslashreplace")
    return str(value)


def _source(value: str | None) -> str:
    return value if value in SOURCES else "api"


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


class DjangoScheduleStore(ScheduleStore):
    """A schedule store in a Django database (see the module docstring)."""

    scheme = "django-db"

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        from corekit.contrib.django.backend import set_django_up

        set_django_up()
        from corekit.contrib.django import beat_rows, schedule_models

        self.rows = beat_rows
        self.tasks = schedule_models.PeriodicTask
        self.using = url.partition("://")[2].strip("/") or "default"
        from django.db import connections

        if self.using not in connections:
            from corekit.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"schedule store {url!r}: no database {self.using!r} "
                                       f"in DATABASES")
        self._poller = CursorPoller(WAIT_POLL)
        self._claims = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.using}>"

    def close(self) -> None:
        from django.db import connections

        connections[self.using].close()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """One transaction; a broken connection is closed on the way out, so
        the caller's retry (the beat retries) gets a new one."""
        from django.db import connections, transaction
        from django.db.utils import InterfaceError, OperationalError

        try:
            with transaction.atomic(using=self.using):
                yield
        except (OperationalError, InterfaceError):
            connection = connections[self.using]
            if not connection.in_atomic_block:
                connection.close_if_unusable_or_obsolete()
            raise

    def _notify(self) -> None:
        self._poller.notify()

    def _entries(self) -> Any:
        return self.tasks.objects.using(self.using)

    # -- clock ---------------------------------------------------------------
    def now(self) -> float:
        with self._atomic():
            return self.rows.database_now(self.using)

    # -- definitions ---------------------------------------------------------
    def _stored(self, rows: Any) -> list[StoredEntry]:
        """Rows as `StoredEntry`s; values another program wrote wrong (SQLite
        keeps any type in any column) read as "never ran" and as text."""
        fields = {f: _as_bytes(f) for f in ("definition", "source", "last_task_id")} \
            if self._any_type_columns() else {}
        rows = rows.annotate(**{f"raw_{f}": e for f, e in fields.items()})
        names = [f"raw_{f}" if f in fields else f for f in (
            "definition", "source", "last_task_id")]
        return [StoredEntry(name, _text(definition) or "", _source(_text(source)),
                            _number(last_run), _text(last_task_id),
                            count if type(count) is int else 0, _number(changed) or 0.0)
                for name, definition, source, last_task_id, last_run, count, changed in
                rows.values_list("name", *names, "last_run_unix", "total_run_count",
                                 "changed_unix")]

    def _any_type_columns(self) -> bool:
        from django.db import connections

        return connections[self.using].vendor == DYNAMIC_TYPES_VENDOR

    def load(self) -> tuple[int, list[StoredEntry]]:
        with self._atomic():
            cursor = self.rows.read_counter(self.using, "cursor")
            return cursor, self._stored(self._entries().all())

    def get(self, name: str) -> StoredEntry | None:
        check_name(name)
        with self._atomic():
            found = self._stored(self._entries().filter(name=name))
        return found[0] if found else None

    def changes(self, cursor: int) -> Changes:
        if type(cursor) is not int:
            raise TypeError(f"schedule store cursor must be an int, got {type(cursor).__name__}")
        with self._atomic():
            current = self.rows.read_counter(self.using, "cursor")
            if cursor == current:
                return Changes(current, [], [])
            if cursor > current or cursor < self.rows.read_counter(self.using, "horizon"):
                return Changes(current, self._stored(self._entries().all()), [])
            changed = self._stored(self._entries().filter(version__gt=cursor).order_by("version"))
            removed = list(self.rows.BeatRemoved.objects.using(self.using).filter(
                version__gt=cursor).order_by("version").values_list("name", flat=True))
            return Changes(current, changed, removed)

    def wait_for_change(self, cursor: int, timeout: float) -> bool:
        return self._poller.wait(self._read_cursor, cursor, timeout)

    def _read_cursor(self) -> int:
        with self._atomic():
            return self.rows.read_counter(self.using, "cursor")

    def put(self, name: str, definition: str, source: str = "api") -> None:
        check_put(name, definition, source)
        with self._atomic():
            self._put(self.rows.next_version(self.using), self.rows.database_now(self.using),
                      name, definition, source)
        self._notify()

    def _put(self, version: int, now: float, name: str, definition: str, source: str) -> None:
        """Write one entry (columns from the definition when it decodes; the
        text as given either way), in the caller's transaction."""
        from corekit.contrib.django.schedule_models import ENTRY_COLUMNS
        from corekit.schedules.entry import ScheduleError, entry_from_json

        # only the primary key is read: a column another program filled with
        # what Django cannot convert must not stop the beat from rewriting it
        pk = self._entries().filter(name=name).values_list("pk", flat=True).first()
        row = self.tasks(pk=pk, name=name)
        columns = ["definition", "source", "version", "changed_unix"]
        try:
            row.set_from_entry(entry_from_json(name, definition), self.using)
            columns += ENTRY_COLUMNS
        except (ScheduleError, TypeError, ValueError):  # kept as given: beats skip it and say why
            pass
        row.definition, row.source, row.version, row.changed_unix = (definition, source,
                                                                      version, now)
        # the model's save() would rewrite the definition from the columns
        super(self.tasks, row).save(using=self.using,
                                    update_fields=columns if pk is not None else None)
        self.rows.BeatRemoved.objects.using(self.using).filter(name=name).delete()

    def remove(self, name: str) -> bool:
        check_name(name)
        with self._atomic():
            found = self._remove([name])
        if found:
            self._notify()
        return bool(found)

    def _remove(self, names: Sequence[str]) -> int:
        """Delete *names*; the rows' delete signal leaves the tombstones."""
        found = list(self._entries().filter(name__in=list(names)).values_list("pk", "name"))
        for pk, name in found:  # not the whole row: see _put
            self.tasks(pk=pk, name=name).delete(using=self.using)
        return len(found)

    def sync_config(self, definitions: Mapping[str, str]) -> None:
        for name, definition in definitions.items():
            check_name(name)
            check_definition(name, definition)
        with self._atomic():
            stored = {e.name: (e.definition, e.source) for e in self._stored(self._entries())}
            puts = [name for name, text in definitions.items()
                    if stored.get(name) != (text, "config")]
            gone = [name for name, (_, source) in stored.items()
                    if source == "config" and name not in definitions]
            if puts:
                version = self.rows.next_version(self.using)
                now = self.rows.database_now(self.using)
                for name in puts:
                    self._put(version, now, name, definitions[name], "config")
            self._remove(gone)
        if puts or gone:
            self._notify()

    # -- the leader lease ----------------------------------------------------
    def _lease_row(self) -> Any:
        lease = self.rows.BeatLease.objects.using(self.using)
        if not lease.filter(id=1).exists():
            lease.get_or_create(id=1)
        return lease.filter(id=1)

    def acquire_lease(self, holder: str, ttl: float) -> bool:
        import math

        from django.db.models import Q

        check_holder(holder)
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not (
                math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        with self._atomic():
            now = self.rows.database_now(self.using)
            return bool(self._lease_row().filter(Q(holder=holder) | Q(expires__lte=now)).update(
                holder=holder, expires=now + ttl))

    def release_lease(self, holder: str) -> None:
        check_holder(holder)
        with self._atomic():
            self._lease_row().filter(holder=holder).update(holder="", expires=0.0)

    def lease(self) -> tuple[str, float] | None:
        with self._atomic():
            now = self.rows.database_now(self.using)
            row = self._lease_row().filter(expires__gt=now).exclude(holder="").values_list(
                "holder", "expires").first()
        return None if row is None else (row[0], float(row[1]) - now)

    # -- runs ----------------------------------------------------------------
    def claim_runs(self, holder: str, runs: Sequence[Run]) -> list[Run]:
        from django.db import connections

        from corekit.contrib.django.schedule_models import as_datetime

        check_holder(holder)
        runs = check_runs(runs)
        if not runs:
            return []
        connection = connections[self.using]
        claim = self._claim_sql()
        with self._atomic():
            now = self.rows.database_now(self.using)
            held = self._lease_row().select_for_update().filter(holder=holder,
                                                                expires__gt=now)
            if not list(held.values_list("id", flat=True)):
                return []
            claimed = []
            with connection.cursor() as cursor:  # one statement per run, no ORM to build
                for run in runs:
                    at = connection.ops.adapt_datetimefield_value(as_datetime(run.scheduled_at))
                    cursor.execute(claim, [run.scheduled_at, run.task_id, at, run.name,
                                           run.scheduled_at])
                    if cursor.rowcount == 1:
                        claimed.append(run)
            BeatRun = self.rows.BeatRun
            BeatRun.objects.using(self.using).bulk_create(
                [BeatRun(name=r.name, scheduled_at=r.scheduled_at, task_id=r.task_id,
                         claimed_at=now, sent=False) for r in claimed],
                update_conflicts=True, unique_fields=["name", "scheduled_at"],
                update_fields=["task_id", "claimed_at", "sent"])
            self._claims += len(claimed)
            if claimed and self._claims >= PRUNE_ONE_IN:
                self._claims = 0
                self._prune(claimed[-1].name, now)
        return claimed

    def _claim_sql(self) -> str:
        """The claim of one run: the entry exists and its last run (None, or
        on SQLite not a number, which another program wrote) is before it."""
        from django.db import connections

        quote = connections[self.using].ops.quote_name
        table = quote(self.tasks._meta.db_table)
        last = quote("last_run_unix")
        never = (f" OR typeof({last}) NOT IN ('integer', 'real', 'null')"
                 if self._any_type_columns() else "")
        return (f"UPDATE {table} SET {last} = %s, {quote('last_task_id')} = %s,"
                f" {quote('last_run_at')} = %s, {quote('total_run_count')} ="
                f" {quote('total_run_count')} + 1 WHERE {quote('name')} = %s AND"
                f" ({last} IS NULL OR {last} < %s{never})")

    def _prune(self, name: str, now: float) -> None:
        """*name*'s sent run records older than a day, beyond its newest 100,
        and the taken marks of runs whose records are gone."""
        records = self.rows.BeatRun.objects.using(self.using).filter(name=name)
        keep_from = records.order_by("-scheduled_at").values_list(
            "scheduled_at", flat=True)[KEEP_RUNS:KEEP_RUNS + 1]
        if keep_from:
            cutoff = now - KEEP_RUNS_SECONDS
            records.filter(sent=True, claimed_at__lt=cutoff,
                           scheduled_at__lt=min(cutoff, keep_from[0])).delete()
            kept = records.values_list("scheduled_at", flat=True)
            self.rows.BeatTaken.objects.using(self.using).filter(name=name).exclude(
                scheduled_at__in=kept).delete()

    def confirm_runs(self, runs: Sequence[Run]) -> None:
        from django.db import connections

        runs = check_runs(runs)
        if not runs:
            return
        connection = connections[self.using]
        quote = connection.ops.quote_name
        confirm = (f"UPDATE {quote(self.rows.BeatRun._meta.db_table)} SET {quote('sent')} = %s"
                   f" WHERE {quote('name')} = %s AND {quote('scheduled_at')} = %s")
        with self._atomic(), connection.cursor() as cursor:
            cursor.executemany(confirm, [(True, run.name, run.scheduled_at) for run in runs])

    def unsent_runs(self) -> list[Run]:
        with self._atomic():
            return [Run(*row) for row in self.rows.BeatRun.objects.using(self.using).filter(
                sent=False).order_by("scheduled_at").values_list("name", "scheduled_at",
                                                                 "task_id")]

    def take_runs(self, runs: Sequence[tuple[str, float, str]]) -> list[bool]:
        runs = check_takes(runs)
        answers = []
        with self._atomic():
            records = self.rows.BeatRun.objects.using(self.using)
            taken = self.rows.BeatTaken.objects.using(self.using)
            for name, scheduled_at, send_id in runs:
                if not records.filter(name=name, scheduled_at=scheduled_at).exists():
                    answers.append(True)
                    continue
                mark, _ = taken.get_or_create(name=name, scheduled_at=scheduled_at,
                                              defaults={"send_id": send_id})
                answers.append(mark.send_id == send_id)
        return answers

    def recent_runs(self, name: str | None = None, limit: int = 100) -> list[tuple[Run, bool]]:
        with self._atomic():
            records = self.rows.BeatRun.objects.using(self.using)
            if name is not None:
                records = records.filter(name=name)
            return [(Run(n, at, task_id), bool(sent)) for n, at, task_id, sent in
                    records.order_by("-scheduled_at").values_list(
                        "name", "scheduled_at", "task_id", "sent")[:max(0, int(limit))]]
