"""The transport contract (corekit.transport.Transport), on every transport."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from corekit.transport import Message


def msg(n: int, queue: str = "q", priority: int = 0, eta: float | None = None) -> Message:
    return Message(body=b"\x00body-%d\xff" % n, headers={"id": str(n), "task": "t", "n": n},
                   properties={"correlation_id": str(n), "reply_to": "r"},
                   content_type="application/x-msgpack", content_encoding="binary",
                   queue=queue, exchange="ex", routing_key=f"rk{n}", priority=priority, eta=eta)


def ids(messages: list[Message]) -> list[int]:
    return [m.headers["n"] for m in messages]


def test_round_trip_preserves_everything(transport: Any) -> None:
    transport.publish([msg(1)])
    [m] = transport.fetch(["q"], 10, 1.0)
    assert m.body == b"\x00body-1\xff" and m.headers == {"id": "1", "task": "t", "n": 1}
    assert m.properties["correlation_id"] == "1" and m.properties["reply_to"] == "r"
    assert (m.content_type, m.content_encoding, m.queue) == (
        "application/x-msgpack", "binary", "q")
    assert m.delivery_tag is not None and m.redelivered is False
    transport.ack([m])
    assert transport.fetch(["q"], 10, 0.05) == []


def test_batches_in_order(transport: Any) -> None:
    transport.publish([msg(i) for i in range(1000)])
    assert transport.queue_size("q") == 1000
    seen: list[int] = []
    while len(seen) < 1000:
        batch = transport.fetch(["q"], 128, 1.0)
        assert 0 < len(batch) <= 128
        seen += ids(batch)
        transport.ack(batch)
    assert seen == list(range(1000))
    assert transport.queue_size("q") == 0


def test_queue_order_then_priority(transport: Any) -> None:
    transport.publish([msg(1, "low"), msg(2, "high", priority=1), msg(3, "high", priority=9),
                       msg(4, "high", priority=1), msg(5, "other")])
    batch = transport.fetch(["high", "low"], 10, 1.0)
    assert ids(batch) == [3, 2, 4, 1]
    assert transport.queue_size("other") == 1


def test_eta_is_held_until_due(transport: Any) -> None:
    due = time.time() + 0.3
    transport.publish([msg(1, eta=due), msg(2)])
    assert ids(transport.fetch(["q"], 10, 0.0)) == [2]
    assert transport.fetch(["q"], 10, 0.1) == []
    [m] = transport.fetch(["q"], 10, 2.0)
    assert m.headers["n"] == 1 and time.time() >= due


def test_reject_requeue_and_drop(transport: Any) -> None:
    transport.publish([msg(1), msg(2)])
    first = transport.fetch(["q"], 10, 1.0)
    transport.reject([first[0]], requeue=True)
    transport.reject([first[1]], requeue=False)
    [again] = transport.fetch(["q"], 10, 1.0)
    assert again.headers["n"] == 1 and again.redelivered is True
    assert transport.fetch(["q"], 10, 0.05) == []


def test_dead_letters_and_replay(transport: Any) -> None:
    transport.publish([msg(1), msg(2)])
    batch = transport.fetch(["q"], 10, 1.0)
    transport.dead_letter(batch[0], "cannot decode: reason one")
    transport.dead_letter(batch[1], "unknown task")
    letters = transport.dead_letters()
    assert [(d.message.headers["n"], d.reason) for d in letters] == [
        (1, "cannot decode: reason one"), (2, "unknown task")]
    assert letters[0].message.body == b"\x00body-1\xff" and letters[0].failed_at > 0
    assert transport.fetch(["q"], 10, 0.05) == []
    assert transport.replay_dead_letters([letters[1].id]) == 1
    assert [d.reason for d in transport.dead_letters()] == ["cannot decode: reason one"]
    assert ids(transport.fetch(["q"], 10, 1.0)) == [2]
    assert transport.replay_dead_letters() == 1 and transport.dead_letters() == []


def test_purge_and_queue_size(transport: Any) -> None:
    transport.publish([msg(i, "a") for i in range(3)] + [msg(9, "b")])
    assert transport.queue_size("a") == 3
    assert transport.purge(["a"]) == 3
    assert transport.queue_size("a") == 0 and transport.queue_size("b") == 1


def test_fetch_times_out_empty(transport: Any) -> None:
    start = time.monotonic()
    assert transport.fetch(["empty"], 10, 0.2) == []
    assert 0.15 <= time.monotonic() - start < 2.0


def test_fetch_wakes_when_a_message_arrives(make_transport: Callable[..., Any]) -> None:
    consumer, producer = make_transport(), make_transport()
    got: list[Message] = []
    t = threading.Thread(target=lambda: got.extend(consumer.fetch(["q"], 1, 10.0)))
    t.start()
    producer.publish([msg(7)])
    t.join(10)
    assert ids(got) == [7]


def test_each_message_goes_to_one_consumer(make_transport: Callable[..., Any]) -> None:
    make_transport().publish([msg(i) for i in range(400)])
    consumers = [make_transport() for _ in range(4)]
    seen: list[list[int]] = [[] for _ in consumers]

    def drain(i: int) -> None:
        while True:
            batch = consumers[i].fetch(["q"], 7, 0.2)
            if not batch:
                return
            seen[i] += ids(batch)
            consumers[i].ack(batch)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = sorted(n for s in seen for n in s)
    assert everything == list(range(400))


def test_lapsed_lease_is_redelivered(make_transport: Callable[..., Any]) -> None:
    dead = make_transport(lease_timeout=0.3, heartbeat=0.1)
    alive = make_transport(lease_timeout=0.3, heartbeat=0.1)
    dead.publish([msg(1)])
    [taken] = dead.fetch(["q"], 1, 1.0)  # ... and then this consumer goes silent
    assert alive.fetch(["q"], 1, 0.1) == []
    [back] = alive.fetch(["q"], 1, 5.0)
    assert back.headers["n"] == 1 and back.redelivered is True
    assert taken.headers["n"] == 1


def test_heartbeating_consumer_keeps_its_messages(make_transport: Callable[..., Any]) -> None:
    holder = make_transport(lease_timeout=0.3, heartbeat=0.1)
    other = make_transport(lease_timeout=0.3, heartbeat=0.1)
    holder.publish([msg(1)])
    [held] = holder.fetch(["q"], 1, 1.0)
    deadline = time.monotonic() + 1.5  # five lease periods
    while time.monotonic() < deadline:
        holder.heartbeat()
        assert other.fetch(["q"], 1, 0.1) == []
    holder.ack([held])
    assert other.fetch(["q"], 1, 0.1) == []
