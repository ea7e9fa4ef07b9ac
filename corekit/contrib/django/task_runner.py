"""How a corekit worker runs a Django task (``@task`` of ``django.tasks``
or ``django_tasks``) that `CorekitBackend` sent.

The message names the Django task's ``module_path`` and carries the
`DJANGO_TASK_HEADER`.  No task is registered ahead: the Django plugin's
``corekit_find_task`` hook calls `find_django_task` the first time a
worker meets the name.  The module is imported, its attribute must be a
Django ``Task``, and a corekit task of that name is registered that calls
the Django task's function (``async def`` ones are awaited, natively on
the asyncio pool), with a ``TaskContext`` first when the task
``takes_context``.  Its return value is normalized to JSON as Django's
backends do, and the framework's ``task_started``/``task_finished``
signals are sent in the worker.

A module path that is not a Django task here (a typo, an older
deployment, a forged message) fails that one task with
``InvalidTask``/``InvalidTaskError`` naming the path and why: stored as
its FAILURE, nothing registered, the worker carries on.  Only messages
with the header are looked at, and only dotted Python names are imported.
"""
from __future__ import annotations

import functools
import importlib
import inspect
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from corekit.contrib.django.task_framework import framework
from corekit.contrib.django.task_results import DJANGO_TASK_HEADER, enqueued_at

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.task import Task

DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+\Z", re.ASCII)


def import_django_task(module_path: str) -> Any:
    """The Django ``Task`` at *module_path* (``package.module.function``);
    ``InvalidTask`` (Django 6) / ``InvalidTaskError`` (django-tasks) saying
    why when there is none."""
    fw = framework()
    if not isinstance(module_path, str) or not DOTTED_NAME.match(module_path):
        raise fw.InvalidTask(f"{module_path!r:.200} is not a Django task's module path")
    module_name, _, attribute = module_path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        raise fw.InvalidTask(f"cannot import Django task {module_path!r}: "
                             f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(found, fw.Task):
        raise fw.InvalidTask(f"{module_path!r} is not a Django task (@task) but a "
                             f"{type(found).__name__}")
    return found


def find_django_task(app: Corekit, name: str, headers: Mapping[str, Any]
                     ) -> Task[Any, Any] | None:
    """The corekit task that runs the Django task *name* (registered on
    *app*), or one that fails with why it cannot; None when the message is
    not a Django task's."""
    if not isinstance(headers.get(DJANGO_TASK_HEADER), str):
        return None
    try:
        django_task = import_django_task(name)
    except Exception as exc:
        return _failing_task(app, name, exc)
    return _register(app, name, django_task)


def _failing_task(app: Corekit, name: str, exc: Exception) -> Task[Any, Any]:
    """An unregistered task named *name* whose run raises *exc*."""
    from corekit.task import Task

    def run(*args: Any, **kwargs: Any) -> Any:
        raise exc

    attrs = {"name": name, "app": app, "run": staticmethod(run), "typing": False,
             "ignore_result": False, "result_extended": True}
    return type("UnrunnableDjangoTask", (Task,), attrs)()


def _register(app: Corekit, name: str, django_task: Any) -> Task[Any, Any]:
    func = django_task.func
    if inspect.iscoroutinefunction(func):
        async def run(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:
            attempt = Attempt(self, django_task, args, kwargs)
            try:
                return attempt.succeeded(await func(*attempt.call_args, **kwargs))
            except Exception as exc:
                attempt.failed(exc)
                raise
    else:
        def run(self: Task[Any, Any], *args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
            attempt = Attempt(self, django_task, args, kwargs)
            try:
                return attempt.succeeded(func(*attempt.call_args, **kwargs))
            except Exception as exc:
                attempt.failed(exc)
                raise
    functools.update_wrapper(run, func)
    del run.__wrapped__  # type: ignore[attr-defined]  # its own signature: (self, *args)
    return app.task(name=name, bind=True, typing=False, ignore_result=False,
                    track_started=True, result_extended=True)(run)


class Attempt:
    """One run of a Django task in a worker: its ``TaskResult`` as it runs
    (the ``TaskContext`` of a task that takes one), and the framework's
    signals around it."""

    def __init__(self, task: Task[Any, Any], django_task: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        fw = framework()
        request = task.request
        now = datetime.now(timezone.utc)
        headers = request.headers if isinstance(request.headers, dict) else {}
        self.result = fw.TaskResult(
            task=django_task, id=request.id, status=fw.TaskResultStatus.RUNNING,
            enqueued_at=enqueued_at(request.id), started_at=now, finished_at=None,
            last_attempted_at=now, args=list(args), kwargs=kwargs,
            backend=str(headers.get(DJANGO_TASK_HEADER, django_task.backend)), errors=[],
            worker_ids=[str(request.hostname)] * (1 + int(request.retries or 0)))
        self.call_args = ((fw.TaskContext(task_result=self.result), *args)
                          if getattr(django_task, "takes_context", False) else args)
        self._send(fw.task_started)

    def succeeded(self, value: Any) -> Any:
        value = framework().normalize_json(value)
        self._finish(framework().TaskResultStatus.SUCCESSFUL)
        return value

    def failed(self, exc: BaseException) -> None:
        from traceback import format_exception

        fw = framework()
        cls = type(exc)
        self.result.errors.append(fw.TaskError(
            exception_class_path=f"{cls.__module__}.{cls.__qualname__}",
            traceback="".join(format_exception(exc))))
        self._finish(fw.TaskResultStatus.FAILED)

    def _finish(self, status: Any) -> None:
        object.__setattr__(self.result, "status", status)
        object.__setattr__(self.result, "finished_at", datetime.now(timezone.utc))
        self._send(framework().task_finished)

    def _send(self, signal: Any) -> None:
        from corekit.contrib.django.tasks import CorekitBackend

        signal.send_robust(CorekitBackend, task_result=self.result)
