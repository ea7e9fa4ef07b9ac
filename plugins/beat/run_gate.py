"""`RunGate`: a worker runs one send's copies of a periodic task's run.

Where the schedule store is apart from the broker (RabbitMQ), the beat
claims a batch of runs in the store, publishes it, then records it sent.
A leader killed between the publish and that record leaves the runs
unsent as far as the store knows; the next leader sends them again, so
the broker may hold two copies of each, with one task id.  Such messages
carry `RUN_HEADER` (``[name, scheduled_at, send id]``), and before running
one the worker asks the store to `take_run`: the first send asked is
recorded, a copy of any other send is acked and dropped, and the broker's
redelivery of a copy already taken (its worker died) still runs.

This gate never loses a run for its own trouble: a malformed header or a
store the worker cannot reach lets the task run (told in the log).
"""
from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from corekit.plugins.beat.messages import RUN_HEADER

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.schedules.store import ScheduleStore
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.beat")


def parse_run_header(value: Any) -> tuple[str, float, str]:
    """``(name, scheduled_at, send id)`` from a `RUN_HEADER` value; ValueError if malformed."""
    if not (isinstance(value, (list, tuple)) and len(value) == 3):
        raise ValueError(f"expected [name, scheduled_at, send id], got {value!r:.200}")
    name, at, send_id = value
    if not (isinstance(name, str) and name and isinstance(send_id, str) and send_id
            and isinstance(at, (int, float)) and not isinstance(at, bool) and math.isfinite(at)):
        raise ValueError(f"expected [name, scheduled_at, send id], got {value!r:.200}")
    return name, float(at), send_id


class RunGate:
    """The `Consumer.gates` entry for `RUN_HEADER` (consumer thread only)."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self._store: ScheduleStore | None = None
        self._lock = threading.Lock()
        #: the store could not be asked last time (told once until it can)
        self._trouble = False

    def __call__(self, job: Job) -> str | None:
        try:
            name, at, send_id = parse_run_header(job.message.headers[RUN_HEADER])
        except ValueError as exc:
            logger.warning("Task %s[%s]: malformed %s header (%s); the task runs",
                           job.headers.task, job.id, RUN_HEADER, exc)
            return None
        try:
            taken = self.store().take_run(name, at, send_id)
        except Exception as exc:
            self._report(job, name, exc)
            return None
        if self._trouble:
            logger.warning("The schedule store answers again: second copies of periodic "
                           "task runs are dropped again")
            self._trouble = False
        if taken:
            return None
        when = datetime.fromtimestamp(at, timezone.utc).isoformat()
        return (f"second copy of periodic task {name!r}'s run due at {when} (a new beat "
                f"leader sent it again; the first copy ran)")

    def store(self) -> ScheduleStore:
        with self._lock:
            if self._store is None:
                from corekit.schedules.periodic import open_store

                self._store = open_store(self.app)
            return self._store

    def _report(self, job: Job, name: str, exc: Exception) -> None:
        level = logging.DEBUG if self._trouble else logging.WARNING
        logger.log(level, "Task %s[%s]: cannot ask the schedule store whether another copy "
                   "of periodic task %r's run ran (%s: %s); the task runs, and until the "
                   "store answers a second copy would run too", job.headers.task, job.id,
                   name, type(exc).__name__, exc)
        self._trouble = True

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
