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

An ``async def`` task in the asyncio pool runs on the event loop, where
Django refuses synchronous database calls: its ORM calls (``acount()``,
``aget()``..., or the task's own ``sync_to_async``) run in asgiref's one
shared thread, since no ``async_to_sync`` is above them in a worker.  So
the step has the pool await ``close_old_connections`` in that thread,
through ``sync_to_async``, before and after each such task: Django's rule
for an ASGI request.  Unlike Django's ASGI handler, which gives each
request a thread of its own (``ThreadSensitiveContext``), the async tasks
of a worker share that thread, and so its connection.  The asyncio pool's
plain tasks run in its threads and are handled like the threads pool's.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from corekit.bootsteps import Step
from corekit.worker.steps import PoolStep

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


async def close_old_connections_in_orm_thread() -> None:
    """Around an ``async def`` task: Django's own, in the thread its async ORM uses."""
    from asgiref.sync import sync_to_async

    await sync_to_async(close_old_connections, thread_sensitive=True)()


def forget_inherited_connections(**_: Any) -> None:
    """In a forked child: drop the parent's connections without any I/O."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _inherited.append(conn.connection)
            conn.connection = None


class DjangoDatabaseStep(Step):
    """Connects the handlers above to the task and pool signals while the
    worker runs (before the pool forks its children, which inherit them),
    and registers the async one with a pool that awaits ``async def`` tasks."""

    requires = (PoolStep,)

    def enabled(self, worker: Worker) -> bool:
        return django_is_set_up()

    def create(self, worker: Worker) -> None:
        from corekit import signals

        self.connected = [(signals.task_prerun, close_old_connections),
                          (signals.task_postrun, close_old_connections),
                          (signals.worker_process_init, forget_inherited_connections)]
        for signal, handler in self.connected:
            signal.connect(handler)
        pool = worker.blueprint[PoolStep].pool
        if hasattr(pool, "before_async_task"):  # this worker's own: nothing to undo at stop
            pool.before_async_task.append(close_old_connections_in_orm_thread)
            pool.after_async_task.append(close_old_connections_in_orm_thread)

    def stop(self, worker: Worker) -> None:
        for signal, handler in self.connected:
            signal.disconnect(handler)
