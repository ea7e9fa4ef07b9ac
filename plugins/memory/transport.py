"""The in-process ``memory://`` transport (``memory://`` or ``memory://NAME``).

Every transport built with the same URL shares one `MemoryBroker`, so a
producer and a worker in one process talk through it; nothing leaves the
process.  It honours the full contract (ETA, priority, leases, dead letters,
broadcast) so the kernel's unit tests exercise the same paths as on a real
broker, and `fetch` sleeps on a condition variable: a publish wakes it at once.
Leases are timed by `time.monotonic` (one process, one clock that no
``time.time`` change moves).
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import defaultdict
from typing import Any, Mapping, Sequence

from corekit.plugins.memory.broadcast import Hub
from corekit.ratelimit import TokenBucket
from corekit.messages import Message
from corekit.transport import DeadLetter, Subscription, Transport

#: A waiting message: ``(-priority, seq, message)`` in ``ready``, ``(eta, seq,
#: message)`` in ``delayed``; ``seq`` keeps FIFO order and is the delivery tag.
Entry = tuple[float, int, Message]


def _copy(m: Message, tag: Any = None, redelivered: bool = False) -> Message:
    """A private copy, so nobody outside can change what the broker holds."""
    return Message(m.body, dict(m.headers) if isinstance(m.headers, dict) else m.headers,
                   dict(m.properties) if isinstance(m.properties, dict) else m.properties,
                   m.content_type, m.content_encoding, m.queue, m.exchange, m.routing_key,
                   m.eta, m.priority or 0, tag, redelivered)


class MemoryBroker:
    """The state shared by every transport built with one URL."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seq = itertools.count(1)  # never reset: a tag is never reused
        self.hub = Hub()  # live subscriptions, not state: `reset` leaves them
        self.reset()

    def reset(self) -> None:
        """Drop every message, lease and dead letter."""
        with self.cond:
            self.ready: defaultdict[str, list[Entry]] = defaultdict(list)
            self.delayed: defaultdict[str, list[Entry]] = defaultdict(list)
            self.unacked: dict[int, tuple[str, Message]] = {}  # tag -> (owner, message)
            self.last_seen: dict[str, float] = {}  # consumer -> time.monotonic()
            self.dead: dict[int, DeadLetter] = {}
            self.buckets: dict[str, TokenBucket] = {}
            self.cond.notify_all()

    def put(self, seq: int, m: Message, now: float) -> None:
        if m.eta is not None and m.eta > now:
            heapq.heappush(self.delayed[m.queue], (m.eta, seq, m))
        else:
            heapq.heappush(self.ready[m.queue], (-m.priority, seq, m))

    def promote(self, queues: Sequence[str], now: float) -> float | None:
        """Move due messages of *queues* to ready; return the next ETA."""
        next_eta = None
        for q in queues:
            delayed = self.delayed.get(q)
            while delayed and delayed[0][0] <= now:
                _, seq, m = heapq.heappop(delayed)
                heapq.heappush(self.ready[q], (-m.priority, seq, m))
            if delayed and (next_eta is None or delayed[0][0] < next_eta):
                next_eta = delayed[0][0]
        return next_eta

    def take(self, queues: Sequence[str], limit: int, owner: str) -> list[Message]:
        got: list[Message] = []
        for q in queues:
            ready = self.ready.get(q)
            while ready and len(got) < limit:
                _, seq, m = heapq.heappop(ready)
                self.unacked[seq] = (owner, m)
                got.append(_copy(m, seq, m.redelivered))
        return got

    def renew(self, consumer: str, register: bool) -> bool:
        """Renew *consumer*'s lease (*register*: start it); False if it
        lapsed, which a renewal never undoes."""
        if register or consumer in self.last_seen:
            self.last_seen[consumer] = time.monotonic()
            return True
        return False

    def recover(self, lease_timeout: float, now: float) -> float | None:
        """Requeue what lapsed consumers hold and forget them; return when
        the next lease could lapse, by `time.monotonic` (so a waiting fetch
        wakes for it without polling).  *now* is for the requeued ETAs."""
        cutoff = time.monotonic() - lease_timeout
        lapsed = {c for c, seen in self.last_seen.items() if seen < cutoff}
        for consumer in lapsed:
            del self.last_seen[consumer]
        next_lapse = None
        for seq, (owner, m) in list(self.unacked.items()):
            seen = self.last_seen.get(owner)
            if seen is None:
                del self.unacked[seq]
                m.redelivered = True
                self.put(seq, m, now)
            elif next_lapse is None or seen + lease_timeout < next_lapse:
                next_lapse = seen + lease_timeout
        return next_lapse


_brokers: dict[str, MemoryBroker] = {}
_lock = threading.Lock()


def broker_for(url: str) -> MemoryBroker:
    """The broker of *url*, made on first use and kept for the process."""
    with _lock:
        broker = _brokers.get(url)
        if broker is None:
            broker = _brokers[url] = MemoryBroker()
        return broker


def reset() -> None:
    """Clear every memory broker in place, so transports already built and
    transports built later still share state."""
    with _lock:
        brokers = list(_brokers.values())
    for broker in brokers:
        broker.reset()


class MemoryTransport(Transport):
    """A transport over the process-wide `MemoryBroker` for its URL."""

    scheme = "memory"
    capabilities = frozenset({"delayed_delivery", "delayed_counted", "priority",
                              "queue_order", "dead_letter", "lease", "broadcast",
                              "rate_limit"})

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(url, options)
        self.broker = broker_for(url)
        self._registered = False

    # -- producing ----------------------------------------------------------------
    def publish(self, messages: Sequence[Message]) -> None:
        broker = self.broker
        with broker.cond:
            now = time.time()
            for m in messages:
                broker.put(next(broker.seq), _copy(m), now)
            broker.cond.notify_all()

    # -- consuming ----------------------------------------------------------------
    def fetch(self, queues: Sequence[str], limit: int, timeout: float) -> list[Message]:
        if limit <= 0:
            return []
        got = self._fetch(queues, limit, timeout)
        if got is None:  # raised here: `lost_lease` takes the lease lock, not under cond
            raise self.lost_lease()
        return got

    def _fetch(self, queues: Sequence[str], limit: int, timeout: float
               ) -> list[Message] | None:
        """`fetch`, or None if the lease lapsed."""
        broker = self.broker
        deadline = time.monotonic() + timeout
        with broker.cond:
            while True:
                now, started = time.time(), time.monotonic()
                if self.lease_lapsed or not broker.renew(self.consumer_id,
                                                         not self._registered):
                    return None  # a fetching consumer is alive, unless it lapsed
                self._registered, self.lease_renewed = True, started
                next_lapse = broker.recover(self.lease_timeout, now)
                next_eta = broker.promote(queues, now)
                got = broker.take(queues, limit, self.consumer_id)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                if next_eta is not None:
                    left = min(left, max(0.001, next_eta - now))
                if next_lapse is not None:
                    left = min(left, max(0.001, next_lapse - started))
                # wake well before our own lease could look lapsed to others
                broker.cond.wait(min(left, self.lease_timeout / 2))

    def heartbeat(self) -> None:
        with self.lease_lock, self.broker.cond:
            started = time.monotonic()
            if self.broker.renew(self.consumer_id, not self._registered):
                self._registered, self.lease_renewed = True, started
            else:
                self.lease_lapsed = True

    def new_lease(self) -> None:
        self._registered = False

    def ack(self, messages: Sequence[Message]) -> None:
        unacked = self.broker.unacked
        with self.broker.cond:
            for m in messages:  # only ours: after a lapse it may be another's
                held = unacked.get(m.delivery_tag)
                if held is not None and held[0] == self.consumer_id:
                    del unacked[m.delivery_tag]

    def reject(self, messages: Sequence[Message], requeue: bool) -> None:
        broker = self.broker
        with broker.cond:
            now = time.time()
            for m in messages:
                held = broker.unacked.get(m.delivery_tag)
                if held is None:
                    continue
                owner, stored = held
                if owner != self.consumer_id:  # a lapsed lease may be someone else's now
                    continue
                del broker.unacked[m.delivery_tag]
                if requeue:
                    stored.redelivered = True
                    broker.put(m.delivery_tag, stored, now)
            broker.cond.notify_all()

    # -- dead letters -------------------------------------------------------------
    def dead_letter(self, message: Message, reason: str) -> None:
        broker = self.broker
        with broker.cond:
            broker.unacked.pop(message.delivery_tag, None)
            letter_id = next(broker.seq)
            kept = _copy(message)
            kept.eta = None
            broker.dead[letter_id] = DeadLetter(letter_id, kept, reason, time.time())

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        with self.broker.cond:
            letters = list(itertools.islice(self.broker.dead.values(), max(limit, 0)))
            return [DeadLetter(d.id, _copy(d.message), d.reason, d.failed_at) for d in letters]

    def replay_dead_letters(self, ids: Sequence[Any] | None = None) -> int:
        broker = self.broker
        with broker.cond:
            chosen = list(broker.dead) if ids is None else [i for i in ids if i in broker.dead]
            now = time.time()
            for letter_id in chosen:
                broker.put(next(broker.seq), broker.dead.pop(letter_id).message, now)
            broker.cond.notify_all()
            return len(chosen)

    # -- broadcast ----------------------------------------------------------------
    def publish_broadcast(self, exchange: str, messages: Sequence[Message]) -> None:
        self.broker.hub.publish(exchange, messages)

    def subscribe_broadcast(self, exchanges: Sequence[str], routing_key: str | None = None
                            ) -> Subscription:
        return self.broker.hub.subscribe(exchanges, routing_key)

    # -- rate limits --------------------------------------------------------------
    def take_tokens(self, key: str, rate: float, capacity: float, wanted: int
                    ) -> tuple[int, float]:
        with self.broker.cond:
            bucket = self.broker.buckets.get(key)
            if bucket is None or (bucket.rate, bucket.capacity) != (rate, capacity):
                bucket = self.broker.buckets[key] = TokenBucket(rate, capacity)
            return bucket.take(wanted)

    # -- management ---------------------------------------------------------------
    def purge(self, queues: Sequence[str]) -> int:
        broker = self.broker
        with broker.cond:
            return sum(len(broker.ready.pop(q, ())) + len(broker.delayed.pop(q, ()))
                       for q in queues)

    def queue_size(self, queue: str) -> int:
        broker = self.broker
        with broker.cond:
            return len(broker.ready.get(queue, ())) + len(broker.delayed.get(queue, ()))
