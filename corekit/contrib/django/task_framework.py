"""Django's task framework, wherever it is installed: ``django.tasks``
(Django 6.0 and later) or the ``django-tasks`` backport (module
``django_tasks``, 0.12 or later, for Django 5.2).  The two have the same
API under a few different names; `framework` answers with one set of names.
"""
from __future__ import annotations

import functools
import importlib
from types import SimpleNamespace


@functools.cache
def framework() -> SimpleNamespace:
    """The installed framework's parts: ``Task``, ``TaskResult``,
    ``TaskResultStatus``, ``TaskContext``, ``TaskError``,
    ``BaseTaskBackend``, ``InvalidTask``, ``TaskResultDoesNotExist``,
    ``normalize_json``, ``DEFAULT_TASK_QUEUE_NAME``, the signals ``task_enqueued``/``task_started``/
    ``task_finished``, ``task_backends``, and ``package`` (its module name).
    ImportError naming both when neither is installed."""
    try:
        package = "django.tasks"
        importlib.import_module(package)
        from django.utils.json import normalize_json  # type: ignore[attr-defined]
    except ImportError:
        package = "django_tasks"
        try:
            utils = importlib.import_module("django_tasks.utils")
        except ImportError:
            raise ImportError("Django's task framework is not installed: it is django.tasks on "
                              "Django 6.0 and later; on Django 5.2, pip install "
                              "'django-tasks>=0.12'") from None
        normalize_json = utils.normalize_json
    base = importlib.import_module(f"{package}.base")
    exceptions = importlib.import_module(f"{package}.exceptions")
    signals = importlib.import_module(f"{package}.signals")
    return SimpleNamespace(
        package=package, Task=base.Task, TaskResult=base.TaskResult,
        TaskResultStatus=base.TaskResultStatus, TaskContext=base.TaskContext,
        TaskError=base.TaskError,
        BaseTaskBackend=importlib.import_module(f"{package}.backends.base").BaseTaskBackend,
        InvalidTask=getattr(exceptions, "InvalidTask", None) or exceptions.InvalidTaskError,
        TaskResultDoesNotExist=exceptions.TaskResultDoesNotExist,
        normalize_json=normalize_json, task_enqueued=signals.task_enqueued,
        task_started=signals.task_started, task_finished=signals.task_finished,
        task_backends=importlib.import_module(package).task_backends,
        DEFAULT_TASK_QUEUE_NAME=base.DEFAULT_TASK_QUEUE_NAME)
