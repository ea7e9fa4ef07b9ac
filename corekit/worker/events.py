"""The worker's events: worker-online / heartbeat / offline, and with ``-E``
(``worker_send_task_events``) the task-* events of every job.

Worker events are sent unless the worker runs without heartbeats, as
Celery does; task events only when asked for, at start or later through
the ``enable_events`` remote-control command.  A job listener turns jobs
into task events; it is on the consumer's listener list only while task
events are on, so they cost the task path nothing when off.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from corekit import states
from corekit.result_backend import revoked_reason
from corekit.bootsteps import Step
from corekit.events.dispatcher import SOFTWARE_INFO, EventDispatcher
from corekit.events.truncate import DEFAULT_MAX_FIELD_SIZE, truncate
from corekit.messages import saferepr
from corekit.worker.listeners import JobListener
from corekit.worker.steps import ConsumerStep

if TYPE_CHECKING:
    from corekit.messages import Message
    from corekit.worker import Worker
    from corekit.worker.consumer import Consumer
    from corekit.worker.job import Job

logger = logging.getLogger("corekit.worker")

#: How long stopping waits for queued events (worker-offline last) to be published.
CLOSE_TIMEOUT = 5.0


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not available on this platform
        return [0.0, 0.0, 0.0]


def exception_repr(encoded: Any) -> str:
    """``ValueError('no')`` from an exception in Celery's portable form."""
    if not isinstance(encoded, dict) or "exc_type" not in encoded:
        return saferepr(encoded)
    args = encoded.get("exc_message") or []
    if not isinstance(args, (list, tuple)):
        args = [args]
    return f"{encoded['exc_type']}({', '.join(saferepr(a) for a in args)})"


class TaskEvents(JobListener):
    """Sends a task event for each step of each job; args, kwargs, result,
    exception and traceback cut to *max_field_size* bytes (the
    ``event_max_field_size`` setting; the result backend keeps them whole)."""

    def __init__(self, dispatcher: EventDispatcher,
                 max_field_size: int = DEFAULT_MAX_FIELD_SIZE) -> None:
        self.dispatcher = dispatcher
        self.max_field_size = max_field_size

    def received(self, job: Job) -> None:
        h, raw, limit = job.headers, job.message.headers, self.max_field_size
        self.dispatcher.send(
            "task-received", uuid=h.id, name=h.task,
            args=truncate(str(raw.get("argsrepr") or saferepr(job.args)), limit),
            kwargs=truncate(str(raw.get("kwargsrepr") or saferepr(job.kwargs)), limit),
            root_id=h.root_id, parent_id=h.parent_id, retries=h.retries,
            eta=raw.get("eta"), expires=raw.get("expires"))

    def started(self, job: Job) -> None:
        self.dispatcher.send("task-started", uuid=job.id)

    def finished(self, job: Job) -> None:
        if not job.metas:  # Ignore, or replaced: no event, as Celery
            return
        meta = job.metas[-1]
        status, send, limit = meta["status"], self.dispatcher.send, self.max_field_size
        if status == states.SUCCESS:
            runtime = time.time() - job.started_at if job.started_at else 0.0
            send("task-succeeded", uuid=job.id, result=truncate(saferepr(meta["result"]), limit),
                 runtime=runtime)
        elif status in (states.FAILURE, states.RETRY):
            traceback = meta.get("traceback")
            send("task-failed" if status == states.FAILURE else "task-retried", uuid=job.id,
                 exception=truncate(exception_repr(meta["result"]), limit),
                 traceback=truncate(traceback, limit) if isinstance(traceback, str)
                 else traceback)
        elif status == states.REVOKED:
            reason = revoked_reason(meta)
            send("task-revoked", uuid=job.id, terminated=reason == "terminated",
                 signum=None, expired=reason == "expired")

    def rejected(self, message: Message, reason: str) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        self.dispatcher.send("task-rejected", uuid=headers.get("id"), requeue=False)


class EventsStep(Step):
    """Worker events from a heartbeat thread, and task events from a job
    listener while they are enabled.  ``dispatcher`` is the worker's
    `EventDispatcher` (remote control turns its task events on and off)."""

    requires = (ConsumerStep,)

    def create(self, worker: Worker) -> None:
        self.consumer: Consumer = worker.blueprint[ConsumerStep].consumer
        self.interval = worker.heartbeat_interval
        self.max_field_size = int(worker.app.conf.event_max_field_size or 0)
        groups = {"worker"} if self.interval else set()
        if worker.send_task_events:
            groups.add("task")
        self.dispatcher = EventDispatcher(worker.app, worker.hostname, enabled=bool(groups),
                                          groups=groups, heartbeat_fields=self.heartbeat_fields)
        self.dispatcher.on_enabled.append(self.follow_jobs)
        self.dispatcher.on_disabled.append(self.follow_jobs)
        self.listener: TaskEvents | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.beat, name="corekit-events-heartbeat",
                                       daemon=True)

    def heartbeat_fields(self) -> dict[str, Any]:
        return {"freq": self.interval or 0.0, "active": len(self.consumer.running),
                "processed": self.consumer.tracker.processed,
                "loadavg": load_average(), **SOFTWARE_INFO}

    def follow_jobs(self) -> None:
        """Put task events on the consumer's listeners while they are
        enabled, take them off when not.  The consumer's list is replaced
        whole (the consumer may be iterating over it on its own thread)."""
        with self._lock:
            wanted = self.dispatcher.enabled
            if wanted == (self.listener is not None):
                return
            if wanted:
                self.listener = TaskEvents(self.dispatcher, self.max_field_size)
                self.consumer.listeners = [*self.consumer.listeners, self.listener]
            else:
                self.consumer.listeners = [x for x in self.consumer.listeners
                                           if x is not self.listener]
                self.listener = None

    def start(self, worker: Worker) -> None:
        self.follow_jobs()
        if self.interval:
            self.dispatcher.send("worker-online", **self.heartbeat_fields())
            self.thread.start()

    def beat(self) -> None:
        assert self.interval
        while not self.stopping.wait(self.interval):
            self.dispatcher.heartbeat()

    def stop(self, worker: Worker) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join()
        self.dispatcher.send("worker-offline", **self.heartbeat_fields())
        self.dispatcher.close(CLOSE_TIMEOUT)
