"""The ``rpc://`` result backend: results travel back to the caller as AMQP
messages on the broker (the app's ``broker_url``, which must be ``amqp://``,
``amqps://`` or ``pyamqp://``), as with Celery's ``rpc://``.  Nothing is
stored anywhere.

- Each client (one app in one process) has its own reply queue, named by a
  uuid (`RpcBackend.oid`): non-durable and auto-delete, declared and
  consumed the first time the app sends a task that wants a result.  Task
  messages name it in ``properties.reply_to``.
- The worker publishes each state of such a task (STARTED, RETRY, SUCCESS,
  FAILURE, ...) to the default exchange with ``routing_key=reply_to``,
  ``correlation_id=<task id>``, the result serializer's content type and the
  meta ``{task_id, status, result, traceback, children, date_done}`` as body.
- The client reads its queue into memory (latest state per task wins), so
  the results of many pending tasks may arrive in any order.  Waiting blocks
  on the connection (``drain_events``); one thread reads while the others
  wait on a condition.

Results are single-consumer: a result can be fetched only by the process
(and app) that sent the task.  Another client asking for it sees PENDING
and times out; a result published after its client went away is dropped
with the auto-delete queue.  `forget` does nothing; there are no counters,
so no chords.  ``result_expires`` becomes the reply queue's message TTL
(``x-message-ttl``): a reply left unread on the broker that long is dropped
(Celery sets the queue's ``x-expires`` instead).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from corekit import states
from corekit.result_backend import ResultBackend, pending_meta
from corekit.exceptions import ImproperlyConfigured
from corekit.exceptions import TimeoutError as CorekitTimeoutError
from corekit.transport import mask_url

if TYPE_CHECKING:
    from corekit.plugins.amqp.link import Link
    from corekit.serialization import Codecs

logger = logging.getLogger("corekit.amqp")

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
#: The longest one read of the connection lasts, so `close` never waits long.
DRAIN_SLICE = 1.0
#: How many results already handed out stay readable again (by a new AsyncResult).
KEEP_READ = 1000


class RpcBackend(ResultBackend):
    """Results as messages to the sender's reply queue (see the module docstring)."""

    scheme = "rpc"
    needs_reply_to = True

    def __init__(self, url: str, codecs: Codecs, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, codecs, options)
        self.broker_url = broker_url_for(url, self.options.get("broker_url"))
        self.confirm_timeout = float(self.options.get("confirm_timeout", 30.0))
        self._link_options = {"ssl": self.options.get("broker_use_ssl")}
        self.oid = str(uuid.uuid4())
        self._unread: dict[str, dict[str, Any]] = {}
        self._read: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._cond = threading.Condition()
        self._draining = False   # one thread at a time uses the listener
        self._listener: Link | None = None
        self._publisher: Link | None = None
        self._publishing = threading.Lock()

    def describe(self) -> str:
        return f"rpc:// (replies through {mask_url(self.broker_url)})"

    # -- the worker's side ---------------------------------------------------------
    def store_many(self, metas: Sequence[Mapping[str, Any]]) -> None:
        """Publish each meta to its ``reply_to`` queue, then wait for the
        broker's confirms.  A meta without ``reply_to`` has nobody to go to;
        one that cannot be encoded is replaced by its task's FAILURE
        (`encode_or_fail`)."""
        import amqp

        s = self.codecs.serializer(self.serializer)

        def encode(meta: Mapping[str, Any]) -> bytes:
            return s.dumps({k: v for k, v in meta.items() if k != "reply_to"})

        with self._publishing:
            link = self._publisher_link()
            try:
                for meta in metas:
                    reply_to = meta.get("reply_to")
                    if not reply_to:
                        logger.debug("no reply_to for task %s: its state goes nowhere",
                                     meta.get("task_id"))
                        continue
                    encoded = self.encode_or_fail(meta, encode)
                    if encoded is None:
                        continue
                    link.channel.basic_publish(
                        amqp.Message(encoded[1], content_type=s.content_type,
                                     content_encoding=s.content_encoding,
                                     correlation_id=meta["task_id"], delivery_mode=1),
                        exchange="", routing_key=reply_to)
                    link.published += 1
                link.wait_for_confirms(self.confirm_timeout)
            except Exception:
                self._drop_publisher()
                raise

    def _publisher_link(self) -> Link:
        from corekit.plugins.amqp.link import Link

        if self._publisher is None or not self._publisher.alive:
            self._publisher = Link(self.broker_url, self._link_options, heartbeat=0)
            self._publisher.confirm_select()
        return self._publisher

    def _drop_publisher(self) -> None:
        link, self._publisher = self._publisher, None
        if link is not None:
            link.close()

    # -- the client's side ---------------------------------------------------------
    @property
    def reply_to(self) -> str:
        """This client's reply queue, declared (and consumed) on first use."""
        if self._listener is None:
            with self._cond:
                self._take_turn(None)
            try:
                self._listen()
            finally:
                self._give_turn()
        return self.oid

    def get_task_meta(self, task_id: str) -> dict[str, Any]:
        """The latest state received for *task_id* (PENDING if none), after
        reading what has already arrived."""
        with self._cond:
            mine = not self._draining
            self._draining = True
        if mine:
            try:
                self._listen().drain_ready()
            except Exception:
                self._drop_listener()
                raise
            finally:
                self._give_turn()
        with self._cond:
            return self._lookup(task_id) or pending_meta(task_id)

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5
                 ) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                meta = self._lookup(task_id)
                if meta is not None and meta["status"] in states.READY_STATES:
                    return meta
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise CorekitTimeoutError(
                        f"the operation timed out after {timeout}s waiting for task {task_id}")
                if self._draining:  # another thread reads; it wakes us for each reply
                    self._cond.wait(left)
                    continue
                self._draining = True
            try:
                self._drain(DRAIN_SLICE if left is None else min(left, DRAIN_SLICE))
            finally:
                self._give_turn()

    def get_many(self, task_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [self.get_task_meta(task_id) for task_id in task_ids]

    def save_group(self, group_id: str, result: Any) -> None:
        raise NotImplementedError(
            "the rpc:// result backend keeps nothing, so it cannot keep a group (nor join a "
            "chord): use a result backend that stores results (redis://, sqlite://) for chords "
            "and GroupResult.save()")

    def restore_group(self, group_id: str, app: Any = None) -> Any:
        self.save_group(group_id, None)

    def forget(self, task_id: str) -> None:
        """Nothing is stored, so nothing to forget."""

    def close(self) -> None:
        with self._cond:
            self._take_turn(None)
        try:
            self._drop_listener()
        finally:
            self._give_turn()
        with self._publishing:
            self._drop_publisher()

    # -- the reading turn and the cache (`_cond` held where it says so) ---------------
    def _take_turn(self, timeout: float | None) -> None:
        """With `_cond` held: wait until no other thread reads, then read."""
        while self._draining:
            self._cond.wait(timeout)
        self._draining = True

    def _give_turn(self) -> None:
        with self._cond:
            self._draining = False
            self._cond.notify_all()

    def _lookup(self, task_id: str) -> dict[str, Any] | None:
        """With `_cond` held.  A ready result handed out moves to the
        `KEEP_READ` most recent ones, so the cache does not grow forever."""
        meta = self._unread.get(task_id)
        if meta is None:
            meta = self._read.get(task_id)
        elif meta["status"] in states.READY_STATES:
            del self._unread[task_id]
            self._read[task_id] = meta
            while len(self._read) > KEEP_READ:
                self._read.popitem(last=False)
        return None if meta is None else dict(meta)

    def _on_reply(self, raw: Any) -> None:
        props = raw.properties
        try:
            meta = self.codecs.decode(raw.body, props.get("content_type", ""),
                                      None, self.accept)
            task_id = meta.get("task_id") or props["correlation_id"]
        except Exception as exc:
            logger.warning("dropped a reply on %s that could not be read: %r", self.oid, exc)
            return
        with self._cond:
            self._read.pop(task_id, None)
            self._unread[task_id] = meta
            self._cond.notify_all()

    # -- the listener (only with the reading turn) ------------------------------------
    def _listen(self) -> Link:
        from corekit.plugins.amqp.link import Link

        if self._listener is None or not self._listener.alive:
            link = Link(self.broker_url, self._link_options, heartbeat=0)
            try:
                ttl = int(float(self.expires) * 1000) if self.expires else 0
                link.channel.queue_declare(
                    self.oid, durable=False, auto_delete=True,
                    arguments={"x-message-ttl": max(1, ttl)} if ttl else {})
                link.channel.basic_consume(self.oid, callback=self._on_reply, no_ack=True)
            except Exception:
                link.close()
                raise
            self._listener = link
        return self._listener

    def _drain(self, timeout: float) -> None:
        try:
            self._listen().drain(timeout)
        except Exception:
            self._drop_listener()
            raise

    def _drop_listener(self) -> None:
        link, self._listener = self._listener, None
        if link is not None:
            link.close()


def broker_url_for(url: str, broker_url: str | None) -> str:
    """The broker ``rpc://`` replies through: the app's, which must be AMQP."""
    if url.partition("://")[2].strip("/"):
        raise ImproperlyConfigured(
            f"result backend {mask_url(url)!r}: rpc:// takes nothing after the scheme; "
            f"replies travel through the app's broker_url")
    if not broker_url:
        raise ImproperlyConfigured("the rpc:// result backend needs the app's broker_url "
                                   "(options['broker_url'])")
    if broker_url.partition("://")[0] not in AMQP_SCHEMES:
        raise ImproperlyConfigured(
            f"the rpc:// result backend sends results through an AMQP broker, but "
            f"broker_url is {mask_url(broker_url)!r}: use amqp:// (or another result backend)")
    return broker_url
