"""``/metrics``: the cluster in Prometheus' text exposition format (0.0.4).

`TaskMetrics` counts what the events say (tasks by name and state, task
runtimes, events by type); `render` adds what is true now (workers online,
their processed and active counts, queue lengths).
"""
from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any, Iterable, Mapping

#: The content type Prometheus expects for the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the task runtime histogram's buckets.
RUNTIME_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 300.0)

#: The task state each task event moves a task to.
EVENT_STATES = {"task-sent": "PENDING", "task-received": "RECEIVED", "task-started": "STARTED",
                "task-succeeded": "SUCCESS", "task-failed": "FAILURE", "task-retried": "RETRY",
                "task-revoked": "REVOKED", "task-rejected": "REJECTED"}


class Histogram:
    """One runtime histogram: cumulative bucket counts, sum and count."""

    __slots__ = ("buckets", "total", "count")

    def __init__(self) -> None:
        self.buckets = [0] * len(RUNTIME_BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(RUNTIME_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
        self.total += value
        self.count += 1


class TaskMetrics:
    """Counters fed by every event the monitor receives (thread-safe)."""

    def __init__(self) -> None:
        self.events: Counter[str] = Counter()
        self.tasks: Counter[tuple[str, str]] = Counter()
        self.runtimes: dict[str, Histogram] = {}
        self._lock = threading.Lock()

    def event(self, event: Mapping[str, Any], task_name: str | None) -> None:
        """Count *event*; *task_name* is the task's name as the cluster state
        knows it (only task-received and task-sent carry it)."""
        kind = str(event.get("type", ""))
        with self._lock:
            self.events[kind] += 1
            state = EVENT_STATES.get(kind)
            if state is None:
                return
            name = task_name or "unknown"
            self.tasks[name, state] += 1
            runtime = event.get("runtime")
            if kind == "task-succeeded" and isinstance(runtime, (int, float)):
                self.runtimes.setdefault(name, Histogram()).observe(float(runtime))

    def lines(self) -> list[str]:
        with self._lock:
            events = sorted(self.events.items())
            tasks = sorted(self.tasks.items())
            runtimes = sorted((n, list(h.buckets), h.total, h.count)
                              for n, h in self.runtimes.items())
        out = _family("corekit_events_received_total", "counter",
                      "Events the monitor received, by type.",
                      (({"type": t}, n) for t, n in events))
        out += _family("corekit_tasks_total", "counter",
                       "Task events seen, by task name and the state they moved it to.",
                       (({"name": name, "state": state}, n) for (name, state), n in tasks))
        out += ["# HELP corekit_task_runtime_seconds Runtime of succeeded tasks, by name.",
                "# TYPE corekit_task_runtime_seconds histogram"]
        for name, buckets, total, count in runtimes:
            for bound, n in zip(RUNTIME_BUCKETS, buckets):
                out.append(_sample("corekit_task_runtime_seconds_bucket",
                                   {"name": name, "le": _number(bound)}, n))
            out.append(_sample("corekit_task_runtime_seconds_bucket",
                               {"name": name, "le": "+Inf"}, count))
            out.append(_sample("corekit_task_runtime_seconds_sum", {"name": name}, total))
            out.append(_sample("corekit_task_runtime_seconds_count", {"name": name}, count))
        return out


def render(metrics: TaskMetrics, workers: Iterable[Mapping[str, Any]],
           queue_lengths: Mapping[str, int | None]) -> str:
    """The whole exposition: *workers* are the API's worker dicts."""
    workers = list(workers)
    out = _family("corekit_workers_online", "gauge", "Workers online now.",
                  [({}, sum(1 for w in workers if w.get("online")))])
    out += _family("corekit_worker_online", "gauge", "1 when the worker is online.",
                   (({"hostname": w["hostname"]}, int(bool(w.get("online")))) for w in workers))
    out += _family("corekit_worker_processed_total", "counter",
                   "Tasks the worker has processed since it started (its own count).",
                   (({"hostname": w["hostname"]}, w.get("processed") or 0) for w in workers))
    out += _family("corekit_worker_active_tasks", "gauge", "Tasks the worker is running now.",
                   (({"hostname": w["hostname"]}, w.get("active") or 0) for w in workers))
    out += _family("corekit_worker_load1", "gauge", "The worker host's 1-minute load average.",
                   (({"hostname": w["hostname"]}, w["loadavg"][0]) for w in workers
                    if w.get("loadavg")))
    out += _family("corekit_queue_length", "gauge", "Messages waiting in the broker queue.",
                   (({"queue": q}, n) for q, n in sorted(queue_lengths.items())
                    if n is not None))
    out += metrics.lines()
    return "\n".join(out) + "\n"


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[Mapping[str, str], float]]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
            *(_sample(name, labels, value) for labels, value in samples)]


def _sample(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
    return f"{name}{{{text}}} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        return repr(value)
    return str(int(value))
