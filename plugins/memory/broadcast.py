"""Broadcast for ``memory://``: a fanout `Hub` per broker, in-process.

Publishing appends a copy to each subscriber's inbox and wakes it; it never
waits for a subscriber.  The hub holds subscriptions weakly, so one dropped
without `close` stops receiving once it is collected.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from typing import Sequence

from corekit.messages import Message
from corekit.transport import (Subscription, broadcast_key_matches,
                               check_broadcast_binding)

#: An inbox keeps at most this many unread messages, dropping the oldest:
#: a subscriber that stopped reading must not grow the process without bound.
MAX_PENDING = 100_000


def _copy(m: Message, exchange: str) -> Message:
    return Message(m.body, dict(m.headers) if isinstance(m.headers, dict) else m.headers,
                   dict(m.properties) if isinstance(m.properties, dict) else m.properties,
                   m.content_type, m.content_encoding, m.queue, exchange, m.routing_key,
                   None, m.priority or 0)


class Hub:
    """Who is subscribed to which exchange, for one memory:// URL."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscribers: dict[str, weakref.WeakSet[MemorySubscription]] = {}

    def publish(self, exchange: str, messages: Sequence[Message]) -> None:
        # Delivered under the hub's lock, so every subscriber sees one order.
        with self.lock:
            subscribers = self.subscribers.get(exchange)
            for subscription in list(subscribers or ()):
                key = subscription.routing_key
                subscription.deliver([_copy(m, exchange) for m in messages
                                      if broadcast_key_matches(exchange, key, m.routing_key)])

    def subscribe(self, exchanges: Sequence[str], routing_key: str | None = None
                  ) -> MemorySubscription:
        check_broadcast_binding(exchanges, routing_key)
        subscription = MemorySubscription(self, exchanges, routing_key)
        with self.lock:
            for exchange in exchanges:
                self.subscribers.setdefault(exchange, weakref.WeakSet()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: MemorySubscription) -> None:
        with self.lock:
            for exchange in subscription.exchanges:
                self.subscribers.get(exchange, weakref.WeakSet()).discard(subscription)


class MemorySubscription(Subscription):
    """An inbox the hub fills; `get` sleeps on its condition variable."""

    def __init__(self, hub: Hub, exchanges: Sequence[str], routing_key: str | None) -> None:
        self.hub = hub
        self.exchanges = tuple(dict.fromkeys(exchanges))
        self.routing_key = routing_key
        self.cond = threading.Condition()
        self.inbox: deque[Message] = deque(maxlen=MAX_PENDING)
        self.closed = False

    def deliver(self, messages: list[Message]) -> None:
        if not messages:
            return
        with self.cond:
            if not self.closed:
                self.inbox.extend(messages)
                self.cond.notify_all()

    def get(self, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.inbox and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.cond.wait(left)
            got = list(self.inbox)
            self.inbox.clear()
            return got

    def close(self) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.inbox.clear()
            self.cond.notify_all()
        self.hub.unsubscribe(self)
