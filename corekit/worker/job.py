"""One received task call, ready to run in a pool.

A `Job` lives in the worker process.  What runs the task is `execute`, on
a `TaskCall`: plain, picklable data, so that a pool may run it in this
process (calling the job) or in another one (sending ``job.call()`` there,
running `execute` on it, and handing the metas back to ``job.finish``).
"""
from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from traceback import format_exc
from typing import TYPE_CHECKING, Any, Callable

from corekit import signals, states
from corekit.result_backend import ResultBackend, revoked_meta
from corekit.request import Request
from corekit.trace import Outcome, atrace, trace

if TYPE_CHECKING:
    from corekit.task import Task
    from corekit.worker.result_writer import ResultWriter
    from corekit.messages import Message

logger = logging.getLogger("corekit.worker")


class TaskOptions:
    """A task's options resolved against the app's settings, once per task
    type rather than once per message."""

    __slots__ = ("acks_late", "acks_on_failure_or_timeout", "track_started", "ignore_result",
                 "result_extended")

    def __init__(self, task: Task[Any, Any]) -> None:
        self.acks_late = bool(task.option("acks_late", "task_acks_late"))
        self.acks_on_failure_or_timeout = bool(task.option(
            "acks_on_failure_or_timeout", "task_acks_on_failure_or_timeout"))
        self.track_started = bool(task.option("track_started", "task_track_started"))
        self.ignore_result = bool(task.option("ignore_result", "task_ignore_result"))
        self.result_extended = bool(task.option("result_extended", "result_extended"))


@dataclass(slots=True)
class TaskCall:
    """Everything needed to run one task call, anywhere the app is loaded."""

    task: str
    id: str
    args: list[Any]
    kwargs: dict[str, Any]
    request: dict[str, Any]
    hostname: str
    store_results: bool = True
    track_started: bool = False
    #: rpc:// results go to the caller: every meta carries its reply_to
    reply_to: str | None = None
    keep_reply_to: bool = False
    time_limit: float | None = None
    soft_time_limit: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``result_extended``: what every meta of this call adds (name, args...)
    extended: dict[str, Any] | None = None


def execute(call: TaskCall, task: Task[Any, Any],
            started: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """Run *call* with *task*; return the metas to store (none with
    ignore_result).  *started* gets the STARTED meta when the task tracks it,
    before the task runs.  Whether the call may still run (revoked,
    expired) was decided by the consumer just before the pool got it
    (`Consumer.stop_reason`)."""
    _report_started(call, started)
    began = time.perf_counter()
    outcome = trace(task, Request(**call.request), call.args, call.kwargs)
    return _after(call, task, outcome, time.perf_counter() - began)


async def aexecute(call: TaskCall, task: Task[Any, Any],
                   started: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    """`execute` on the running event loop: an ``async def`` task is awaited."""
    _report_started(call, started)
    began = time.perf_counter()
    outcome = await atrace(task, Request(**call.request), call.args, call.kwargs)
    return _after(call, task, outcome, time.perf_counter() - began)


def _report_started(call: TaskCall, started: Callable[[list[dict[str, Any]]], None]) -> None:
    if call.track_started and call.store_results:
        started(_keep(call, ResultBackend.make_meta(call.id, None, states.STARTED,
                                                    hostname=call.hostname)))


def _after(call: TaskCall, task: Task[Any, Any], outcome: Outcome, runtime: float
           ) -> list[dict[str, Any]]:
    children = [child.as_tuple() for child in outcome.children] or None
    if outcome.state == states.SUCCESS:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("Task %s[%s] succeeded in %.6fs: %r", call.task, call.id, runtime,
                         outcome.retval, extra=_fields(call))
        return _keep(call, ResultBackend.make_meta(call.id, outcome.retval, states.SUCCESS,
                                                   children=children))
    if outcome.state == states.IGNORED:
        logger.info("Task %s[%s] ignored (replaced, or raised Ignore)", call.task, call.id,
                    extra=_fields(call))
        return []
    if outcome.state == states.RETRY:
        logger.info("Task %s[%s] retry: %s", call.task, call.id, outcome.retry,
                    extra=_fields(call))
    elif task.throws and isinstance(outcome.exc, task.throws):  # expected: no traceback
        logger.info("Task %s[%s] raised expected: %r", call.task, call.id, outcome.exc,
                    extra=_fields(call))
    else:
        logger.error("Task %s[%s] raised unexpected: %r\n%s", call.task, call.id, outcome.exc,
                     outcome.traceback, extra=_fields(call))
    return _keep(call, ResultBackend.make_meta(call.id, outcome.exc, outcome.state,
                                               outcome.traceback, children=children))


def _fields(call: TaskCall) -> dict[str, Any]:
    """What a record about *call* carries (the JSON log format shows them)."""
    return {"task_id": call.id, "task_name": call.task}


@dataclass(slots=True)
class FailedMessage:
    """Handed back instead of a late-acked message whose task failed, when
    it must not be acked (``acks_on_failure_or_timeout=False``): the
    consumer moves it to the dead-letter queue, saying why."""

    message: Message
    reason: str


def failed_message(message: Message, metas: list[dict[str, Any]]) -> FailedMessage | None:
    """*message* to dead-letter when *metas* report FAILURE, else None."""
    for meta in metas:
        if meta["status"] == states.FAILURE:
            return FailedMessage(message, f"task failed: {describe_failure(meta['result'])}")
    return None


def describe_failure(result: Any) -> str:
    """``Type: message`` of an encoded exception: its one argument, or the
    tuple of them."""
    if not isinstance(result, dict):
        return repr(result)
    args = result.get("exc_message") or []
    text = "" if not args else str(args[0]) if len(args) == 1 else str(tuple(args))
    return f"{result.get('exc_type')}: {text}"


def _keep(call: TaskCall, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """*meta* as the list `execute` returns: reported whether or not it is
    stored (`Job.finish` drops it with ``ignore_result``; the worker's
    listeners, events among them, still see how the call ended)."""
    if call.keep_reply_to:
        meta["reply_to"] = call.reply_to
    if call.extended:
        meta.update(call.extended)
    return [meta]


class Job:
    """A task call decoded from a message, in the worker process: calling
    it runs the task here; `finish` reports an outcome reached anywhere."""

    __slots__ = ("headers", "task", "args", "kwargs", "embed", "message", "acks_late",
                 "acks_on_failure_or_timeout",
                 "hostname", "results", "on_done", "on_requeue", "store_results",
                 "track_started", "started_at", "metas", "result_extended")

    def __init__(self, headers: Any, task: Task[Any, Any], options: TaskOptions, body: Any,
                 hostname: str, results: ResultWriter,
                 on_done: Callable[[Job, Any], None],
                 on_requeue: Callable[[Job], None] | None = None) -> None:
        self.headers = headers
        self.task = task
        self.args, self.kwargs, self.embed = body
        self.message: Message = headers.message
        self.acks_late = options.acks_late
        self.acks_on_failure_or_timeout = options.acks_on_failure_or_timeout
        self.track_started = options.track_started
        self.result_extended = options.result_extended
        # a chord's header task stores its state whatever it says: the join reads it
        self.store_results = not (headers.ignore_result or options.ignore_result) or bool(
            self.embed and self.embed.get("chord"))
        self.hostname = hostname
        self.results = results
        self.on_done = on_done
        self.on_requeue = on_requeue
        #: when the pool got it (time.time()), and how it ended: set by the
        #: consumer and by `finish`, for the worker's listeners
        self.started_at: float | None = None
        self.metas: list[dict[str, Any]] = []

    @property
    def id(self) -> str:
        return self.headers.id

    def __repr__(self) -> str:
        return f"<Job {self.headers.task}[{self.headers.id}]>"

    def request_fields(self) -> dict[str, Any]:
        """``self.request`` of the running task, as plain data."""
        h, msg = self.headers, self.message
        raw = msg.headers
        embed = self.embed if isinstance(self.embed, dict) else {}
        return dict(
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

    def request(self) -> Request:
        return Request(**self.request_fields())

    def call(self) -> TaskCall:
        """This job as plain data, for `execute` in this process or another."""
        h = self.headers
        return TaskCall(task=h.task, id=h.id, args=self.args, kwargs=self.kwargs,
                        request=self.request_fields(), hostname=self.hostname,
                        store_results=self.store_results,
                        track_started=self.track_started,
                        reply_to=self.message.properties.get("reply_to"),
                        keep_reply_to=self.results.backend.needs_reply_to,
                        time_limit=h.time_limit, soft_time_limit=h.soft_time_limit,
                        extended=self.extended() if self.result_extended else None)

    def extended(self) -> dict[str, Any]:
        """What ``result_extended`` adds to each meta, under Celery's keys
        (``date_started``, django-celery-results' name: when the pool got
        the job, ISO 8601 UTC)."""
        h = self.headers
        started = (datetime.fromtimestamp(self.started_at, timezone.utc).isoformat()
                   if self.started_at is not None else None)
        return {"name": h.task, "args": self.args, "kwargs": self.kwargs,
                "worker": self.hostname, "retries": h.retries, "queue": self.message.queue,
                "date_started": started}

    def __call__(self) -> None:
        """Run here, then `finish`."""
        try:
            metas = execute(self.call(), self.task, self.started)
        except Exception as exc:  # a corekit bug: stored as the task's FAILURE, not retried
            logger.exception("internal error running %r", self)
            metas = self.failure_metas(exc, format_exc())
        self.finish(metas)

    def started(self, metas: list[dict[str, Any]]) -> None:
        """The task began (STARTED, written at once so callers see it)."""
        self.results.submit(metas)

    def finish(self, metas: list[dict[str, Any]]) -> None:
        """Free the pool slot and leave the outcome to the result writer; a
        late ack waits for the outcome to be stored (a FAILURE without
        ``acks_on_failure_or_timeout`` is dead-lettered instead)."""
        self.metas = metas
        if not self.store_results:
            metas = []
        late_ack: Message | FailedMessage | None = self.message if self.acks_late else None
        if metas:
            if late_ack is not None and not self.acks_on_failure_or_timeout:
                late_ack = failed_message(self.message, metas) or late_ack
            metas, then = self._workflow_followups(metas)
            self.results.submit(metas, late_ack, then)
            self.on_done(self, None)
        else:
            self.on_done(self, late_ack)

    def _workflow_followups(self, metas: list[dict[str, Any]]
                            ) -> tuple[list[dict[str, Any]], Callable[[], None] | None]:
        """The metas to store, and what to do once they are stored: a
        chord's header task that ended counts toward the join; a task that
        failed with more chain after it fails the rest of the chain too (so
        waiting on the chain's result does not hang), and the chord parts
        that chain owed are counted."""
        embed = self.embed
        if not isinstance(embed, dict) or not (embed.get("chord") or embed.get("chain")):
            return metas, None  # a plain task: nothing more per message
        final = metas[-1]
        if final["status"] not in states.READY_STATES:
            return metas, None
        from corekit.workflow import chain_failure, on_chord_parts

        parts = []
        if embed.get("chord") and self.headers.group:
            parts.append((self.headers.group, embed["chord"]))
        if embed.get("chain") and final["status"] != states.SUCCESS:
            more, owed = chain_failure(final, embed["chain"], self.task.app)
            metas = metas + more
            parts.extend(owed)
        if not parts:
            return metas, None
        return metas, functools.partial(on_chord_parts, self.task.app, self.results.backend,
                                        parts)

    def failure_metas(self, exc: BaseException, traceback: str | None = None
                      ) -> list[dict[str, Any]]:
        """The metas of a FAILURE the task's own code did not reach (built
        without `call`, which may be what failed)."""
        meta = ResultBackend.make_meta(self.id, exc, states.FAILURE, traceback)
        if self.results.backend.needs_reply_to:
            meta["reply_to"] = self.message.properties.get("reply_to")
        return [meta]

    def fail(self, exc: BaseException, traceback: str | None = None) -> None:
        """`finish` with FAILURE for an end the task's own code did not reach
        (its process died, a hard time limit killed it); its errbacks run
        here."""
        self.finish(self.failure_metas(exc, traceback))
        if isinstance(self.embed, dict) and self.embed.get("errbacks"):
            from corekit.workflow import call_errbacks

            try:
                call_errbacks(self.task.app, self.request(), exc, traceback)
            except Exception:
                logger.exception("errbacks of %r failed", self)

    def revoke(self, reason: str, terminated: bool = False, signum: int | None = None) -> None:
        """`finish` as REVOKED (*reason*: ``revoked``, ``expired``,
        ``terminated``) without running, or after being killed."""
        if signals.task_revoked.receivers:
            signals.task_revoked.send(self.task, request=self.request(), terminated=terminated,
                                      signum=signum, expired=reason == "expired")
        self.finish(_keep(self.call(), revoked_meta(self.id, reason)))

    def requeue(self) -> None:
        """Free the pool slot and hand the message back to the broker to run
        again, storing no result (``reject_on_worker_lost``).  The consumer
        rejects it from its own thread."""
        if self.on_requeue is None:
            raise RuntimeError(f"{self!r} cannot be requeued: its consumer gave no on_requeue")
        self.on_requeue(self)
