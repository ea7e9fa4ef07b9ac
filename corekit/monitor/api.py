"""The monitor's JSON API: read the cluster, and act on tasks and workers.

Each route is a method taking the URL's captured parts, the query (GET) or
the JSON body (POST), and returning ``(status, JSON-able value)``; an
`ApiError` becomes ``{"error": message}`` with its status.
"""
from __future__ import annotations

import ast
import re
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from corekit.monitor.metrics import render
from corekit.ratelimit import parse_rate

if TYPE_CHECKING:
    from corekit.monitor.collector import Collector

#: Task states a task can be retried from (re-sent with the same arguments).
RETRYABLE = ("FAILURE", "REVOKED", "REJECTED")
#: At most this many tasks per page of ``/api/tasks``.
MAX_LIMIT = 1000
#: Task fields events carry truncated; the marker that says a value was.
TRUNCATABLE = ("args", "kwargs", "result", "exception", "traceback")
TRUNCATED = "…(truncated, "

Handler = Callable[..., tuple[int, Any]]


class ApiError(Exception):
    """A request the API refuses: *status* and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Api:
    """The routes over a `Collector`'s view of the cluster."""

    def __init__(self, collector: Collector, reply_timeout: float = 2.0) -> None:
        self.collector = collector
        self.app = collector.app
        self.reply_timeout = reply_timeout
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/api/workers"), self.workers),
            ("GET", re.compile(r"/api/workers/(?P<hostname>[^/]+)"), self.worker),
            ("GET", re.compile(r"/api/tasks"), self.tasks),
            ("GET", re.compile(r"/api/tasks/(?P<task_id>[^/]+)"), self.task),
            ("GET", re.compile(r"/api/tasks/(?P<task_id>[^/]+)/result"), self.stored_result),
            ("GET", re.compile(r"/api/queues"), self.queues),
            ("GET", re.compile(r"/api/stats"), self.stats),
            ("POST", re.compile(r"/api/tasks/(?P<task_id>[^/]+)/revoke"), self.revoke),
            ("POST", re.compile(r"/api/tasks/(?P<task_id>[^/]+)/retry"), self.retry),
            ("POST", re.compile(r"/api/workers/(?P<hostname>[^/]+)/rate_limit"),
             self.rate_limit),
            ("POST", re.compile(r"/api/workers/(?P<hostname>[^/]+)/pool_grow"),
             self.pool_grow),
            ("POST", re.compile(r"/api/workers/(?P<hostname>[^/]+)/pool_shrink"),
             self.pool_shrink),
            ("POST", re.compile(r"/api/workers/(?P<hostname>[^/]+)/shutdown"), self.shutdown),
        ]

    def route(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler for *method* on *path* (already URL-decoded per part),
        or ApiError 404 (no such path) / 405 (not with that method)."""
        allowed = []
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return handler, match.groupdict()
            allowed.append(route_method)
        if allowed:
            raise ApiError(405, f"{method} is not allowed on {path} (use {', '.join(allowed)})")
        raise ApiError(404, f"no such API endpoint: {path}")

    # -- workers -----------------------------------------------------------------------
    def hostnames(self) -> list[str]:
        """Every worker heard of: from events, or from inspect replies."""
        state = self.collector.state
        with state.lock:
            known = dict.fromkeys(state.workers)
        known.update(dict.fromkeys(list(self.collector.details)))
        return sorted(known)

    def worker_dict(self, hostname: str) -> dict[str, Any]:
        """A worker as its events and its last inspect replies describe it."""
        collector = self.collector
        worker = collector.state.workers.get(hostname)
        info: dict[str, Any] = worker.as_dict() if worker is not None else {}
        details = collector.details.get(hostname, {})
        stats = details.get("stats") or {}
        if worker is not None and worker.pid is not None:
            online = bool(worker.alive)  # it sends worker events: heartbeats say
        else:
            online = collector.answered_recently(hostname) or bool(worker and worker.alive)
        pool = stats.get("pool") or {}
        totals = stats.get("total") or {}
        processed = info.get("processed")
        if processed is None and isinstance(totals, Mapping):
            processed = sum(v for v in totals.values() if isinstance(v, int))
        return {
            **info, "hostname": hostname, "online": online,
            "status": "ONLINE" if online else "OFFLINE", "processed": processed or 0,
            "active": info.get("active") or 0,
            "pool": {"implementation": pool.get("implementation"),
                     "max_concurrency": pool.get("max-concurrency"),
                     "processes": pool.get("processes")},
            "prefetch_count": stats.get("prefetch_count"),
            "uptime": stats.get("uptime"),
            "queues": [q.get("name") for q in details.get("active_queues") or ()
                       if isinstance(q, Mapping)],
            "registered": details.get("registered") or [],
            "inspected_at": details.get("updated"),
        }

    def workers(self, query: Mapping[str, str]) -> tuple[int, Any]:
        return 200, {"workers": [self.worker_dict(h) for h in self.hostnames()]}

    def worker(self, query: Mapping[str, str], hostname: str) -> tuple[int, Any]:
        self._known_worker(hostname)
        details = self.collector.details.get(hostname, {})
        running = [t.as_dict() for t in self.collector.state.tasks_by_time()
                   if t.worker == hostname and t.state == "STARTED"]
        return 200, {**self.worker_dict(hostname), "stats": details.get("stats"),
                     "active_queues": details.get("active_queues"), "running": running}

    def _known_worker(self, hostname: str) -> None:
        if hostname not in self.hostnames():
            raise ApiError(404, f"no worker named {hostname!r} is known to the monitor")

    # -- tasks -------------------------------------------------------------------------
    def tasks(self, query: Mapping[str, str]) -> tuple[int, Any]:
        limit = _int_param(query, "limit", 100, 1, MAX_LIMIT)
        offset = _int_param(query, "offset", 0, 0, None)
        wanted_states = {s.strip().upper() for s in query.get("state", "").split(",")
                         if s.strip()}
        name, worker = query.get("name") or None, query.get("worker") or None
        search = (query.get("search") or "").strip().lower()
        found = [t for t in self.collector.state.tasks_by_time()
                 if (not wanted_states or t.state in wanted_states)
                 and (name is None or t.name == name)
                 and (worker is None or t.worker == worker)
                 and (not search or _matches(t, search))]
        page = [_summary(t.as_dict()) for t in found[offset:offset + limit]]
        return 200, {"total": len(found), "offset": offset, "limit": limit, "tasks": page,
                     "task_types": self.collector.state.task_types()}

    def task(self, query: Mapping[str, str], task_id: str) -> tuple[int, Any]:
        task = self._known_task(task_id)
        info = task.as_dict()
        tasks = self.collector.state.tasks
        info["timeline"] = sorted(info.get("events") or [],
                                  key=lambda e: e.get("timestamp") or 0)
        info["children"] = [_brief(c, tasks.get(c)) for c in info.get("children") or ()]
        parent_id = info.get("parent_id")
        info["parent"] = _brief(parent_id, tasks.get(parent_id)) if parent_id else None
        info["truncated"] = [k for k in TRUNCATABLE if TRUNCATED in str(info.get(k) or "")]
        return 200, info

    def stored_result(self, query: Mapping[str, str], task_id: str) -> tuple[int, Any]:
        """The task's meta as the result backend keeps it: its whole result
        and traceback, which events carry truncated (PENDING when the
        backend has none)."""
        return 200, self.app.backend.get_task_meta(task_id)

    def _known_task(self, task_id: str) -> Any:
        task = self.collector.state.tasks.get(task_id)
        if task is None:
            raise ApiError(404, f"no task {task_id!r} is known to the monitor (it keeps the "
                                f"latest tasks it saw events for)")
        return task

    # -- queues and stats -----------------------------------------------------------------
    def queues(self, query: Mapping[str, str]) -> tuple[int, Any]:
        lengths = self.collector.queue_lengths
        return 200, {"broker": self.app.producer.describe(),
                     "queues": [{"name": q, "messages": n} for q, n in lengths.items()]}

    def stats(self, query: Mapping[str, str]) -> tuple[int, Any]:
        collector = self.collector
        totals: dict[str, int] = {}
        for (_, state), n in dict(collector.metrics.tasks).items():
            totals[state] = totals.get(state, 0) + n
        current: dict[str, int] = {}
        for task in collector.state.tasks_by_time():
            current[task.state] = current.get(task.state, 0) + 1
        workers = [self.worker_dict(h) for h in self.hostnames()]
        return 200, {
            "events": collector.state.event_count,
            "totals": totals, "current": current,
            "workers_online": sum(1 for w in workers if w["online"]),
            "workers": len(workers),
            "uptime": round(time.time() - collector.started_at, 3),
            **collector.throughput.as_dict(),
        }

    def metrics(self) -> str:
        return render(self.collector.metrics,
                      (self.worker_dict(h) for h in self.hostnames()),
                      self.collector.queue_lengths)

    # -- task actions ---------------------------------------------------------------------
    def revoke(self, body: Mapping[str, Any], task_id: str) -> tuple[int, Any]:
        terminate = body.get("terminate", False)
        if not isinstance(terminate, bool):
            raise ApiError(400, '"terminate" must be true or false')
        signame = str(body.get("signal") or "SIGTERM").upper()
        if not signame.startswith("SIG"):
            signame = "SIG" + signame
        if not hasattr(signal.Signals, signame):
            raise ApiError(400, f"unknown signal {body.get('signal')!r}")
        self.app.control.revoke(task_id, terminate=terminate, signal=signame)
        return 202, {"ok": f"revoke of {task_id} sent", "task_id": task_id,
                     "terminate": terminate, "signal": signame}

    def retry(self, body: Mapping[str, Any], task_id: str) -> tuple[int, Any]:
        task = self._known_task(task_id)
        if task.state not in RETRYABLE:
            raise ApiError(409, f"task {task_id} is {task.state}: only a failed, revoked or "
                                f"rejected task can be retried")
        if not task.name:
            raise ApiError(409, f"the name of task {task_id} is not known (its "
                                f"task-received event was not seen)")
        args = _literal(task.args, (list, tuple), "args", task_id)
        kwargs = _literal(task.kwargs, (dict,), "kwargs", task_id)
        result = self.app.send_task(task.name, list(args), dict(kwargs))
        return 202, {"ok": f"{task.name} sent again", "task_id": result.id,
                     "retry_of": task_id}

    # -- worker actions -------------------------------------------------------------------
    def rate_limit(self, body: Mapping[str, Any], hostname: str) -> tuple[int, Any]:
        self._known_worker(hostname)
        task_name, rate = body.get("task"), body.get("rate")
        if not isinstance(task_name, str) or not task_name:
            raise ApiError(400, '"task" must be the name of a task')
        if rate is None or not isinstance(rate, (str, int, float)):
            raise ApiError(400, '"rate" must be like "10/s", "200/m", "100/h" or 0 (no limit)')
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        replies = self.app.control.rate_limit(task_name, rate, destination=[hostname],
                                              reply=True, timeout=self.reply_timeout)
        return self._reply_of(hostname, replies)

    def pool_grow(self, body: Mapping[str, Any], hostname: str) -> tuple[int, Any]:
        self._known_worker(hostname)
        replies = self.app.control.pool_grow(_count(body), destination=[hostname], reply=True,
                                             timeout=self.reply_timeout)
        return self._reply_of(hostname, replies)

    def pool_shrink(self, body: Mapping[str, Any], hostname: str) -> tuple[int, Any]:
        self._known_worker(hostname)
        replies = self.app.control.pool_shrink(_count(body), destination=[hostname],
                                               reply=True, timeout=self.reply_timeout)
        return self._reply_of(hostname, replies)

    def shutdown(self, body: Mapping[str, Any], hostname: str) -> tuple[int, Any]:
        self._known_worker(hostname)
        self.app.control.shutdown(destination=[hostname])
        return 202, {"ok": f"shutdown sent to {hostname}", "hostname": hostname}

    def _reply_of(self, hostname: str, replies: Any) -> tuple[int, Any]:
        for reply in replies or ():
            if hostname in reply:
                answer = reply[hostname]
                if isinstance(answer, Mapping) and "error" in answer:
                    raise ApiError(409, f"{hostname}: {answer['error']}")
                return 200, {"hostname": hostname, "reply": answer}
        raise ApiError(504, f"{hostname} did not reply within {self.reply_timeout:g} s")


def _int_param(query: Mapping[str, str], name: str, default: int, low: int,
               high: int | None) -> int:
    text = query.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(str(text))
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {bounds}, got {value}")
    return value


def _count(body: Mapping[str, Any]) -> int:
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ApiError(400, '"n" must be a positive integer')
    return n


def _matches(task: Any, needle: str) -> bool:
    return any(needle in str(value).lower()
               for value in (task.uuid, task.name, task.args, task.kwargs) if value)


def _summary(info: dict[str, Any]) -> dict[str, Any]:
    """A task for the table: everything but its events and traceback."""
    return {k: v for k, v in info.items() if k not in ("events", "traceback")}


def _brief(task_id: str, task: Any) -> dict[str, Any]:
    return {"uuid": task_id, "name": getattr(task, "name", None),
            "state": getattr(task, "state", None)}


def _literal(text: Any, kinds: tuple[type, ...], what: str, task_id: str) -> Any:
    """The value an argument repr from an event stands for, when it is a literal."""
    if isinstance(text, kinds):
        return text
    if text in (None, ""):
        return kinds[0]()
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ApiError(409, f"cannot retry {task_id}: its {what} {text!r} are not Python "
                            f"literals the monitor can send again") from None
    if not isinstance(value, kinds):
        raise ApiError(409, f"cannot retry {task_id}: its {what} {text!r} are not a "
                            f"{kinds[0].__name__}")
    return value
