"""`RunGate`: a worker runs one send's copies of a periodic task's run.

Where the schedule store is apart from the broker (RabbitMQ), the beat
claims a batch of runs in the store, publishes it, then records it sent.
A leader killed between the publish and that record leaves the runs
unsent as far as the store knows; the next leader sends them again, so
the broker may hold two copies of each, with one task id.  Such messages
carry `RUN_HEADER` (``[name, scheduled_at, send id]``), and before running
them the worker asks the store to `take_runs` (once per fetched batch):
the first send asked about is recorded, a copy of any other send is acked
and dropped, and the broker's redelivery of a copy already taken (its
worker died) still runs.

This gate never loses a run for its own trouble: a malformed header or a
store the worker cannot reach lets the task run (told in the log).
"""
from __future__ import annotations

import logging
import math
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

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
    """The `Consumer.gates` entry for `RUN_HEADER` (`corekit.worker.gates`)."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self._store: ScheduleStore | None = None
        self._lock = threading.Lock()
        #: the store could not be asked last time (told once until it can)
        self._trouble = False

    def __call__(self, jobs: Sequence[Job]) -> list[str | None]:
        reasons: list[str | None] = [None] * len(jobs)
        asked: list[int] = []  # positions of the jobs asked about
        runs: list[tuple[str, float, str]] = []
        for i, job in enumerate(jobs):
            try:
                runs.append(parse_run_header(job.message.headers[RUN_HEADER]))
            except ValueError as exc:
                logger.warning("Task %s[%s]: malformed %s header (%s); the task runs",
                               job.headers.task, job.id, RUN_HEADER, exc)
                continue
            asked.append(i)
        if not runs:
            return reasons
        try:
            taken = self.store().take_runs(runs)
        except Exception as exc:
            self._report(len(runs), exc)
            return reasons
        if self._trouble:
            logger.warning("The schedule store answers again: second copies of periodic "
                           "task runs are dropped again")
            self._trouble = False
        for i, (name, at, _), ok in zip(asked, runs, taken):
            if not ok:
                when = datetime.fromtimestamp(at, timezone.utc).isoformat()
                reasons[i] = (f"second copy of periodic task {name!r}'s run due at {when}: "
                              f"a new beat leader sent it again, and the other copy is the "
                              f"one that runs")
        return reasons

    def store(self) -> ScheduleStore:
        with self._lock:
            if self._store is None:
                from corekit.schedules.periodic import open_store

                self._store = open_store(self.app)
            return self._store

    def _report(self, count: int, exc: Exception) -> None:
        level = logging.DEBUG if self._trouble else logging.WARNING
        logger.log(level, "cannot ask the schedule store whether %d periodic task run(s) "
                   "ran already (%s: %s); they run, and until the store answers a second "
                   "copy would run too", count, type(exc).__name__, exc)
        self._trouble = True

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
