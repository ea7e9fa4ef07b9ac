"""The monitor's periodic-tasks routes: the schedule, the beat leader, each
entry's last outcome, and enable/disable.

The schedule store is a plugin, so the monitor reaches it only through
`PeriodicTasks`, opened on first use and kept for the monitor's life (its
clients reconnect by themselves).  Like every API route these run on the
monitor's thread pool, never on the event loop: a store call may block.
A store that cannot be opened or does not answer is a 503 whose message
the page shows.
"""
from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TypeVar

from corekit.exceptions import ImproperlyConfigured
from corekit.monitor.api import ApiError, Handler
from corekit.result_backend import ResultBackend
from corekit.schedules.entry import ScheduleError
from corekit.schedules.periodic import PeriodicTask, PeriodicTasks

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.monitor")

#: Last outcomes read per listing from a result backend that reads one id
#: per round trip (the rest show "unknown"); a batching backend reads all.
MAX_SINGLE_LOOKUPS = 50
#: Ids per batch from a batching backend.
BATCH = 500
#: The outcome of a run whose state the result backend cannot tell.
UNKNOWN = "unknown"
#: Seconds a request waits for the store call before it (one at a time) to end.
STORE_WAIT = 5.0

T = TypeVar("T")


class PeriodicRoutes:
    """``/api/periodic-tasks`` over *app*'s schedule store."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self._tasks: PeriodicTasks | None = None
        self._lock = threading.Lock()
        #: held during a store call: a store that never answers holds one
        #: route thread, not all of them
        self._calling = threading.Lock()
        self.store_wait = STORE_WAIT
        self._backend_failed = False

    def routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        """The routes, for `Api.routes`.  A name travels in the path (any
        characters, ``/`` too, percent-encoded), or, for a name a URL path
        cannot carry (``.`` and ``..``, which browsers resolve away), in
        the body of ``POST /api/periodic-tasks/enable`` as ``{"name": ...}``."""
        base = "/api/periodic-tasks"
        return [
            ("GET", re.compile(base), self.list),
            ("POST", re.compile(base + r"/(?P<name>.+)/enable"), self.enable),
            ("POST", re.compile(base + r"/(?P<name>.+)/disable"), self.disable),
            ("POST", re.compile(base + r"/enable"), self.enable),
            ("POST", re.compile(base + r"/disable"), self.disable),
        ]

    def close(self) -> None:
        with self._lock:
            if self._tasks is not None:
                self._tasks.close()
                self._tasks = None

    # -- the store -----------------------------------------------------------
    def _opened(self) -> PeriodicTasks:
        with self._lock:
            if self._tasks is None:
                tasks = PeriodicTasks(self.app)
                tasks.store  # noqa: B018  (opens it: a bad URL fails here, not later)
                self._tasks = tasks
            return self._tasks

    def _use(self, call: Callable[[PeriodicTasks], T]) -> T:
        """*call* on the store; a store that is missing, down or still busy
        with an earlier call after `store_wait` seconds: ApiError 503."""
        if not self._calling.acquire(timeout=self.store_wait):
            raise ApiError(503, f"the schedule store has not answered an earlier request for "
                                f"{self.store_wait:g} s; the page retries")
        try:
            return call(self._opened())
        except (ApiError, ScheduleError):
            raise
        except ImproperlyConfigured as exc:
            raise ApiError(503, str(exc)) from None
        except Exception as exc:
            logger.warning("monitor: the schedule store failed: %r", exc)
            raise ApiError(503, f"the schedule store is not answering ({type(exc).__name__}: "
                                f"{exc}); the page retries") from None
        finally:
            self._calling.release()

    # -- routes --------------------------------------------------------------
    def list(self, query: Mapping[str, str]) -> tuple[int, Any]:
        rows, lease = self._use(lambda tasks: (tasks.list(), tasks.store.lease()))
        outcomes = self.outcomes([row.last_task_id for row in rows if row.last_task_id])
        return 200, {
            "leader": {"holder": lease[0], "lease_left": lease[1]} if lease else None,
            "periodic_tasks": [_row_dict(row, outcomes) for row in rows],
        }

    def enable(self, body: Mapping[str, Any], name: str | None = None) -> tuple[int, Any]:
        return self._set_enabled(body, name, True)

    def disable(self, body: Mapping[str, Any], name: str | None = None) -> tuple[int, Any]:
        return self._set_enabled(body, name, False)

    def _set_enabled(self, body: Mapping[str, Any], name: str | None,
                     enabled: bool) -> tuple[int, Any]:
        name = _name_of(body, name)
        verb = "enabled" if enabled else "disabled"

        def change(tasks: PeriodicTasks) -> None:
            if tasks.store.get(name) is None:
                raise ApiError(404, f"no periodic task called {name!r}")
            try:
                tasks.enable(name) if enabled else tasks.disable(name)
            except ScheduleError as exc:
                if tasks.store.get(name) is None:  # removed meanwhile
                    raise ApiError(404, f"no periodic task called {name!r}") from None
                raise ApiError(409, f"cannot change {name!r}: {exc}") from None
        self._use(change)
        return 200, {"ok": f"periodic task {name} {verb}", "name": name, "enabled": enabled}

    # -- last outcomes ---------------------------------------------------------
    def outcomes(self, task_ids: Sequence[str]) -> dict[str, str]:
        """The state the result backend holds for each of *task_ids* it
        could read (one batch per `BATCH` ids when the backend batches, else
        the first `MAX_SINGLE_LOOKUPS`); a backend that fails gives none."""
        try:
            backend = self.app.backend
            if backend.needs_reply_to:  # rpc:// keeps nothing the monitor can read
                return {}
            wanted = list(task_ids) if _batches(backend) else list(task_ids)[:MAX_SINGLE_LOOKUPS]
            found: dict[str, str] = {}
            for start in range(0, len(wanted), BATCH):
                chunk = wanted[start:start + BATCH]
                for task_id, meta in zip(chunk, backend.get_many(chunk)):
                    found[task_id] = str(meta.get("status") or UNKNOWN)
        except Exception as exc:
            if not self._backend_failed:
                logger.warning("monitor: cannot read last outcomes from the result backend: "
                               "%r", exc)
            self._backend_failed = True
            return {}
        self._backend_failed = False
        return found


def _batches(backend: ResultBackend) -> bool:
    """Whether *backend* reads many ids in fewer round trips than one each."""
    kind = type(backend)
    return (kind.get_many is not ResultBackend.get_many
            or kind._get_many is not ResultBackend._get_many)


def _name_of(body: Mapping[str, Any], name: str | None) -> str:
    if name is not None:
        return name
    given = body.get("name")
    if not isinstance(given, str) or not given:
        raise ApiError(400, 'give the periodic task\'s name in the path '
                            '(/api/periodic-tasks/NAME/enable) or as {"name": "..."}')
    return given


def _row_dict(row: PeriodicTask, outcomes: Mapping[str, str]) -> dict[str, Any]:
    entry = row.entry
    outcome = None if row.last_task_id is None else outcomes.get(row.last_task_id, UNKNOWN)
    return {**row.as_dict(), "last_outcome": outcome,
            "args": list(entry.args) if entry else None,
            "kwargs": dict(entry.kwargs) if entry else None,
            "options": dict(entry.options) if entry else None,
            "missed": entry.missed if entry else None, "tz": entry.tz if entry else None}
