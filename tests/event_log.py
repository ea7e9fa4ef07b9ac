"""`EventLog`: every event published from now on, for the tests that watch
events (tests/events/, tests/test_workflow_unencodable.py)."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from corekit import Corekit
from corekit.events.receiver import EventReceiver


class EventLog:
    """Every event published from now on, captured on a thread of its own."""

    def __init__(self, app: Corekit, handler: Callable[[dict[str, Any]], Any] | None = None,
                 routing_key: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.handler = handler
        self.stopping = threading.Event()
        self.receiver = EventReceiver(app, {"*": self.add}, routing_key=routing_key)
        self.thread = threading.Thread(target=self.receiver.capture,
                                       kwargs={"should_stop": self.stopping.is_set,
                                               "wakeup": False}, daemon=True)
        self.thread.start()

    def add(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.handler is not None:
            self.handler(event)

    def types(self, **match: Any) -> list[str]:
        return [e["type"] for e in list(self.events)
                if all(e.get(k) == v for k, v in match.items())]

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == event_type
                and all(e.get(k) == v for k, v in match.items())]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"timed out; events: {self.types()}"
            time.sleep(0.02)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.receiver.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
