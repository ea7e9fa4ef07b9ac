"""Broadcast for ``amqp://``: one fanout exchange per broadcast exchange,
declared like Celery's ``<name>.pidbox`` ones (non-durable, not auto-deleted,
messages transient).

Publishing goes over the transport's publisher link and waits for publisher
confirms, but is not mandatory: with nobody subscribed the broker drops the
message, as the contract says.  A subscription has a connection of its own
(heartbeat off, so a subscriber that reads seldom is never dropped) and a
server-named exclusive queue bound to each exchange; the broker deletes the
queue when the connection closes.
"""
from __future__ import annotations

import time
import weakref
from collections import deque
from typing import Any, Sequence

from corekit.plugins.amqp.link import Link
from corekit.plugins.amqp.envelope import from_amqp, to_amqp
from corekit.plugins.amqp.transport import AmqpTransport
from corekit.transport import Message, Subscription

#: The most messages one `get` returns; the rest wait for the next call.
MAX_BATCH = 1000
#: A subscription's queue keeps at most this many unread messages, dropping
#: the oldest: a subscriber that stopped reading must not fill the broker.
MAX_PENDING = 100_000

#: The exchanges each publisher link has declared.
_declared: weakref.WeakKeyDictionary[Link, set[str]] = weakref.WeakKeyDictionary()


def declare_exchange(channel: Any, exchange: str) -> None:
    channel.exchange_declare(exchange, "fanout", durable=False, auto_delete=False)


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

    def __init__(self, transport: AmqpTransport, exchanges: Sequence[str]) -> None:
        if not exchanges:
            raise ValueError("subscribe_broadcast needs at least one exchange")
        self.exchanges = tuple(dict.fromkeys(exchanges))
        self.closed = False
        self._inbox: deque[Message] = deque()
        self._link = Link(transport.url, transport.options, heartbeat=0,
                          on_delivery=lambda raw: self._inbox.append(_message(raw)))
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
            channel.queue_bind(queue, exchange)
        channel.basic_consume(queue, callback=self._link.on_delivery, no_ack=True)

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
