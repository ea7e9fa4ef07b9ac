"""The spans: `corekit.signals` receivers shaped after OpenTelemetry's
Celery instrumentation (``opentelemetry-instrumentation-celery``).

* Publishing: a PRODUCER span ``apply_async/<task name>`` from
  ``before_task_publish`` to ``after_task_publish`` (or to the publish's
  failure, `publish_failed`).  The trace context goes into the message's
  protocol-v2 headers through the global propagator (``traceparent``,
  ``tracestate``, ``baggage`` by default), where Celery's instrumentation
  puts it and where a Celery worker's ``task.request`` finds it.
* Running: a CONSUMER span ``run/<task name>`` from ``task_prerun`` to
  ``task_postrun``, its parent read from the message headers, current
  while the task runs (a context variable: right in threads, green threads,
  asyncio tasks and prefork children), so what the task publishes belongs
  to the same trace.  It ends with ``celery.state``; a failure is recorded
  as an exception event with the ERROR status (not for the task's
  ``throws``).

Header values come from the broker: anything but a bounded string is
ignored, and a context that cannot be read starts a new trace.
"""
from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import Any, Mapping, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, get_global_textmap, inject
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from corekit.request import Request, current_request

logger = logging.getLogger("corekit.plugins.opentelemetry")

tracer = trace.get_tracer("corekit.plugins.opentelemetry")

#: Attribute names of the Celery instrumentation (its semantic conventions).
MESSAGE_ID = "messaging.message.id"
CONVERSATION_ID = "messaging.conversation_id"
DESTINATION = "messaging.destination"
DESTINATION_KIND = "messaging.destination_kind"
#: A header value longer than this is not a trace context (W3C's are < 600 chars).
MAX_HEADER = 8192
#: Publish spans waiting for their ``after_task_publish``; past this many
#: (publishes that failed where no one said so), the oldest are ended.
MAX_PENDING = 10_000

_pending: dict[int, tuple[dict[str, Any], Span]] = {}
#: The runs in this context, innermost last: ``(task id, span, context token)``.
_runs: ContextVar[tuple[tuple[Any, Span, Token[otel_context.Context]], ...]] = ContextVar(
    "corekit_otel_runs", default=())


class HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads a propagator's fields from message headers: strings only."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if isinstance(value, str) and len(value) <= MAX_HEADER:
            return [value]
        return None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [key for key in carrier if isinstance(key, str)]


getter = HeaderGetter()


def tracing() -> bool:
    """Whether this process has an SDK (a tracer provider of its own).
    Without one, OpenTelemetry's default provider would make every span a
    no-op, at a cost (11 µs more per ``delay()``, a third of it, measured):
    such a process connects no span receiver, records nothing and forwards
    no trace context."""
    return not isinstance(trace.get_tracer_provider(), _NO_SDK)


_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
#: signal -> receiver, below
SPAN_RECEIVERS = ("before_task_publish", "after_task_publish", "task_prerun",
                  "task_failure", "task_retry", "task_postrun")
_connected = [False]


def receivers() -> dict[str, Any]:
    """``corekit_register_signal_receivers`` (once per process, at its first
    task sent or run, or a worker's setup): the span receivers when this
    process has an SDK by then, and `process_started` in any case."""
    found: dict[str, Any] = {"worker_process_init": process_started}
    if tracing() and not _connected[0]:  # once, whichever way comes first
        found.update((name, globals()[name]) for name in SPAN_RECEIVERS)
        _connected[0] = True
    return found


def process_started(**_: Any) -> None:
    """``worker_process_init``: a prefork child that set its SDK up in its own
    ``worker_process_init`` receiver (where OpenTelemetry's docs put it:
    the export thread of a parent does not survive a fork) traces from now."""
    connect()


def connect() -> bool:
    """Connect the span receivers now, if this process has an SDK and they
    are not connected yet: for a program that sets its SDK up after its
    first task.  Whether they are connected."""
    from corekit import signals

    if not _connected[0] and tracing():
        for name in SPAN_RECEIVERS:
            getattr(signals, name).connect(globals()[name], weak=False)
        _connected[0] = True
    return _connected[0]


# -- publishing ----------------------------------------------------------------------
def before_task_publish(sender: Any = None, headers: Any = None, exchange: Any = None,
                        routing_key: Any = None, declare: Any = None, **_: Any) -> None:
    if not isinstance(headers, dict):
        return
    name = sender if isinstance(sender, str) else headers.get("task")
    queue = declare[0] if isinstance(declare, list) and declare else None
    span = tracer.start_span(f"apply_async/{name}", kind=SpanKind.PRODUCER,
                             attributes=publish_attributes(name, headers, exchange,
                                                           routing_key, queue))
    for field in _fields():  # a retry's copy of its parent's context
        headers.pop(field, None)
    inject(headers, context=trace.set_span_in_context(span))
    if len(_pending) >= MAX_PENDING:
        _end_oldest()
    _pending[id(headers)] = (headers, span)


_textmap: list[Any] = [None, ()]


def _fields() -> Any:
    """The global propagator's header names (asked again when it changes)."""
    textmap = get_global_textmap()
    if textmap is not _textmap[0]:
        _textmap[:] = [textmap, tuple(textmap.fields)]
    return _textmap[1]


def after_task_publish(headers: Any = None, **_: Any) -> None:
    entry = _pending.pop(id(headers), None)
    if entry is not None:
        entry[1].end()


def publish_failed(messages: Sequence[Any], exc: BaseException) -> None:
    """``corekit_publish_failed``: the spans of a batch that was not published."""
    for message in messages:
        entry = _pending.pop(id(message.headers), None)
        if entry is not None:
            _fail(entry[1], exc)
            entry[1].end()


def _end_oldest() -> None:
    try:
        _, span = _pending.pop(next(iter(_pending)))
    except (StopIteration, KeyError, RuntimeError):  # emptied by another thread
        return
    span.set_status(Status(StatusCode.ERROR, "the publish did not report its end"))
    span.end()


def publish_attributes(name: Any, headers: Mapping[str, Any], exchange: Any,
                       routing_key: Any, queue: Any) -> dict[str, Any]:
    attributes = {"celery.action": "apply_async", MESSAGE_ID: str(headers.get("id")),
                  "celery.task_name": str(name)}
    if not exchange or exchange == queue:
        # a queue's own exchange: Celery sends such a message to the default
        # exchange, and its instrumentation says "queue"
        attributes[DESTINATION_KIND] = "queue"
    else:
        attributes["celery.exchange"] = str(exchange)
    if routing_key:
        attributes[DESTINATION] = str(routing_key)
    return attributes


# -- running -------------------------------------------------------------------------
def task_prerun(sender: Any = None, task_id: Any = None, task: Any = None,
                **_: Any) -> None:
    request = current_request()
    parent = None
    if request is not None and not request.is_eager:
        parent = _parent_context(request.headers) or None
    span = tracer.start_span(f"run/{getattr(task, 'name', sender)}", context=parent,
                             kind=SpanKind.CONSUMER)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    _runs.set(_runs.get() + ((task_id, span, token),))


def _parent_context(headers: Any) -> otel_context.Context | None:
    if not isinstance(headers, Mapping):
        return None
    try:
        return extract(headers, getter=getter)
    except Exception as exc:  # a propagator that chokes on what a producer sent
        logger.debug("trace context of a message ignored: %r", exc)
        return None


def _current_run(task_id: Any) -> Span | None:
    runs = _runs.get()
    if runs and runs[-1][0] == task_id:
        return runs[-1][1]
    return None


def task_failure(sender: Any = None, task_id: Any = None, exception: Any = None,
                 **_: Any) -> None:
    span = _current_run(task_id)
    if span is None or not span.is_recording():
        return
    throws = getattr(sender, "throws", ())
    if throws and isinstance(exception, tuple(throws)):
        return  # expected: the task says so, as for its logging
    _fail(span, exception)


def _fail(span: Span, exc: Any) -> None:
    if isinstance(exc, BaseException):
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, str(exc)))


def task_retry(sender: Any = None, request: Any = None, reason: Any = None,
               **_: Any) -> None:
    span = _current_run(getattr(request, "id", None))
    if span is not None and reason is not None:
        span.set_attribute("celery.retry.reason", str(reason))


def task_postrun(sender: Any = None, task_id: Any = None, task: Any = None,
                 state: Any = None, **_: Any) -> None:
    runs = _runs.get()
    if not runs or runs[-1][0] != task_id:
        return
    _runs.set(runs[:-1])
    _, span, token = runs[-1]
    if span.is_recording():
        span.set_attributes(run_attributes(getattr(task, "name", sender), state,
                                           current_request()))
    span.end()
    otel_context.detach(token)


def run_attributes(name: Any, state: Any, request: Request | None) -> dict[str, Any]:
    """What the Celery instrumentation reads from the signal and from
    Celery's ``task.request``, read from corekit's request."""
    attributes: dict[str, Any] = {"celery.action": "run"}
    if state:
        attributes["celery.state"] = str(state)
    if request is not None:
        headers = request.headers if isinstance(request.headers, Mapping) else {}
        _put(attributes, "celery.compression", headers.get("compression"))
        _put(attributes, CONVERSATION_ID, request.correlation_id)
        info = request.delivery_info
        if info:
            _put(attributes, DESTINATION, info.get("routing_key"))
            attributes["celery.delivery_info"] = str(info)
        _put(attributes, "celery.eta", request.eta)
        _put(attributes, "celery.expires", request.expires)
        _put(attributes, MESSAGE_ID, request.id)
        _put(attributes, "celery.reply_to", request.reply_to)
        if request.retries:
            _put(attributes, "celery.retries", request.retries)
        _put_timelimit(attributes, headers.get("timelimit", request.timelimit))  # as sent
        # Celery's instrumentation names the sender's origin celery.hostname when known
        _put(attributes, "celery.hostname", request.origin or request.hostname)
    attributes["celery.task_name"] = str(name)
    return attributes


def _put(attributes: dict[str, Any], key: str, value: Any) -> None:
    if value is None or value == "":
        return
    attributes[key] = value if isinstance(value, (str, bool, int, float)) else str(value)


def _put_timelimit(attributes: dict[str, Any], limits: Any) -> None:
    if not isinstance(limits, (list, tuple)) or all(limit is None for limit in limits):
        return
    if all(type(limit) is int for limit in limits) or all(
            type(limit) is float for limit in limits):
        attributes["celery.timelimit"] = list(limits)
    else:  # a None (or a mix OpenTelemetry refuses): strings, as Celery's instrumentation
        attributes["celery.timelimit"] = ["" if limit is None else str(limit)
                                          for limit in limits]
