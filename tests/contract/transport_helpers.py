"""Shared by the transport contract suites (test_transport_contract.py,
test_transport_lease_contract.py, test_transport_features_contract.py): the
messages they send, how long leases last, and how they fetch.
"""
from __future__ import annotations

import time
from typing import Callable

import pytest

from corekit.messages import Message
from corekit.transport import Transport

MakeTransport = Callable[..., Transport]
LEASE = {"lease_timeout": 0.5, "heartbeat": 0.1}
#: Long enough for a lapsed lease to be noticed and its messages to come back.
PAST_LEASE = 1.0
#: The longest a lapsed lease may take to show: AMQP's is a missed broker
#: heartbeat (whole seconds), later still on a loaded machine.  Waits this
#: long return as soon as the message is back.
LAPSE = 10.0


def msg(n: int, queue: str = "q", priority: int = 0, eta: float | None = None) -> Message:
    """Message *n*, routed as Celery routes a queue it creates on demand:
    through the exchange of the queue's name, with the queue's name as key."""
    return Message(body=b"\x00body-%d\xff" % n, headers={"id": str(n), "task": "t", "n": n},
                   properties={"correlation_id": str(n), "reply_to": "r", "priority": priority},
                   content_type="application/x-msgpack", content_encoding="binary",
                   queue=queue, exchange=queue, routing_key=queue, priority=priority, eta=eta)


def ids(messages: list[Message]) -> list[int]:
    return [m.headers["n"] for m in messages]


def fetch_n(transport: Transport, queues: list[str], n: int, timeout: float) -> list[Message]:
    """Fetch until *n* messages came (or *timeout*): a push-based broker may
    split what arrives together over two fetches."""
    deadline = time.monotonic() + timeout
    got: list[Message] = []
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += transport.fetch(queues, n - len(got), left)
    return got


def requires(transport: Transport, capability: str) -> None:
    if capability not in transport.capabilities:
        pytest.skip(f"{transport.scheme}:// does not declare {capability!r}")
