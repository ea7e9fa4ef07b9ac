"""The in-process ``memory://NAME`` transport, for kernel unit tests."""
from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from typing import Any, Sequence

from corekit.transport import DeadLetter, Message, Transport


class MemoryBroker:
    """State shared by every transport built with the same URL."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.queues: dict[str, list[tuple[int, int, Message]]] = defaultdict(list)
        self.unacked: dict[int, Message] = {}
        self.owners: dict[int, str] = {}          # delivery tag -> consumer id
        self.last_seen: dict[str, float] = {}     # consumer id -> last heartbeat
        self.dead: dict[int, DeadLetter] = {}
        self.seq = itertools.count(1)


_brokers: dict[str, MemoryBroker] = {}
_lock = threading.Lock()


def broker_for(url: str) -> MemoryBroker:
    with _lock:
        return _brokers.setdefault(url, MemoryBroker())


def reset() -> None:
    with _lock:
        _brokers.clear()


class MemoryTransport(Transport):
    scheme = "memory"
    capabilities = frozenset({"delayed_delivery", "priority", "dead_letter", "lease"})

    def __init__(self, url: str, options: Any = None) -> None:
        super().__init__(url, options)
        self.broker = broker_for(url)

    def _put(self, m: Message) -> None:
        self.broker.queues[m.queue].append((-m.priority, next(self.broker.seq), m))

    def publish(self, messages: Sequence[Message]) -> None:
        with self.broker.cond:
            for m in messages:
                self._put(Message(m.body, dict(m.headers), dict(m.properties), m.content_type,
                                  m.content_encoding, m.queue, m.exchange, m.routing_key,
                                  m.eta, m.priority))
            self.broker.cond.notify_all()

    def _take(self, queues: Sequence[str], limit: int) -> tuple[list[Message], float | None]:
        now = time.time()
        got: list[Message] = []
        next_eta = None
        for q in queues:
            entries = sorted(self.broker.queues.get(q, []), key=lambda e: (e[0], e[1]))
            keep = []
            for entry in entries:
                m = entry[2]
                if len(got) < limit and (m.eta is None or m.eta <= now):
                    tag = next(self.broker.seq)
                    m.delivery_tag = tag
                    self.broker.unacked[tag] = m
                    self.broker.owners[tag] = self.consumer_id
                    got.append(m)
                else:
                    if m.eta is not None and m.eta > now:
                        next_eta = m.eta if next_eta is None else min(next_eta, m.eta)
                    keep.append(entry)
            if q in self.broker.queues:
                self.broker.queues[q] = keep
        return got, next_eta

    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        deadline = time.monotonic() + timeout
        with self.broker.cond:
            while True:
                self._recover()
                got, next_eta = self._take(queues, limit)
                if got:
                    self.broker.last_seen[self.consumer_id] = time.time()
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                if next_eta is not None:
                    left = min(left, max(0.001, next_eta - time.time()))
                if self.broker.owners:  # a lease may lapse while we wait
                    left = min(left, self.lease_timeout / 2)
                self.broker.cond.wait(left)

    def _recover(self) -> None:
        """Requeue messages whose consumer stopped heartbeating."""
        cutoff = time.time() - self.lease_timeout
        broker = self.broker
        for tag, owner in list(broker.owners.items()):
            if broker.last_seen.get(owner, 0.0) < cutoff:
                m = broker.unacked.pop(tag)
                del broker.owners[tag]
                m.redelivered = True
                self._put(m)

    def heartbeat(self) -> None:
        with self.broker.cond:
            self.broker.last_seen[self.consumer_id] = time.time()

    def ack(self, messages: Sequence[Message]) -> None:
        with self.broker.cond:
            for m in messages:
                self.broker.unacked.pop(m.delivery_tag, None)
                self.broker.owners.pop(m.delivery_tag, None)

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        with self.broker.cond:
            for m in messages:
                self.broker.owners.pop(m.delivery_tag, None)
                if self.broker.unacked.pop(m.delivery_tag, None) is not None and requeue:
                    m.redelivered = True
                    self._put(m)
            self.broker.cond.notify_all()

    def dead_letter(self, message: Message, reason: str) -> None:
        with self.broker.cond:
            self.broker.unacked.pop(message.delivery_tag, None)
            self.broker.owners.pop(message.delivery_tag, None)
            key = next(self.broker.seq)
            self.broker.dead[key] = DeadLetter(key, message, reason)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self.broker.cond:
            return list(self.broker.dead.values())[:limit]

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        with self.broker.cond:
            keys = list(self.broker.dead) if ids is None else [i for i in ids
                                                               if i in self.broker.dead]
            for key in keys:
                m = self.broker.dead.pop(key).message
                m.delivery_tag, m.redelivered = None, False
                self._put(m)
            self.broker.cond.notify_all()
            return len(keys)

    def purge(self, queues: Sequence[str]) -> int:
        with self.broker.cond:
            return sum(len(self.broker.queues.pop(q, [])) for q in queues)

    def queue_size(self, queue: str) -> int:
        with self.broker.cond:
            return len(self.broker.queues.get(queue, []))
