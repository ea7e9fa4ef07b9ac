"""The cluster as events tell it: workers and tasks in memory, bounded.

`State.event` takes every event (from an `EventReceiver` handler, usually
``{"*": state.event}``) and updates a `WorkerState` per worker and a
`TaskState` per task.  Events may arrive out of order (several workers,
several brokers' paths): a task's state only moves to one that logically
comes later, so a late ``task-received`` after ``task-succeeded`` fills in
the name and arguments but leaves the task SUCCESS.  RETRY is the exception,
as in Celery: a retried task runs again under the same id.

Thread-safe: every method takes ``state.lock``.  Code that walks
``state.tasks`` or ``state.workers`` itself while events come in holds
``state.lock`` too (or uses `tasks_by_time`, `alive_workers`, `snapshot`,
which copy).

Every field of an event is bounded (`corekit.events.truncate`) before it is
kept: a Celery worker sends tracebacks and arguments whole, and a task's
timeline would keep them too.
"""
from __future__ import annotations

import bisect
import threading
import time
from typing import Any, Callable, Mapping, TypeVar

from corekit import states
from corekit.events.truncate import DEFAULT_MAX_FIELD_SIZE, bounded_event

T = TypeVar("T")

#: Seconds past the last heartbeat a worker counts as alive, per second of its
#: heartbeat frequency (Celery's 200% window).
HEARTBEAT_EXPIRE_WINDOW = 2.0
#: Heartbeat frequency assumed for a worker known only from its task events.
DEFAULT_FREQ = 60.0
#: The newest events kept in a task's timeline.
MAX_TASK_EVENTS = 100

#: The state each task event moves a task to.
TASK_EVENT_STATES = {
    "sent": states.PENDING, "received": states.RECEIVED, "started": states.STARTED,
    "succeeded": states.SUCCESS, "failed": states.FAILURE, "retried": states.RETRY,
    "revoked": states.REVOKED, "rejected": states.REJECTED,
}
#: Celery's order of states, the latest first: an event whose state comes
#: after the task's current one here happened before it.
PRECEDENCE = [states.SUCCESS, states.FAILURE, None, states.REVOKED, states.STARTED,
              states.RECEIVED, states.REJECTED, states.RETRY, states.PENDING]
#: Fields a task takes from its events.
TASK_FIELDS = ("name", "args", "kwargs", "result", "exception", "traceback", "runtime",
               "retries", "eta", "expires", "parent_id", "root_id", "queue", "exchange",
               "routing_key", "terminated", "expired", "signum", "requeue")
#: Fields a worker takes from its events.
WORKER_FIELDS = ("pid", "freq", "sw_ident", "sw_ver", "sw_sys", "active", "processed",
                 "loadavg", "clock")
#: What every event carries; left out of a task's timeline entries.
COMMON_FIELDS = frozenset({"type", "timestamp", "utcoffset", "pid", "clock", "uuid",
                           "local_received"})


def precedence(state: str | None) -> int:
    try:
        return PRECEDENCE.index(state)
    except ValueError:
        return PRECEDENCE.index(None)


class WorkerState:
    """One worker, from its worker-* events (and the task events it sent)."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.pid: int | None = None
        self.freq: float = DEFAULT_FREQ
        self.sw_ident: str | None = None
        self.sw_ver: str | None = None
        self.sw_sys: str | None = None
        self.active: int | None = None
        self.processed: int | None = None
        self.loadavg: list[float] | None = None
        self.clock = 0
        #: when its last few events arrived here (local time), oldest first
        self.heartbeats: list[float] = []

    def update(self, event: Mapping[str, Any]) -> None:
        for key in WORKER_FIELDS:
            if key in event and event[key] is not None:
                setattr(self, key, event[key])
        if event["type"] == "worker-offline":
            self.heartbeats.clear()
        else:
            self.beat(event.get("local_received") or event.get("timestamp") or time.time())

    def beat(self, when: float) -> None:
        bisect.insort(self.heartbeats, when)
        del self.heartbeats[:-4]

    @property
    def last_heartbeat(self) -> float | None:
        return self.heartbeats[-1] if self.heartbeats else None

    @property
    def heartbeat_expires(self) -> float | None:
        """When it counts as gone unless it is heard from again."""
        last = self.last_heartbeat
        return None if last is None else last + float(self.freq) * HEARTBEAT_EXPIRE_WINDOW

    @property
    def alive(self) -> bool:
        expires = self.heartbeat_expires
        return expires is not None and time.time() < expires

    @property
    def status(self) -> str:
        return "ONLINE" if self.alive else "OFFLINE"

    def as_dict(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "pid": self.pid, "freq": self.freq,
                "sw_ident": self.sw_ident, "sw_ver": self.sw_ver, "sw_sys": self.sw_sys,
                "active": self.active, "processed": self.processed,
                "loadavg": list(self.loadavg) if self.loadavg else self.loadavg,
                "clock": self.clock, "last_heartbeat": self.last_heartbeat,
                "heartbeat_expires": self.heartbeat_expires, "alive": self.alive,
                "status": self.status}

    def __repr__(self) -> str:
        return f"<WorkerState {self.hostname} {self.status}>"


class TaskState:
    """One task, from its task-* events: its state, the time of each step,
    what it was called with and how it ended, and its timeline."""

    def __init__(self, uuid: str) -> None:
        self.uuid = uuid
        self.state: str = states.PENDING
        self.name: str | None = None
        self.args: str | None = None
        self.kwargs: str | None = None
        self.result: str | None = None
        self.exception: str | None = None
        self.traceback: str | None = None
        self.runtime: float | None = None
        self.retries: int | None = None
        self.eta: str | None = None
        self.expires: str | None = None
        self.parent_id: str | None = None
        self.root_id: str | None = None
        self.queue: str | None = None
        self.exchange: str | None = None
        self.routing_key: str | None = None
        self.terminated: bool | None = None
        self.expired: bool | None = None
        self.signum: int | None = None
        self.requeue: bool | None = None
        #: when each step happened (the event's timestamp), None until it did
        self.sent: float | None = None
        self.received: float | None = None
        self.started: float | None = None
        self.succeeded: float | None = None
        self.failed: float | None = None
        self.retried: float | None = None
        self.revoked: float | None = None
        self.rejected: float | None = None
        #: the time of the event that set the current state
        self.timestamp: float | None = None
        self.clock = 0
        #: the worker's hostname, and the client's for task-sent
        self.worker: str | None = None
        self.client: str | None = None
        self.children: list[str] = []
        #: its events, oldest first: type, timestamp, hostname and their own fields
        self.events: list[dict[str, Any]] = []

    @property
    def id(self) -> str:
        return self.uuid

    @property
    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def update(self, subject: str, event: Mapping[str, Any]) -> None:
        """Apply a task event of *subject* (``received``, ``succeeded``...)."""
        timestamp = event.get("timestamp")
        new_state = TASK_EVENT_STATES.get(subject, subject.upper())
        if subject in TASK_EVENT_STATES:
            setattr(self, subject, timestamp)
        earlier = (new_state != states.RETRY and self.state != states.RETRY
                   and precedence(new_state) > precedence(self.state))
        for key in TASK_FIELDS:
            value = event.get(key)
            if value is not None and not (earlier and getattr(self, key) is not None
                                          and new_state != states.RECEIVED):
                setattr(self, key, value)
        if not earlier:
            self.state, self.timestamp = new_state, timestamp
            self.clock = int(event.get("clock") or 0)
        self._add_to_timeline(event)

    def _add_to_timeline(self, event: Mapping[str, Any]) -> None:
        entry = {k: v for k, v in event.items() if k not in COMMON_FIELDS}
        entry["type"], entry["timestamp"] = event["type"], event.get("timestamp") or 0.0
        keys = [e["timestamp"] for e in self.events]
        self.events.insert(bisect.bisect_right(keys, entry["timestamp"]), entry)
        del self.events[:-MAX_TASK_EVENTS]

    def as_dict(self) -> dict[str, Any]:
        out = {key: getattr(self, key) for key in TASK_FIELDS}
        out.update(uuid=self.uuid, state=self.state, sent=self.sent, received=self.received,
                   started=self.started, succeeded=self.succeeded, failed=self.failed,
                   retried=self.retried, revoked=self.revoked, rejected=self.rejected,
                   timestamp=self.timestamp, clock=self.clock, worker=self.worker,
                   client=self.client, children=list(self.children),
                   events=[dict(e) for e in self.events])
        return out

    def __repr__(self) -> str:
        return f"<TaskState {self.name}[{self.uuid}] {self.state}>"


class State:
    """Workers and tasks as the events received so far tell them.

    At most *max_workers_in_memory* workers (dead ones are forgotten first)
    and *max_tasks_in_memory* tasks (the oldest first) are kept, and of each
    event field at most *max_field_size* bytes (0: all).
    """

    def __init__(self, max_workers_in_memory: int = 5000,
                 max_tasks_in_memory: int = 10000,
                 max_field_size: int = DEFAULT_MAX_FIELD_SIZE) -> None:
        self.max_workers_in_memory = max_workers_in_memory
        self.max_tasks_in_memory = max_tasks_in_memory
        self.max_field_size = max_field_size
        self.lock = threading.RLock()
        self.workers: dict[str, WorkerState] = {}
        self.tasks: dict[str, TaskState] = {}
        self.event_count = 0
        #: task-received events seen (Celery's count of tasks)
        self.task_count = 0
        #: events seen, by type
        self.counts: dict[str, int] = {}
        self._types: set[str] = set()
        #: parent id -> ids of children seen before their parent
        self._orphans: dict[str, list[str]] = {}

    # -- taking events ---------------------------------------------------------
    def event(self, event: Mapping[str, Any]) -> WorkerState | TaskState | None:
        """Apply one event; returns the worker or task it was about (None
        for other groups)."""
        event = bounded_event(event, self.max_field_size)
        with self.lock:
            self.event_count += 1
            kind = str(event.get("type", ""))
            self.counts[kind] = self.counts.get(kind, 0) + 1
            group, _, subject = kind.partition("-")
            if group == "worker" and event.get("hostname"):
                worker = self._worker(str(event["hostname"]))
                worker.update(event)
                return worker
            if group == "task" and event.get("uuid"):
                return self._task_event(subject, event)
            return None

    def _task_event(self, subject: str, event: Mapping[str, Any]) -> TaskState:
        uuid = str(event["uuid"])
        task = self.tasks.get(uuid)
        if task is None:
            task = self.tasks[uuid] = TaskState(uuid)
            self._adopt(task)
            self._evict_tasks()
        hostname = event.get("hostname")
        if subject == "sent":
            task.client = hostname
        elif hostname:
            task.worker = hostname
            self._worker(hostname).beat(event.get("local_received") or time.time())
        if subject == "received":
            self.task_count += 1
        task.update(subject, event)
        if task.name:
            self._types.add(task.name)
        if task.parent_id:
            parent = self.tasks.get(task.parent_id)
            siblings = (parent.children if parent is not None
                        else self._orphans.setdefault(task.parent_id, []))
            if uuid not in siblings:
                siblings.append(uuid)
        return task

    def _adopt(self, task: TaskState) -> None:
        for child in self._orphans.pop(task.uuid, ()):
            if child not in task.children:
                task.children.append(child)

    def _worker(self, hostname: str) -> WorkerState:
        worker = self.workers.get(hostname)
        if worker is None:
            worker = self.workers[hostname] = WorkerState(hostname)
            self._evict_workers(keep=hostname)
        return worker

    def _evict_tasks(self) -> None:
        while len(self.tasks) > self.max_tasks_in_memory:
            del self.tasks[next(iter(self.tasks))]
        while len(self._orphans) > self.max_tasks_in_memory:
            del self._orphans[next(iter(self._orphans))]

    def _evict_workers(self, keep: str) -> None:
        """Forget workers beyond the bound, dead ones first, never *keep* (new)."""
        excess = len(self.workers) - self.max_workers_in_memory
        if excess <= 0:
            return
        others = [h for h in self.workers if h != keep]
        dead = [h for h in others if not self.workers[h].alive]
        for hostname in list(dict.fromkeys(dead + others))[:excess]:
            del self.workers[hostname]

    # -- reading -----------------------------------------------------------------
    def tasks_by_time(self, limit: int | None = None) -> list[TaskState]:
        """Tasks, the most recently updated first."""
        with self.lock:
            ordered = sorted(self.tasks.values(), key=lambda t: t.timestamp or 0.0,
                             reverse=True)
        return ordered if limit is None else ordered[:limit]

    def alive_workers(self) -> list[WorkerState]:
        with self.lock:
            return [w for w in self.workers.values() if w.alive]

    def task_types(self) -> list[str]:
        """Every task name seen, sorted."""
        with self.lock:
            return sorted(self._types)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data."""
        with self.lock:
            return {"workers": {h: w.as_dict() for h, w in self.workers.items()},
                    "tasks": {u: t.as_dict() for u, t in self.tasks.items()},
                    "event_count": self.event_count, "task_count": self.task_count,
                    "counts": dict(self.counts), "task_types": sorted(self._types)}

    def clear(self, ready: bool = True) -> None:
        """Forget the tasks that ended (with *ready*) or all of them, and
        the workers and counters."""
        with self.lock:
            for uuid in [u for u, t in self.tasks.items() if t.ready or not ready]:
                del self.tasks[uuid]
            self._orphans.clear()
            self.workers.clear()
            self.event_count = self.task_count = 0
            self.counts.clear()

    def freeze_while(self, fun: Callable[..., T], *args: Any, clear_after: bool = False,
                     **kwargs: Any) -> T:
        """Call *fun* with no event applied meanwhile (a camera's shutter);
        with *clear_after*, `clear` once it returned."""
        with self.lock:
            try:
                return fun(*args, **kwargs)
            finally:
                if clear_after:
                    self.clear()

    def __repr__(self) -> str:
        return f"<State: events={self.event_count} tasks={self.task_count}>"
