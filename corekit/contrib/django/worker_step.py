"""`DjangoDatabaseStep`: database connections in a worker of a Django project.

A worker is a long-running process with no request cycle, so nothing closes
the connections Django opens for a task the way the end of a request does.
The step, in every worker where Django is set up:

- closes stale or obsolete connections before and after each task (Django's
  ``close_old_connections``: with ``CONN_MAX_AGE = 0``, each task gets a
  fresh connection), on the thread or process that runs the task;
- in a process forked by the prefork pool, sets aside the connections
  inherited from the parent without closing them (closing would talk to
  the database over the parent's socket, or have SQLite tidy up files the
  parent still uses): the child opens its own on first use.

Tasks running on an event loop (the asyncio pool) are left alone: Django
refuses synchronous database calls there, and their ORM calls go through
``sync_to_async``, whose thread Django manages.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from corekit.bootsteps import Step

if TYPE_CHECKING:
    from corekit.worker import Worker

#: DB-API connections a forked child inherited: kept referenced, never closed
_inherited: list[Any] = []


def django_is_set_up() -> bool:
    import sys

    if "django" not in sys.modules:
        return False
    from django.apps import apps

    return bool(apps.ready)


def close_old_connections(**_: Any) -> None:
    """Before and after a task: Django's own, off an event loop only."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from django.db import close_old_connections as close

        close()


def forget_inherited_connections(**_: Any) -> None:
    """In a forked child: drop the parent's connections without any I/O."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _inherited.append(conn.connection)
            conn.connection = None


class DjangoDatabaseStep(Step):
    """Connects the handlers above to the task and pool signals while the
    worker runs (before the pool forks its children, which inherit them)."""

    def enabled(self, worker: Worker) -> bool:
        return django_is_set_up()

    def create(self, worker: Worker) -> None:
        from corekit import signals

        self.connected = [(signals.task_prerun, close_old_connections),
                          (signals.task_postrun, close_old_connections),
                          (signals.worker_process_init, forget_inherited_connections)]
        for signal, handler in self.connected:
            signal.connect(handler)

    def stop(self, worker: Worker) -> None:
        for signal, handler in self.connected:
            signal.disconnect(handler)
