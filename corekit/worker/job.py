"""One received task call, ready to run in a pool."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from corekit import states
from corekit.backend import ResultBackend
from corekit.request import Request
from corekit.trace import trace

if TYPE_CHECKING:
    from corekit.task import Task
    from corekit.worker.results import ResultWriter
    from corekit.transport import Message

logger = logging.getLogger("corekit.worker")


class TaskOptions:
    """A task's options resolved against the app's settings, once per task
    type rather than once per message."""

    __slots__ = ("acks_late", "track_started", "ignore_result")

    def __init__(self, task: Task[Any, Any]) -> None:
        self.acks_late = bool(task.option("acks_late", "task_acks_late"))
        self.track_started = bool(task.option("track_started", "task_track_started"))
        self.ignore_result = bool(task.option("ignore_result", "task_ignore_result"))


class Job:
    """A task call decoded from a message: calling it runs the task, stores
    its state and reports back through *on_done* (never raises)."""

    __slots__ = ("headers", "task", "args", "kwargs", "embed", "message", "acks_late",
                 "hostname", "results", "on_done", "store_results", "track_started")

    def __init__(self, headers: Any, task: Task[Any, Any], options: TaskOptions, body: Any,
                 hostname: str, results: ResultWriter,
                 on_done: Callable[[Job, Any], None]) -> None:
        self.headers = headers
        self.task = task
        self.args, self.kwargs, self.embed = body
        self.message: Message = headers.message
        self.acks_late = options.acks_late
        self.track_started = options.track_started
        self.store_results = not (headers.ignore_result or options.ignore_result)
        self.hostname = hostname
        self.results = results
        self.on_done = on_done

    @property
    def id(self) -> str:
        return self.headers.id

    def __repr__(self) -> str:
        return f"<Job {self.headers.task}[{self.headers.id}]>"

    def request(self) -> Request:
        h, msg = self.headers, self.message
        raw = msg.headers
        embed = self.embed if isinstance(self.embed, dict) else {}
        return Request(
            id=h.id, task=h.task, args=self.args, kwargs=self.kwargs, retries=h.retries,
            eta=raw.get("eta"), expires=raw.get("expires"), is_eager=False,
            called_directly=False, root_id=h.root_id, parent_id=h.parent_id, group=h.group,
            group_index=raw.get("group_index"), hostname=self.hostname,
            delivery_info={"queue": msg.queue, "exchange": msg.exchange,
                           "routing_key": msg.routing_key, "redelivered": msg.redelivered,
                           "priority": msg.priority},
            reply_to=msg.properties.get("reply_to"), correlation_id=h.id,
            origin=raw.get("origin"), timelimit=[h.time_limit, h.soft_time_limit],
            ignore_result=h.ignore_result, headers=raw, callbacks=embed.get("callbacks"),
            errbacks=embed.get("errbacks"), chain=embed.get("chain"), chord=embed.get("chord"),
            redelivered=msg.redelivered)

    def __call__(self) -> None:
        """Run, free the pool slot, and leave the outcome to the result
        writer; a late ack waits for the outcome to be stored."""
        try:
            metas = self.run()
        except Exception:  # a corekit bug: the message is still acked, not retried forever
            logger.exception("internal error running %r", self)
            metas = []
        late_ack = self.message if self.acks_late else None
        if metas:
            self.results.submit(metas, late_ack)
            self.on_done(self, None)
        else:
            self.on_done(self, late_ack)

    def run(self) -> list[dict[str, Any]]:
        """Run the task; return the metas to store (none with ignore_result)."""
        h = self.headers
        if h.expires is not None and h.expires < time.time():
            logger.info("Task %s[%s] expired before it started: revoked", h.task, h.id)
            return self.keep(ResultBackend.make_meta(h.id, "expired", states.REVOKED))
        if self.track_started and self.store_results:
            # written at once, so callers see STARTED while the task runs
            self.results.submit(self.keep(ResultBackend.make_meta(
                h.id, None, states.STARTED, hostname=self.hostname)))
        started = time.perf_counter()
        outcome = trace(self.task, self.request(), self.args, self.kwargs)
        runtime = time.perf_counter() - started
        if outcome.state == states.SUCCESS:
            logger.debug("Task %s[%s] succeeded in %.6fs: %r", h.task, h.id, runtime,
                         outcome.retval)
            return self.keep(ResultBackend.make_meta(h.id, outcome.retval, states.SUCCESS))
        if outcome.state == states.RETRY:
            logger.info("Task %s[%s] retry: %s", h.task, h.id, outcome.retry)
        else:
            logger.error("Task %s[%s] raised unexpected: %r\n%s", h.task, h.id, outcome.exc,
                         outcome.traceback)
        return self.keep(ResultBackend.make_meta(h.id, outcome.exc, outcome.state,
                                                 outcome.traceback))

    def keep(self, meta: dict[str, Any]) -> list[dict[str, Any]]:
        if not self.store_results:
            return []
        if self.results.backend.needs_reply_to:  # rpc://: the result goes to the caller
            meta["reply_to"] = self.message.properties.get("reply_to")
        return [meta]

