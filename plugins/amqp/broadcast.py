"""Broadcast for ``amqp://``: one exchange per broadcast exchange, of the
type `BROADCAST_EXCHANGE_TYPES` gives it and with the flags Celery declares
it with, so declaring it beside a Celery worker or Flower never fails:
``celery.pidbox`` (fanout) and ``reply.celery.pidbox`` (direct) like
kombu's mailbox, non-durable; ``celeryev`` (topic) like Celery's event
exchange, durable; any other a non-durable fanout.  None is auto-deleted and
messages are transient.

Publishing goes over the transport's publisher link and waits for publisher
confirms, but is not mandatory: with nobody subscribed the broker drops the
message, as the contract says.  A subscription has a connection of its own
(heartbeat off, so a subscriber that reads seldom is never dropped) and a
server-named exclusive queue bound to each exchange (with the routing key
asked for, else ``#`` on a topic exchange and the empty key on the others); the
broker deletes the queue when the connection closes.  A fanout exchange
ignores binding keys, so there the subscription filters by routing key itself.
"""
from __future__ import annotations

import time
import weakref
from collections import deque
from typing import Any, Sequence

from corekit.plugins.amqp.link import Link
from corekit.plugins.amqp.envelope import from_amqp, to_amqp
from corekit.plugins.amqp.transport import AmqpTransport
from corekit.messages import Message
from corekit.transport import (Subscription, broadcast_exchange_type,
                               broadcast_key_matches, check_broadcast_binding)

#: The most messages one `get` returns; the rest wait for the next call.
MAX_BATCH = 1000
#: A subscription's queue keeps at most this many unread messages, dropping
#: the oldest: a subscriber that stopped reading must not fill the broker.
MAX_PENDING = 100_000

#: The exchanges each publisher link has declared.
_declared: weakref.WeakKeyDictionary[Link, set[str]] = weakref.WeakKeyDictionary()


#: Broadcast exchanges Celery declares durable (kombu's default for an
#: Exchange; its mailbox exchanges are declared non-durable).
DURABLE_EXCHANGES = frozenset({"celeryev"})


def declare_exchange(channel: Any, exchange: str) -> None:
    channel.exchange_declare(exchange, broadcast_exchange_type(exchange),
                             durable=exchange in DURABLE_EXCHANGES, auto_delete=False)


def binding_key(exchange: str, routing_key: str | None) -> str:
    """What a subscription's queue is bound to *exchange* with."""
    if routing_key is not None:
        return routing_key
    return "#" if broadcast_exchange_type(exchange) == "topic" else ""


def publish(transport: AmqpTransport, exchange: str, messages: Sequence[Message]) -> None:
    """`Transport.publish_broadcast` on *transport*'s publisher link."""
    if not messages:
        return
    with transport._publishing:
        link = transport._publisher_link()
        try:
            declared = _declared.setdefault(link, set())
            if exchange not in declared:
                declare_exchange(link.channel, exchange)
                declared.add(exchange)
            for m in messages:
                link.channel.basic_publish(to_amqp(m, dict(m.headers), persistent=False),
                                           exchange=exchange, routing_key=m.routing_key)
                link.published += 1
            link.wait_for_confirms(transport.confirm_timeout)
        except Exception:
            transport._drop_publisher()
            raise


def _message(raw: Any) -> Message:
    info = raw.delivery_info
    return from_amqp(raw, exchange=info["exchange"], routing_key=info["routing_key"])[0]


class AmqpSubscription(Subscription):
    """A queue of its own on a connection of its own (see the module docstring)."""

    def __init__(self, transport: AmqpTransport, exchanges: Sequence[str],
                 routing_key: str | None = None) -> None:
        check_broadcast_binding(exchanges, routing_key)
        self.exchanges = tuple(dict.fromkeys(exchanges))
        self.routing_key = routing_key
        self.closed = False
        self._inbox: deque[Message] = deque()
        self._link = Link(transport.url, transport.options, heartbeat=0,
                          on_delivery=self._deliver)
        try:
            self._subscribe()
        except BaseException:
            self.close()
            raise

    def _subscribe(self) -> None:
        """Declare and bind synchronously: once this returns, every later
        publish reaches the queue."""
        channel = self._link.channel
        queue, _, _ = channel.queue_declare("", exclusive=True, auto_delete=True,
                                            arguments={"x-max-length": MAX_PENDING})
        for exchange in self.exchanges:
            declare_exchange(channel, exchange)
            channel.queue_bind(queue, exchange,
                               routing_key=binding_key(exchange, self.routing_key))
        channel.basic_consume(queue, callback=self._link.on_delivery, no_ack=True)

    def _deliver(self, raw: Any) -> None:
        message = _message(raw)
        if broadcast_key_matches(message.exchange, self.routing_key, message.routing_key):
            self._inbox.append(message)

    def get(self, timeout: float) -> list[Message]:
        if self.closed:
            return []
        deadline = time.monotonic() + timeout
        self._drain_ready()
        while not self._inbox:
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            self._link.drain(left)
        self._drain_ready()
        count = min(MAX_BATCH, len(self._inbox))
        return [self._inbox.popleft() for _ in range(count)]

    def _drain_ready(self) -> None:
        while len(self._inbox) < MAX_BATCH and self._link.drain(0):
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._inbox.clear()
        self._link.close()
