"""`Camera`: snapshots of the workers and their tasks in the database, as
django-celery's ``celerycam`` kept them for the admin.

``python manage.py corekit cam`` (or ``corekit events --camera
corekit.contrib.django.camera.Camera``) feeds the workers' events to it;
every ``--frequency`` seconds it saves the workers and the tasks whose
state changed since the last picture (`WorkerState`, `TaskState`).  Every
hour it deletes tasks that ended long enough ago: successes after a day,
failures after three, the others after five (django-celery's periods).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from corekit import states
from corekit.events.snapshot import Polaroid

if TYPE_CHECKING:
    from corekit.events.state import State

#: how long a task's snapshot is kept after its last event, by state group
EXPIRE_SUCCESS = timedelta(days=1)
EXPIRE_ERROR = timedelta(days=3)
EXPIRE_PENDING = timedelta(days=5)


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


class Camera(Polaroid):
    """Saves what changed since the last picture (see the module docstring)."""

    clear_after = True  # a finished task is saved once, then forgotten

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from corekit.contrib.django.backend import set_django_up

        set_django_up()
        #: task id -> (clock, state) of what was saved last
        self._saved: dict[str, tuple[int, str]] = {}

    def on_shutter(self, state: State) -> None:
        from django.db import close_old_connections, transaction

        from corekit.contrib.django.models import TaskState, WorkerState

        close_old_connections()
        with transaction.atomic():
            workers = {}
            for worker in state.workers.values():
                workers[worker.hostname], _ = WorkerState.objects.update_or_create(
                    hostname=worker.hostname, defaults={
                        "last_heartbeat": _when(worker.last_heartbeat), "status": worker.status,
                        "active": worker.active, "processed": worker.processed})
            for task in list(state.tasks.values()):
                if self._saved.get(task.uuid) == (task.clock, task.state):
                    continue
                TaskState.objects.update_or_create(task_id=task.uuid, defaults={
                    "state": task.state, "name": task.name,
                    "tstamp": _when(task.timestamp) or datetime.now(timezone.utc),
                    "args": task.args, "kwargs": task.kwargs, "eta": task.eta,
                    "expires": task.expires, "result": task.result,
                    "traceback": task.traceback, "runtime": task.runtime,
                    "retries": task.retries or 0, "worker": workers.get(task.worker or "")})
                self._saved[task.uuid] = (task.clock, task.state)
        if len(self._saved) > 100_000:  # the state forgets finished tasks; so do we
            self._saved.clear()

    def on_cleanup(self) -> None:
        from django.db.models import Q

        from corekit.contrib.django.models import TaskState

        now = datetime.now(timezone.utc)
        TaskState.objects.filter(
            Q(state=states.SUCCESS, tstamp__lt=now - EXPIRE_SUCCESS)
            | Q(state__in=[states.FAILURE, states.REVOKED, states.REJECTED],
                tstamp__lt=now - EXPIRE_ERROR)
            | Q(tstamp__lt=now - EXPIRE_PENDING)).delete()
