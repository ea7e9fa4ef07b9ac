"""The ``django-db`` result backend: results, groups, chord counters and
revocations in the project's database, through Django's ORM
(`corekit.contrib.django.models`).

``COREKIT_RESULT_BACKEND = "django-db"`` (Celery's name for it).  Expired
rows are invisible at once and deleted by the ``celery.backend_cleanup``
task: put it in the beat schedule.  Each thread uses its own connection,
as Django does; a call that finds its connection broken (the database
restarted) reconnects and tries once more.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Sequence, TypeVar

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.utils import InterfaceError, OperationalError

from corekit.result_backend import ResultBackend
from corekit.serialization import Codecs

T = TypeVar("T")
REVOKES_EXPIRE = 10800.0
CHUNK = 500


def set_django_up() -> None:
    """Django's apps loaded (``django.setup()`` when only DJANGO_SETTINGS_MODULE
    says where the settings are), or a clear error."""
    import os

    from django.apps import apps
    from django.conf import settings

    if apps.ready:
        return
    if not (settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        from corekit.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "the django-db result backend needs a Django project: set DJANGO_SETTINGS_MODULE "
            "(the app module of Django's layout does), or run through manage.py corekit")
    import django

    django.setup()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class DjangoDatabaseBackend(ResultBackend):
    """Task metas as rows of `TaskResult` (groups in `GroupResult`)."""

    scheme = "django-db"

    def __init__(self, url: str, codecs: Codecs, options: Mapping[str, Any] | None = None
                 ) -> None:
        super().__init__(url, codecs, options)
        set_django_up()
        from corekit.contrib.django import models

        self.models = models

    # -- plumbing ------------------------------------------------------------
    def _retrying(self, step: Callable[[], T]) -> T:
        try:
            return step()
        except (OperationalError, InterfaceError):
            if connection.in_atomic_block:
                raise
            connection.close()  # a broken connection: the next query opens another
            return step()

    def _expiry(self) -> datetime | None:
        expires = self.expires
        seconds = expires.total_seconds() if isinstance(expires, timedelta) else expires
        return _now() + timedelta(seconds=float(seconds)) if seconds else None

    @staticmethod
    def _live() -> Q:
        return Q(expires_at__isnull=True) | Q(expires_at__gt=_now())

    def _is_group(self, key: str) -> bool:
        return key.startswith(self.GROUP_PREFIX)

    # -- storage primitives ----------------------------------------------------
    def _get(self, task_id: str) -> bytes | None:
        return self._get_many([task_id])[0]

    def _get_many(self, task_ids: Sequence[str]) -> list[bytes | None]:
        def read() -> list[bytes | None]:
            found: dict[str, bytes] = {}
            groups = [k for k in task_ids if self._is_group(k)]
            tasks = [k for k in task_ids if not self._is_group(k)]
            for start in range(0, len(tasks), CHUNK):
                found.update((k, bytes(m)) for k, m in self.models.TaskResult.objects.filter(
                    self._live(), task_id__in=tasks[start:start + CHUNK]).values_list(
                    "task_id", "meta"))
            for key in groups:
                row = self.models.GroupResult.objects.filter(
                    self._live(), group_id=key[len(self.GROUP_PREFIX):]).values_list(
                    "meta", flat=True).first()
                if row is not None:
                    found[key] = bytes(row)
            return [found.get(k) for k in task_ids]
        return self._retrying(read)

    def _set_many(self, items: Sequence[tuple[str, bytes, str]]) -> None:
        if not items:
            return
        now, expires_at = _now(), self._expiry()
        tasks, groups = [], []
        for key, data, status in items:
            if status == "GROUP" and self._is_group(key):
                groups.append(self.models.GroupResult(
                    group_id=key[len(self.GROUP_PREFIX):], meta=data, date_done=now,
                    expires_at=expires_at))
            else:
                tasks.append(self.models.TaskResult(
                    task_id=key, status=status, meta=data, date_done=now,
                    expires_at=expires_at, **self._readable(data)))

        def write() -> None:
            with transaction.atomic():
                if tasks:
                    self.models.TaskResult.objects.bulk_create(
                        tasks, update_conflicts=True, unique_fields=["task_id"],
                        update_fields=["status", "meta", "date_done", "expires_at", "result",
                                       "traceback", "task_name", "worker"])
                if groups:
                    self.models.GroupResult.objects.bulk_create(
                        groups, update_conflicts=True, unique_fields=["group_id"],
                        update_fields=["meta", "date_done", "expires_at"])
        self._retrying(write)

    def _readable(self, data: bytes) -> dict[str, Any]:
        """The admin's columns, from the stored meta (blank if it cannot be read)."""
        try:
            meta = self.decode_meta(data)
            result = json.dumps(meta.get("result"), default=repr)
        except Exception:
            return {}
        name, worker = meta.get("name"), meta.get("worker") or meta.get("hostname")
        return {"result": result, "traceback": meta.get("traceback"),
                "task_name": name if isinstance(name, str) else None,
                "worker": worker if isinstance(worker, str) else None}

    def _delete(self, task_id: str) -> None:
        def delete() -> None:
            if self._is_group(task_id):
                self.models.GroupResult.objects.filter(
                    group_id=task_id[len(self.GROUP_PREFIX):]).delete()
            else:
                self.models.TaskResult.objects.filter(task_id=task_id).delete()
        self._retrying(delete)

    # -- counters ----------------------------------------------------------------
    def incr(self, key: str, amount: int = 1) -> int:
        Counter = self.models.Counter

        def increment() -> int:
            expires_at = self._expiry()
            for _ in range(3):  # a racing first incr may create the row first
                with transaction.atomic():  # holds the row (or SQLite's write lock) to the end
                    updated = Counter.objects.filter(key=key).filter(self._live()).update(
                        value=F("value") + amount, expires_at=expires_at)
                    if not updated:
                        updated = Counter.objects.filter(key=key).update(
                            value=amount, expires_at=expires_at)  # an expired one restarts
                    if updated:
                        return int(Counter.objects.values_list("value", flat=True).get(key=key))
                    try:
                        with transaction.atomic():
                            Counter.objects.create(key=key, value=amount, expires_at=expires_at)
                        return amount
                    except IntegrityError:
                        continue
            raise RuntimeError(f"counter {key!r}: could not be created nor updated")
        return self._retrying(increment)

    def get_counter(self, key: str) -> int:
        value = self._retrying(lambda: self.models.Counter.objects.filter(
            self._live(), key=key).values_list("value", flat=True).first())
        return int(value or 0)

    def delete_counter(self, key: str) -> None:
        self._retrying(lambda: self.models.Counter.objects.filter(key=key).delete())

    # -- revocations ----------------------------------------------------------------
    def add_revocations(self, entries: Sequence[Mapping[str, Any]]) -> None:
        keep = float(self.options.get("revokes_expire", REVOKES_EXPIRE))
        Revocation = self.models.Revocation

        def add() -> None:
            with transaction.atomic():
                Revocation.objects.bulk_create(
                    [Revocation(at=e["at"], entry=json.dumps(dict(e), sort_keys=True))
                     for e in entries])
                Revocation.objects.filter(at__lt=time.time() - keep).delete()
        self._retrying(add)

    def revocations(self, since: float) -> list[dict[str, Any]]:
        rows = self._retrying(lambda: list(self.models.Revocation.objects.filter(
            at__gte=since).order_by("id").values_list("entry", flat=True)))
        return [json.loads(row) for row in rows]

    def cleanup(self) -> int:
        now = _now()

        def delete() -> int:
            return sum(model.objects.filter(expires_at__lte=now).delete()[0]
                       for model in (self.models.TaskResult, self.models.GroupResult,
                                     self.models.Counter))
        return int(self._retrying(delete))

    def describe(self) -> str:
        return f"django-db ({connection.vendor}: {connection.settings_dict.get('NAME')})"
