"""`CorekitBackend`: Django's task framework on corekit (``django.tasks``
on Django 6, the ``django-tasks`` backport on Django 5.2)::

    TASKS = {"default": {"BACKEND": "corekit.contrib.django.tasks.CorekitBackend"}}

``task.enqueue(*args, **kwargs)`` sends a corekit task message through the
project's corekit app (the one ``manage.py corekit`` runs: ``COREKIT_APP``,
else ``<settings package>.corekit:app``; ``OPTIONS={"APP": "mod:attr"}``
names another).  The message's task name is the Django task's
``module_path``; ordinary workers run it without anything registered
(`task_runner`).  Django's ``queue_name`` is the corekit queue
(``"default"`` is ``task_default_queue``), its ``priority`` maps to
corekit's 0-9 (`task_results.corekit_priority`), ``run_after`` is the ETA.

Results are read from the app's result backend (``COREKIT_RESULT_BACKEND``):
enqueue stores a PENDING record naming the task, so that
``get_result(id)`` knows a task that has not started yet.  Without a
result backend configured, tasks are still sent, and ``get_result`` says
what is missing.  Enqueue is immediate, as Django's is: inside a
transaction, wrap it in ``transaction.on_commit``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corekit import states
from corekit.contrib.django.task_framework import framework
from corekit.contrib.django.task_results import (DJANGO_TASK_HEADER, corekit_priority,
                                                 enqueued_at, new_result_id, result_from_meta)

if TYPE_CHECKING:
    from corekit.app import Corekit

OPTIONS = frozenset({"APP"})


class CorekitBackend(framework().BaseTaskBackend):  # type: ignore[misc]
    """Django tasks as corekit task messages, their results in corekit's
    result backend."""

    supports_defer = True
    supports_async_task = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        unknown = sorted(set(self.options) - OPTIONS)
        if unknown:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"TASKS[{alias!r}]['OPTIONS']: unknown key(s) "
                                       f"{', '.join(unknown)} (known: {', '.join(OPTIONS)})")
        self._app: Corekit | None = None

    @property
    def app(self) -> Corekit:
        """The project's corekit app, loaded on first use."""
        if self._app is None:
            from django.conf import settings

            from corekit.cli.appload import load_app
            from corekit.contrib.django.plugin import django_app_path

            self._app = load_app(self.options.get("APP") or django_app_path(settings))
        return self._app

    @property
    def supports_get_result(self) -> bool:  # type: ignore[override]
        """Whether the app has a result backend configured (``result_backend``)."""
        return self.app.conf.result_backend is not None

    def corekit_queue(self, queue_name: str) -> str:
        """The corekit queue of Django's *queue_name*."""
        if queue_name == framework().DEFAULT_TASK_QUEUE_NAME:
            return str(self.app.conf.task_default_queue)
        return queue_name

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        fw = framework()
        self.validate_task(task)
        result_id = new_result_id()
        try:
            result = fw.TaskResult(
                task=task, id=result_id, status=fw.TaskResultStatus.READY,
                enqueued_at=enqueued_at(result_id), started_at=None, finished_at=None,
                last_attempted_at=None, args=args, kwargs=kwargs, backend=self.alias,
                errors=[], worker_ids=[])
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{task.module_path}: Django task arguments must be JSON "
                            f"(str, int, float, bool, None, lists, dicts): {exc}") from exc
        app = self.app
        if self.supports_get_result:  # before the message: the worker's states come after
            app.backend.store_result(result_id, None, states.PENDING, name=task.module_path,
                                     args=result.args, kwargs=result.kwargs,
                                     **{DJANGO_TASK_HEADER: self.alias})
        app.send_task(task.module_path, result.args, result.kwargs, task_id=result_id,
                      queue=self.corekit_queue(task.queue_name),
                      priority=corekit_priority(task.priority), eta=self._eta(task),
                      ignore_result=False, headers={DJANGO_TASK_HEADER: self.alias})
        fw.task_enqueued.send(type(self), task_result=result)
        return result

    @staticmethod
    def _eta(task: Any) -> Any:
        run_after = task.run_after
        if run_after is not None and run_after.tzinfo is None:  # USE_TZ = False: local time
            from django.utils import timezone

            run_after = timezone.make_aware(run_after)
        return run_after

    def get_result(self, result_id: str) -> Any:
        fw = framework()
        if not self.supports_get_result:
            raise NotImplementedError(
                f"TASKS[{self.alias!r}]: corekit app {self.app.main!r} has no result backend, "
                f"so results cannot be read: set COREKIT_RESULT_BACKEND (\"django-db\", or a "
                f"result backend's URL)")
        meta = self.app.backend.get_task_meta(str(result_id))
        name = meta.get("name")
        if not isinstance(name, str):
            raise fw.TaskResultDoesNotExist(result_id)
        from corekit.contrib.django.task_runner import import_django_task

        try:
            django_task = import_django_task(name)
        except fw.InvalidTask as exc:  # a result of corekit's own tasks, or a stale path
            raise fw.TaskResultDoesNotExist(f"{result_id}: {exc}") from exc
        return result_from_meta(str(result_id), meta, self.alias, django_task)
