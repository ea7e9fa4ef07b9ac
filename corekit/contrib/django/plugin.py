"""The Django plugin (entry point ``django``): which packages
``app.autodiscover_tasks()`` looks in, when it is given none; the ``app``
setting (``COREKIT_APP`` in Django's settings), the app ``manage.py
corekit`` runs; ``delay_on_commit`` through Django's transactions; the
worker step for database connections (`worker_step`); the ``django-db``
result backend (`backend`); the ``django-db`` schedule store
(`schedule_store`: periodic tasks as `PeriodicTask` rows); and ``corekit
cam`` (`cam_command`, `camera`).

The answer is the installed apps of the project named by
``DJANGO_SETTINGS_MODULE`` (or configured by hand).  A worker started as
``corekit -A proj worker`` rather than through ``manage.py`` has Django set
up here first, as ``manage.py`` would have; while Django is still loading
its apps (a models module that sends a task on import), the plugin says it
cannot tell yet, and discovery waits for the worker's start.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.bootsteps import Step
    from corekit.settings import Setting


@hookimpl
def corekit_register_commands() -> dict[str, Any]:
    from corekit.contrib.django.cam_command import setup

    return {"cam": setup}


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return {"django-db": "corekit.contrib.django.backend:DjangoDatabaseBackend"}


@hookimpl
def corekit_register_schedule_stores() -> dict[str, str]:
    return {"django-db": "corekit.contrib.django.schedule_store:DjangoScheduleStore"}


@hookimpl
def corekit_register_bootsteps() -> list[type[Step]]:
    from corekit.contrib.django.worker_step import DjangoDatabaseStep

    return [DjangoDatabaseStep]


@hookimpl
def corekit_register_settings() -> list[Setting]:
    from corekit.settings import Setting

    return [Setting("app", None, str, "The app `manage.py corekit` runs ('module:attribute'); "
                    "None: <settings package>.corekit:app.")]


@hookimpl
def corekit_task_packages(app: Corekit) -> list[str] | None:
    try:
        from django.apps import apps
        from django.conf import settings
    except ImportError:  # no Django here: not a Django project
        return None
    if not (settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
        return None
    if not apps.ready:
        if apps.loading:
            return None
        import django

        django.setup()
    return [config.name for config in apps.get_app_configs()]


def django_app_path(settings: Any) -> str:
    """The corekit app of the project: the ``COREKIT_APP`` setting, else
    ``app`` in the module ``corekit`` beside the settings module
    (``proj.settings`` -> ``proj.corekit:app``, Celery's layout with
    ``celery.py``)."""
    explicit = getattr(settings, "COREKIT_APP", None)
    if explicit:
        if not isinstance(explicit, str):
            from corekit.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"COREKIT_APP must be a 'module:attribute' path, "
                                       f"got {explicit!r}")
        return explicit
    module = os.environ.get("DJANGO_SETTINGS_MODULE") or getattr(settings, "SETTINGS_MODULE", "")
    package = module.rpartition(".")[0]
    return f"{package}.corekit:app" if package else "corekit:app"


@hookimpl
def corekit_on_commit(app: Corekit, callback: Any) -> bool | None:
    """Django's ``transaction.on_commit`` (the default database), while
    Django is set up."""
    import sys

    if "django" not in sys.modules:
        return None
    from django.apps import apps

    if not apps.ready:
        return None
    from django.db import transaction

    transaction.on_commit(callback)
    return True


@hookimpl
def corekit_find_task(app: Corekit, name: str, headers: dict[str, Any]) -> Any:
    """A Django task (``django.tasks``) sent by `tasks.CorekitBackend`: its
    message names the task's module path (`task_runner`)."""
    if "django_task_backend" not in headers:
        return None
    from corekit.contrib.django.task_runner import find_django_task

    return find_django_task(app, name, headers)
