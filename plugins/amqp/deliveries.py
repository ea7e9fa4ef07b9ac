"""What the consuming connection delivered and `AmqpTransport.fetch` has not
handed out yet, sorted as it arrives: ready to run, early (due within
`EARLY_HORIZON`: held here until due), too early (goes back to the delay
ladder) and poison (cannot be taken as stored: dead-lettered).

The transport owns one `Deliveries` and touches it only under its consuming
lock; the broker still holds every one of these messages unacknowledged.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Sequence

from corekit.messages import Message
from corekit.plugins.amqp.envelope import (DEATH_HEADERS, ETA, EXCHANGE, ROUTING_KEY,
                                           from_amqp, stored_form_problem)

if TYPE_CHECKING:
    from corekit.plugins.amqp.link import Link

#: How often a waiting fetch wakes to send heartbeats and release due ETAs.
TICK = 0.25
#: A delivery this early is held here until due; an earlier one goes back to the ladder.
EARLY_HORIZON = 1.0


class Deliveries:
    """The four kinds of delivery not handed out (see the module docstring)."""

    def __init__(self) -> None:
        self.ready: deque[Message] = deque()
        self.early: list[Message] = []
        self._too_early: list[Message] = []
        #: deliveries that cannot be taken as stored, with why
        self._poison: list[tuple[Message, str]] = []

    def add(self, link: Link, raw: Any) -> None:
        """Sort one delivery of *link* (it stays unsettled on the link)."""
        message, problem = delivered_message(link, raw)
        link.unsettled.add(message.delivery_tag[1])
        if problem is not None:
            self._poison.append((message, problem))
        elif message.eta is None or message.eta <= time.time():
            self.ready.append(message)
        elif message.eta - time.time() <= EARLY_HORIZON:
            self.early.append(message)
        else:  # a clock ahead of ours, or past the ladder's reach
            self._too_early.append(message)

    def waiting(self) -> int:
        """How many are held here to run (ready or early)."""
        return len(self.ready) + len(self.early)

    def take(self, limit: int) -> list[Message]:
        """Up to *limit* ready deliveries, oldest first."""
        ready = self.ready
        return [ready.popleft() for _ in range(min(limit, len(ready)))]

    def release_early(self) -> None:
        """Early deliveries now due become ready, in ETA order."""
        if self.early:
            now = time.time()
            due = [m for m in self.early if m.eta <= now]  # type: ignore[operator]
            if due:
                self.early = [m for m in self.early if m.eta > now]  # type: ignore[operator]
                self.ready.extend(sorted(due, key=lambda m: m.eta))  # type: ignore[arg-type,return-value]

    def next_early(self) -> float:
        """Seconds until the next early delivery is due (at most `TICK`)."""
        if not self.early:
            return TICK
        return max(0.0, min(m.eta for m in self.early) - time.time())  # type: ignore[type-var]

    def take_too_early(self) -> list[Message]:
        batch, self._too_early = self._too_early, []
        return batch

    def take_poison(self) -> list[tuple[Message, str]]:
        poison, self._poison = self._poison, []
        return poison

    def take_queues(self, queues: Sequence[str], early: bool = True) -> list[Message]:
        """Remove and return what is held from *queues*: ready, and early
        unless *early* is False."""
        wanted = set(queues)
        mine = [m for m in self.ready if m.queue in wanted]
        if mine:
            self.ready = deque(m for m in self.ready if m.queue not in wanted)
        if early:
            held = [m for m in self.early if m.queue in wanted]
            if held:
                self.early = [m for m in self.early if m.queue not in wanted]
                mine += held
        return mine

    def ready_in(self, queue: str) -> int:
        return sum(1 for m in self.ready if m.queue == queue)

    def clear(self) -> None:
        """The connection is gone: the broker requeued all it delivered."""
        self.ready.clear()
        self.early.clear()


def delivered_message(link: Link, raw: Any) -> tuple[Message, str | None]:
    """The delivery as a `Message`, and why it cannot be taken as it is
    stored (None: it can)."""
    info = raw.delivery_info
    message, headers = from_amqp(raw, delivery_tag=(link.generation, info["delivery_tag"]),
                                 redelivered=bool(info["redelivered"]))
    problem = stored_form_problem(headers)
    if problem is not None:
        message.exchange, message.routing_key = info["exchange"], info["routing_key"]
        message.queue = link.queue_of.get(info["consumer_tag"], message.routing_key)
        return message, problem
    message.eta = headers.pop(ETA, None)
    message.exchange = headers.pop(EXCHANGE, info["exchange"])
    message.routing_key = headers.pop(ROUTING_KEY, info["routing_key"])
    if message.eta is not None:  # it came down the delay ladder
        for key in DEATH_HEADERS:
            headers.pop(key, None)
    message.queue = link.queue_of.get(info["consumer_tag"], message.routing_key)
    return message, None
