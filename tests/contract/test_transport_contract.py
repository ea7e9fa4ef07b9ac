"""The transport contract (`corekit.transport.Transport`), on every transport:
messages in and out (a round trip, order, reject, purge, fetches that wait,
many threads and consumers, close).
Leases and acks: test_transport_lease_contract.py; what a transport
declares in ``capabilities``: test_transport_features_contract.py.

Waiting is done with fetch timeouts, never bare sleeps: a fetch that must
come back empty is given the time the broker would need to misbehave.
"""
from __future__ import annotations

import threading
import time

from corekit.messages import Message
from corekit.transport import Transport
from transport_helpers import MakeTransport, fetch_n, ids, msg


def test_round_trip_preserves_everything(transport: Transport) -> None:
    transport.publish([msg(1, priority=3)])
    [m] = transport.fetch(["q"], 10, 1.0)
    assert m.body == b"\x00body-1\xff" and m.headers == {"id": "1", "task": "t", "n": 1}
    # a broker may add properties of its own (AMQP's delivery_mode), never change ours
    assert {k: m.properties[k] for k in ("correlation_id", "reply_to", "priority")} == {
        "correlation_id": "1", "reply_to": "r", "priority": 3}
    assert (m.content_type, m.content_encoding) == ("application/x-msgpack", "binary")
    assert (m.queue, m.exchange, m.routing_key, m.priority) == ("q", "q", "q", 3)
    assert m.delivery_tag is not None and m.redelivered is False
    transport.ack([m])
    assert transport.fetch(["q"], 10, 0.05) == []


def test_a_delivered_message_is_the_consumers_own_copy(transport: Transport) -> None:
    sent = msg(1)
    transport.publish([sent])
    sent.headers["n"] = 99
    [m] = transport.fetch(["q"], 1, 1.0)
    m.headers["n"], m.properties["reply_to"] = 100, "changed"
    transport.reject([m], requeue=True)
    [again] = transport.fetch(["q"], 1, 1.0)
    assert again.headers["n"] == 1 and again.properties["reply_to"] == "r"
    transport.ack([again])


def test_batch_of_1000_in_and_out_in_order(transport: Transport) -> None:
    transport.publish([msg(i) for i in range(1000)])
    assert transport.queue_size("q") == 1000
    seen: list[int] = []
    while len(seen) < 1000:
        batch = transport.fetch(["q"], 128, 1.0)
        assert 0 < len(batch) <= 128
        seen += ids(batch)
        transport.ack(batch)
    assert seen == list(range(1000))
    assert transport.queue_size("q") == 0 and transport.fetch(["q"], 10, 0.05) == []


def test_reject_requeue_and_drop(transport: Transport) -> None:
    transport.publish([msg(1), msg(2)])
    first = fetch_n(transport, ["q"], 2, 1.0)
    transport.reject([first[0]], requeue=True)
    transport.reject([first[1]], requeue=False)
    [again] = transport.fetch(["q"], 10, 1.0)
    assert again.headers["n"] == 1 and again.redelivered is True
    transport.ack([again])
    assert transport.fetch(["q"], 10, 0.05) == []


def test_purge_and_queue_size(transport: Transport) -> None:
    transport.publish([msg(i, "a") for i in range(4)] + [msg(9, "b")])
    [held] = transport.fetch(["a"], 1, 1.0)
    later = time.time() + 60
    counted = "delayed_counted" in transport.capabilities
    transport.publish([msg(10, "a", eta=later)] if counted else [msg(10, "a")])
    assert transport.queue_size("a") == 4  # three waiting + one not yet due, not the held one
    assert transport.purge(["a"]) == 4
    assert transport.queue_size("a") == 0 and transport.queue_size("b") == 1
    assert transport.purge(["a", "nothing-here"]) == 0
    transport.reject([held], requeue=True)  # a purge leaves deliveries in flight alone
    assert ids(transport.fetch(["a"], 10, 1.0)) == [0]


def test_fetch_times_out_empty(transport: Transport) -> None:
    start = time.monotonic()
    assert transport.fetch(["empty"], 10, 0.2) == []
    assert 0.15 <= time.monotonic() - start < 2.0


def test_fetch_wakes_when_a_message_arrives(make_transport: MakeTransport) -> None:
    consumer, producer = make_transport(), make_transport()
    got: list[Message] = []
    thread = threading.Thread(target=lambda: got.extend(consumer.fetch(["q"], 1, 10.0)))
    thread.start()
    producer.fetch(["elsewhere"], 1, 0.05)  # let the consumer start waiting
    producer.publish([msg(7)])
    thread.join(10)
    assert ids(got) == [7]


def test_one_transport_publishes_from_many_threads(transport: Transport) -> None:
    def send(t: int) -> None:
        for i in range(10):
            transport.publish([msg(t * 100 + i * 10 + k) for k in range(5)])

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    got = fetch_n(transport, ["q"], 400, 2.0)
    assert sorted(ids(got)) == sorted(t * 100 + i * 10 + k
                                     for t in range(8) for i in range(10) for k in range(5))


def test_each_message_goes_to_one_consumer(make_transport: MakeTransport) -> None:
    make_transport().publish([msg(i) for i in range(400)])
    consumers = [make_transport() for _ in range(4)]
    seen: list[list[int]] = [[] for _ in consumers]

    def drain(i: int) -> None:
        held: list[Message] = []  # acked only at the end: nothing is free to take twice
        for _ in range(100):
            batch = consumers[i].fetch(["q"], 7, 0.2)
            if not batch:
                break
            held += batch
        seen[i] += ids(held)
        consumers[i].ack(held)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(n for s in seen for n in s) == list(range(400))


def test_close_then_use_again(transport: Transport) -> None:
    transport.publish([msg(1)])
    transport.close()
    transport.close()
    [m] = transport.fetch(["q"], 1, 1.0)
    transport.ack([m])
    assert transport.queue_size("q") == 0
