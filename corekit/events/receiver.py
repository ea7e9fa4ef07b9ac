"""Receiving events: a subscription to the ``celeryev`` exchange that hands
each event, decoded, to a handler chosen by its type."""
from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from corekit.events.dispatcher import EVENT_EXCHANGE, LamportClock

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.messages import Message
    from corekit.transport import Subscription

logger = logging.getLogger("corekit.events")

Handler = Callable[[dict[str, Any]], Any]

#: Longest wait on the subscription, so ``should_stop`` is asked this often.
POLL = 0.25


class EventReceiver:
    """Calls ``handlers[event["type"]]`` (or ``handlers["*"]``) for each
    event published from now on.

    The subscription is made here, so nothing sent after the receiver exists
    is missed.  *routing_key* picks events by their routing key, a topic
    pattern (``task.#``, ``worker.*``, ``task.succeeded``), None for all.
    Each event gets ``local_received`` (when it arrived here); a list of
    events in one message (Celery's batched ``task.multi``) is unpacked.
    A context manager that closes the subscription.
    """

    def __init__(self, app: Corekit, handlers: Mapping[str, Handler] | None = None,
                 routing_key: str | None = None) -> None:
        self.app = app
        self.handlers = dict(handlers or {})
        self.routing_key = routing_key
        self.clock = LamportClock()
        self.event_count = 0
        transport = app.connection()
        try:
            self.subscription: Subscription = transport.subscribe_broadcast(
                [EVENT_EXCHANGE], routing_key=routing_key)
        finally:
            transport.close()  # the subscription has a connection of its own

    def capture(self, limit: int | None = None, timeout: float | None = None,
                should_stop: Callable[[], bool] | None = None, wakeup: bool = True) -> int:
        """Handle events until *limit* were handled, *timeout* seconds
        passed or *should_stop* returns true; return how many were handled.
        With *wakeup*, first ask every worker for a heartbeat (Celery's
        receiver does too), so the cluster shows up at once."""
        if wakeup:
            self.wakeup_workers()
        deadline = None if timeout is None else time.monotonic() + timeout
        handled = 0
        while limit is None or handled < limit:
            if should_stop is not None and should_stop():
                break
            wait = POLL
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
            for message in self.subscription.get(wait):
                for event in self.decode(message):
                    self.process(event)
                    handled += 1
                    # a batch may carry more than the limit: the rest is dropped
                    if limit is not None and handled >= limit:
                        return handled
        return handled

    def wakeup_workers(self) -> None:
        try:
            self.app.control.broadcast("heartbeat")
        except Exception as exc:  # a monitor must start even if this fails
            logger.warning("Could not ask the workers for a heartbeat: %r", exc)

    def decode(self, message: Message) -> list[dict[str, Any]]:
        """The events in *message*, with ``local_received`` and the clock merged."""
        try:
            body = json.loads(message.body)
        except ValueError:
            logger.warning("Skipped an event that is not JSON: %r", bytes(message.body)[:200])
            return []
        events = body if isinstance(body, list) else [body]
        now = time.time()
        out = []
        for event in events:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                logger.warning("Skipped a malformed event: %r", event)
                continue
            if event["type"] == "task-sent" or "clock" not in event:
                # clients do not keep the cluster's clock: order them just before us
                event["clock"] = max(self.clock.value, 1)
            else:
                self.clock.adjust(event["clock"])
            event["local_received"] = now
            out.append(event)
        return out

    def process(self, event: dict[str, Any]) -> None:
        """Hand *event* to its handler; a handler that raises is logged."""
        self.event_count += 1
        handler = self.handlers.get(event["type"]) or self.handlers.get("*")
        if handler is None:
            return
        try:
            handler(event)
        except Exception:
            logger.exception("Event handler for %s failed", event["type"])

    def close(self) -> None:
        self.subscription.close()

    def __enter__(self) -> EventReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
