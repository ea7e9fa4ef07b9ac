"""Sending events, in Celery's shape, on the ``celeryev`` broadcast exchange.

An event is a flat JSON dict: ``type`` (``task-succeeded``, ``worker-heartbeat``...),
``hostname``, ``timestamp`` (epoch seconds), ``utcoffset`` (hours, Celery's
sign), ``pid``, ``clock`` (a Lamport clock), then the fields of its type.  Each
travels as one broadcast message whose routing key is its type with ``-``
replaced by ``.`` (``task.succeeded``), so a topic subscription can pick a group.

`EventDispatcher.send` only queues the event: a sender thread publishes what
is queued in batches (one `Transport.publish_broadcast` call each) on a
transport of the dispatcher's own, so a task never waits for the broker.
While the broker is away the queue keeps at most ``buffer_limit`` events,
dropping the oldest.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import socket
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from corekit import __version__
from corekit.messages import Message
from corekit.transport import mask_url

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.transport import Transport

logger = logging.getLogger("corekit.events")

#: The topic exchange events travel on (Celery's name).
EVENT_EXCHANGE = "celeryev"
#: What a worker says it runs, in its worker-* events.
SOFTWARE_INFO = {"sw_ident": "corekit", "sw_ver": __version__, "sw_sys": platform.system()}
#: Events kept while the broker is away; older ones are dropped beyond this.
BUFFER_LIMIT = 10_000
#: The most events one publish carries.
MAX_BATCH = 500
MAX_RETRY_DELAY = 5.0
#: Seconds the sender waits after the first event before publishing.
LINGER = 0.005


class LamportClock:
    """A logical clock (kombu's): `forward` before sending, `adjust` on
    receiving, so events of many hosts can be put in causal order."""

    def __init__(self, value: int = 0) -> None:
        self.value = value
        self._lock = threading.Lock()

    def forward(self) -> int:
        with self._lock:
            self.value += 1
            return self.value

    def adjust(self, other: int) -> int:
        with self._lock:
            self.value = max(self.value, int(other)) + 1
            return self.value


def utcoffset() -> int:
    """Hours to add to local time to get UTC, as Celery computes it."""
    return (time.altzone if time.localtime().tm_isdst else time.timezone) // 3600


#: JSON for an event (one encoder for all: ``json.dumps(default=...)`` makes one a call)
_encode = json.JSONEncoder(default=str).encode


def routing_key(event_type: str) -> str:
    return event_type.replace("-", ".")


def to_message(event: Mapping[str, Any]) -> Message:
    """*event* as a broadcast message for the ``celeryev`` exchange."""
    return Message(body=_encode(event).encode(),
                   headers={"hostname": event.get("hostname")}, properties={},
                   content_type="application/json", content_encoding="utf-8",
                   exchange=EVENT_EXCHANGE, routing_key=routing_key(str(event["type"])))


def client_hostname() -> str:
    """The name a client (not a worker) sends events under, Celery's ``gen<pid>@host``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


class EventDispatcher:
    """Sends events for *hostname* through *app*'s broker.

    *groups* are the event groups (the part of the type before ``-``:
    ``task``, ``worker``...) sent, None for all.  A worker without ``-E``
    sends only the ``worker`` group.  With *enabled* False nothing is sent
    until `enable`.  ``enabled`` says whether task events are sent, which
    is what the ``enable_events`` / ``disable_events`` remote-control
    commands turn on and off.
    """

    def __init__(self, app: Corekit, hostname: str | None = None, enabled: bool = True,
                 groups: Iterable[str] | None = None, buffer_limit: int = BUFFER_LIMIT,
                 heartbeat_fields: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.app = app
        self.hostname = hostname or client_hostname()
        self.groups: set[str] | None = None if groups is None else set(groups)
        #: False: `send` returns at once (one attribute check)
        self.sending = bool(enabled)
        self.clock = LamportClock()
        self.pid = os.getpid()
        self.utcoffset = utcoffset()  # asked again at each heartbeat, for DST changes
        self.heartbeat_fields = heartbeat_fields
        #: called after `enable` / `disable` changed something
        self.on_enabled: list[Callable[[], None]] = []
        self.on_disabled: list[Callable[[], None]] = []
        self.dropped = 0
        self._queue: deque[dict[str, Any]] = deque()
        self._limit = buffer_limit
        self._cond = threading.Condition()
        self._in_flight = 0
        #: publishes that failed in a row (the broker is away while > 0)
        self._failures = 0
        self._closing = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._transport: Transport | None = None

    # -- switching ----------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """Whether task events are sent."""
        return self.sending and (self.groups is None or "task" in self.groups)

    def enable(self) -> None:
        """Send task events too (the ``enable_events`` command)."""
        if self.groups is not None:
            self.groups.add("task")
        self.sending = True
        for callback in self.on_enabled:
            callback()

    def disable(self) -> None:
        """Stop sending task events; worker events go on where they were
        sent (the ``disable_events`` command)."""
        if self.groups is None:
            self.sending = False
        else:
            self.groups.discard("task")
            self.sending = bool(self.groups)
        for callback in self.on_disabled:
            callback()

    # -- sending ------------------------------------------------------------
    def event(self, type: str, **fields: Any) -> dict[str, Any]:
        """A new event of *type* from this dispatcher (not sent)."""
        return {"hostname": self.hostname, "utcoffset": self.utcoffset, "pid": self.pid,
                "clock": self.clock.forward(), **fields, "type": type,
                "timestamp": fields.get("timestamp") or time.time()}

    def send(self, type: str, **fields: Any) -> None:
        """Queue an event for the sender thread; nothing when disabled or
        when its group is not sent."""
        if not self.sending:
            return
        groups = self.groups
        if groups is not None and type.partition("-")[0] not in groups:
            return
        event = self.event(type, **fields)
        with self._cond:
            if self._closing:
                return
            if len(self._queue) >= self._limit:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.warning("Events: sending falls behind (the broker is slow or "
                                   "away); %d dropped so far, the oldest first", self.dropped)
            self._queue.append(event)
            if len(self._queue) == 1:  # the sender may be waiting for the first
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="corekit-events",
                                                    daemon=True)
                    self._thread.start()
                self._cond.notify()

    def heartbeat(self) -> None:
        """Send a ``worker-heartbeat`` now."""
        self.utcoffset = utcoffset()
        fields = dict(self.heartbeat_fields()) if self.heartbeat_fields else dict(SOFTWARE_INFO)
        self.send("worker-heartbeat", **fields)

    def publish(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Publish *events* now, in one call, on this dispatcher's transport
        (a broker that has no broadcast turns the dispatcher off)."""
        if self._transport is None:
            transport = self.app.connection()
            if "broadcast" not in transport.capabilities:
                transport.close()
                self.sending = False
                with self._cond:
                    self._queue.clear()
                logger.warning("%s has no broadcast: no events are sent", transport.describe())
                return
            self._transport = transport
        self._transport.publish_broadcast(EVENT_EXCHANGE, [to_message(e) for e in events])

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued was published; False if it was not
        within *timeout* seconds, or at once while the broker is away."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None or self._failures:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (waiting up to *timeout*), then stop the
        sender thread and close the transport.  Later sends are dropped."""
        if not self.flush(timeout) and self._queue:
            logger.warning("Events: %d event(s) not published before closing", len(self._queue))
        with self._cond:
            self._closing = True
            self._queue.clear()
            self._cond.notify_all()
        self._closed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self._transport is not None:
            try:
                self._transport.close()
            finally:
                self._transport = None

    # -- the sender thread --------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
            # a moment for more events to come: fewer, bigger publishes under load
            self._closed.wait(LINGER)
            with self._cond:
                if self._closing:
                    return
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                self._in_flight = len(batch)
            try:
                self.publish(batch)
            except Exception as exc:  # the broker went away: keep the batch and retry
                self._failures += 1
                self._requeue(batch, exc)
                self._back_off()
                continue
            if self._failures:
                logger.warning("Events: the broker is back after %d failed attempt(s)",
                               self._failures)
                self._failures = 0
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    def _requeue(self, batch: list[dict[str, Any]], exc: Exception) -> None:
        """Keep *batch* to publish again; an outage is told once, on one
        line (each attempt's traceback at DEBUG; an error that is not the
        connection's keeps its traceback)."""
        transport, self._transport = self._transport, None
        if self._failures == 1:
            from corekit.worker.startup import is_connection_error, one_line_reason

            where = transport.describe() if transport is not None else \
                mask_url(str(self.app.conf.broker))
            logger.warning("Events: cannot publish to the broker at %s: %s; retrying in the "
                           "background", where, one_line_reason(exc),
                           exc_info=None if is_connection_error(exc) else exc)
        logger.debug("Events: publishing failed (attempt %d)", self._failures, exc_info=exc)
        if transport is not None:
            try:
                transport.close()
            except Exception:  # a broken connection may fail to close too
                pass
        with self._cond:
            keep = min(len(batch), max(0, self._limit - len(self._queue)))
            self.dropped += len(batch) - keep
            self._queue.extendleft(reversed(batch[len(batch) - keep:]))
            self._in_flight = 0
            self._cond.notify_all()

    def _back_off(self) -> None:
        """Wait before the next attempt (new events do not cut it short; closing does)."""
        self._closed.wait(min(MAX_RETRY_DELAY, 0.1 * 2 ** min(self._failures - 1, 8)))


def send_task_sent(app: Corekit, messages: Sequence[Message], hostname: str | None = None
                   ) -> None:
    """Publish a ``task-sent`` event for each task message just published
    (``task_send_sent_event``), at once on the app's producer: a client
    process may exit right after ``delay()``.  A broker error is logged,
    not raised: the tasks were sent."""
    name = hostname or client_hostname()
    now, offset, pid = time.time(), utcoffset(), os.getpid()
    events = []
    for m in messages:
        h = m.headers
        events.append({"hostname": name, "utcoffset": offset, "pid": pid, "clock": 0,
                       "uuid": h.get("id"), "name": h.get("task"), "args": h.get("argsrepr"),
                       "kwargs": h.get("kwargsrepr"), "retries": h.get("retries", 0),
                       "eta": h.get("eta"), "expires": h.get("expires"),
                       "root_id": h.get("root_id"), "parent_id": h.get("parent_id"),
                       "queue": m.queue, "exchange": m.exchange, "routing_key": m.routing_key,
                       "type": "task-sent", "timestamp": now})
    try:
        app.producer.publish_broadcast(EVENT_EXCHANGE, [to_message(e) for e in events])
    except Exception as exc:  # the task messages went out: only their events are lost
        logger.warning("Could not send %d task-sent event(s): %r", len(events), exc)
