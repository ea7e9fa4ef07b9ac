"""The transport contract (`corekit.transport.Transport`), on every transport.

Waiting is done with fetch timeouts, never bare sleeps: a fetch that must
come back empty is given the time the broker would need to misbehave.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

import pytest

from corekit.exceptions import LeaseLost
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


def test_priority_then_fifo_within_a_queue(transport: Transport) -> None:
    requires(transport, "priority")
    transport.publish([msg(1), msg(2, priority=1), msg(3, priority=9), msg(4, priority=1),
                       msg(6, priority=5)])
    assert ids(transport.fetch(["q"], 2, 1.0)) == [3, 6]
    assert ids(fetch_n(transport, ["q"], 3, 2.0)) == [2, 4, 1]


def test_queue_order_then_priority_then_fifo(transport: Transport) -> None:
    requires(transport, "priority")
    requires(transport, "queue_order")
    transport.publish([msg(1, "low"), msg(2, "high", priority=1), msg(3, "high", priority=9),
                       msg(4, "high", priority=1), msg(5, "other"), msg(6, "low", priority=5)])
    assert ids(transport.fetch(["high", "low"], 2, 1.0)) == [3, 2]
    assert ids(transport.fetch(["high", "low"], 10, 1.0)) == [4, 6, 1]
    assert transport.queue_size("other") == 1


def test_eta_is_held_by_the_broker_until_due(transport: Transport) -> None:
    requires(transport, "delayed_delivery")
    due = time.time() + 0.5
    transport.publish([msg(1, eta=due), msg(2), msg(3, eta=time.time() - 60)])
    if "delayed_counted" in transport.capabilities:
        assert transport.queue_size("q") == 3
    assert ids(fetch_n(transport, ["q"], 2, 1.0)) == [2, 3]
    assert transport.fetch(["q"], 10, 0.1) == []
    [m] = transport.fetch(["q"], 10, 3.0)
    assert m.headers["n"] == 1
    assert due <= time.time() < due + 1.0  # released when due: not early, not much later


def test_ack_removes_for_good(make_transport: MakeTransport) -> None:
    consumer, other = make_transport(**LEASE), make_transport(**LEASE)
    consumer.publish([msg(1)])
    batch = consumer.fetch(["q"], 10, 1.0)
    consumer.ack(batch)
    assert other.fetch(["q"], 10, PAST_LEASE) == []  # past the lease: nothing comes back
    assert consumer.queue_size("q") == 0


def test_acking_part_of_a_batch_leaves_the_rest_owned(make_transport: MakeTransport) -> None:
    holder = make_transport(**LEASE)
    requires(holder, "lease")
    holder.publish([msg(i) for i in range(6)])
    got = fetch_n(holder, ["q"], 6, 2.0)
    holder.ack([got[1], got[4], got[5]])  # not the oldest: no shortcut may cover it
    holder.reject([got[2]], requeue=False)
    holder.ack([got[3]])
    other = make_transport(**LEASE)
    back = other.fetch(["q"], 10, LAPSE)  # once holder's lease lapsed
    assert ids(back + other.fetch(["q"], 10, 0.5)) == [0]


def test_ack_and_fetch_acks_then_fetches(make_transport: MakeTransport) -> None:
    consumer, other = make_transport(**LEASE), make_transport(**LEASE)
    consumer.publish([msg(i) for i in range(4)])
    first = fetch_n(consumer, ["q"], 2, 2.0)
    rest = consumer.ack_and_fetch(first, ["q"], 10, 2.0)  # the worker's turn
    rest += consumer.ack_and_fetch([], ["q"], 10, 0.2)
    assert sorted(ids(first + rest)) == [0, 1, 2, 3]
    assert consumer.ack_and_fetch(rest, ["q"], 10, 0.05) == []  # acks with nothing to fetch
    assert other.fetch(["q"], 10, PAST_LEASE) == []  # all four acked: none comes back
    assert consumer.queue_size("q") == 0


def test_an_idle_fetch_wakes_for_a_delayed_message_when_due(transport: Transport) -> None:
    """A consumer waiting on an empty queue is woken by a delayed message
    when it is due, not only by a new publish."""
    transport.publish([msg(1, eta=time.time() + 0.3)])
    start = time.monotonic()
    got = transport.fetch(["q"], 10, 5.0)
    assert ids(got) == [1] and 0.2 <= time.monotonic() - start < 2.0


def test_reject_requeue_and_drop(transport: Transport) -> None:
    transport.publish([msg(1), msg(2)])
    first = fetch_n(transport, ["q"], 2, 1.0)
    transport.reject([first[0]], requeue=True)
    transport.reject([first[1]], requeue=False)
    [again] = transport.fetch(["q"], 10, 1.0)
    assert again.headers["n"] == 1 and again.redelivered is True
    transport.ack([again])
    assert transport.fetch(["q"], 10, 0.05) == []


def test_a_late_reject_cannot_steal_a_redelivered_message(make_transport: MakeTransport
                                                          ) -> None:
    requires(make_transport(), "lease")
    stale, taker, third = (make_transport(**LEASE) for _ in range(3))
    stale.publish([msg(1)])
    [old] = stale.fetch(["q"], 1, 1.0)
    [new] = taker.fetch(["q"], 1, LAPSE)  # after stale's lease lapsed
    assert new.redelivered is True
    stale.reject([old], requeue=True)  # stale wakes up and gives back what is not its own
    taker.heartbeat()
    assert third.fetch(["q"], 1, 0.1) == []
    taker.ack([new])


def test_a_late_ack_cannot_delete_a_redelivered_message(make_transport: MakeTransport
                                                      ) -> None:
    """The task ran on a consumer that was paused past its lease: its ack
    comes after the message went to another consumer, and is a no-op."""
    requires(make_transport(), "lease")
    stale, taker = make_transport(**LEASE), make_transport(**LEASE)
    stale.publish([msg(1), msg(2)])
    old = fetch_n(stale, ["q"], 2, 1.0)
    new = fetch_n(taker, ["q"], 2, LAPSE)  # after stale's lease lapsed
    assert sorted(ids(new)) == [1, 2]
    stale.ack(old[:1])
    stale.reject(old[1:], requeue=False)
    taker.reject(new, requeue=True)  # taker's copies are still there to give back
    assert sorted(ids(fetch_n(taker, ["q"], 2, 2.0))) == [1, 2]


def test_a_consumer_back_from_a_lapse_is_told_and_starts_afresh(make_transport: MakeTransport
                                                               ) -> None:
    """A lapsed consumer's heartbeat does not take its lease back; its next
    fetch raises LeaseLost instead of fetching (and makes none of its acks),
    and later calls work under a fresh lease that owns nothing it had."""
    requires(make_transport(), "lease")
    stale, taker = make_transport(**LEASE), make_transport(**LEASE)
    stale.publish([msg(1), msg(2)])
    old = fetch_n(stale, ["q"], 2, 1.0)
    new = fetch_n(taker, ["q"], 2, LAPSE)
    stale.heartbeat()
    with pytest.raises(LeaseLost):
        stale.ack_and_fetch(old, ["q"], 10, 0.1)
    assert stale.ack_and_fetch(old, ["q"], 10, 0.1) == []  # a fresh lease: old acks no-op
    stale.publish([msg(3)])
    [fresh] = stale.fetch(["q"], 10, 1.0)
    assert fresh.headers["n"] == 3
    stale.ack([fresh])
    stale.close()  # a consumer still consuming may be pushed what taker gives back (AMQP)
    taker.reject(new, requeue=True)  # taker's copies are still there to give back
    assert sorted(ids(fetch_n(taker, ["q"], 2, 2.0))) == [1, 2]


def test_renew_lease_raises_once_when_the_lease_lapsed(make_transport: MakeTransport
                                                       ) -> None:
    holder = make_transport(**LEASE)
    requires(holder, "lease")
    holder.publish([msg(1)])
    holder.fetch(["q"], 1, 1.0)
    holder.renew_lease()  # alive: nothing to say
    assert ids(make_transport(**LEASE).fetch(["q"], 1, LAPSE)) == [1]
    with pytest.raises(LeaseLost):
        holder.renew_lease()
    holder.renew_lease()  # the fresh lease is live


def test_leases_are_timed_by_the_brokers_clock(make_transport: MakeTransport,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A consumer whose clock runs 30 s ahead does not take the messages of
    a consumer that heartbeats, nor does one whose clock is 30 s behind
    lose its own: only the broker's clock judges leases."""
    first = make_transport()
    requires(first, "lease")
    if first.scheme == "amqp":
        pytest.skip("amqp://: the lease is the connection, timed by RabbitMQ's heartbeat "
                    "timer; corekit compares no time (and patching time.time under a live "
                    "py-amqp connection stalls its deliveries, which says nothing of leases)")
    real = time.time

    def clock(skew: float) -> None:
        monkeypatch.setattr(time, "time", lambda: real() + skew)

    for holder_skew, other_skew in ((0.0, 30.0), (-30.0, 0.0)):
        holder, other = make_transport(**LEASE), make_transport(**LEASE)
        clock(holder_skew)
        holder.publish([msg(1)])
        [held] = holder.fetch(["q"], 1, 1.0)
        deadline = time.monotonic() + 1.5  # three lease periods
        while time.monotonic() < deadline:
            clock(holder_skew)
            holder.heartbeat()
            clock(other_skew)
            assert other.fetch(["q"], 1, 0.1) == []
        clock(holder_skew)
        holder.ack([held])
    monkeypatch.setattr(time, "time", real)


def test_dead_letters_keep_the_message_and_replay(make_transport: MakeTransport) -> None:
    transport = make_transport(**LEASE)
    requires(transport, "dead_letter")
    transport.publish([msg(1), msg(2, priority=4)])
    by_n = {m.headers["n"]: m for m in fetch_n(transport, ["q"], 2, 1.0)}
    transport.dead_letter(by_n[2], "cannot decode: reason one")
    transport.dead_letter(by_n[1], "unknown task")
    letters = transport.dead_letters()
    assert [(d.message.headers["n"], d.reason) for d in letters] == [
        (2, "cannot decode: reason one"), (1, "unknown task")]
    m = letters[0].message
    assert (m.body, m.queue, m.content_type, m.content_encoding, m.priority) == (
        b"\x00body-2\xff", "q", "application/x-msgpack", "binary", 4)
    assert m.properties["correlation_id"] == "2" and m.routing_key == "q"
    assert letters[0].failed_at > 0 and len(transport.dead_letters(limit=1)) == 1
    # dead-lettering acked the deliveries: they do not come back past the lease
    # (`transport` heartbeats meanwhile: a silent one would lose its lease)
    other = make_transport(**LEASE)
    deadline = time.monotonic() + PAST_LEASE
    while time.monotonic() < deadline:
        transport.heartbeat()
        assert other.fetch(["q"], 10, 0.1) == []
    assert transport.replay_dead_letters([letters[1].id]) == 1
    assert [d.reason for d in transport.dead_letters()] == ["cannot decode: reason one"]
    [replayed] = transport.fetch(["q"], 10, 1.0)
    assert replayed.headers["n"] == 1 and replayed.redelivered is False
    assert transport.replay_dead_letters([]) == 0
    assert transport.replay_dead_letters() == 1 and transport.dead_letters() == []
    assert ids(transport.fetch(["q"], 10, 1.0)) == [2]


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


def test_a_lapsed_lease_is_redelivered(make_transport: MakeTransport) -> None:
    silent = make_transport(**LEASE)
    requires(silent, "lease")
    other = make_transport(**LEASE)
    silent.publish([msg(1), msg(2)])
    taken = fetch_n(silent, ["q"], 2, 1.0)  # ... and then this consumer goes silent
    assert ids(taken) == [1, 2]
    assert other.fetch(["q"], 10, 0.1) == []  # the lease still holds
    back = fetch_n(other, ["q"], 2, LAPSE)
    assert ids(back) == [1, 2] and all(m.redelivered for m in back)
    other.ack(back)


def test_a_heartbeating_consumer_keeps_its_messages(make_transport: MakeTransport) -> None:
    holder = make_transport(**LEASE)
    requires(holder, "lease")
    other = make_transport(**LEASE)
    holder.publish([msg(1)])
    [held] = holder.fetch(["q"], 1, 1.0)
    deadline = time.monotonic() + 1.5  # three lease periods
    while time.monotonic() < deadline:
        holder.heartbeat()
        assert other.fetch(["q"], 1, 0.1) == []
    holder.ack([held])
    assert other.fetch(["q"], 1, 0.05) == []


def test_a_consumer_busy_fetching_keeps_its_messages(make_transport: MakeTransport) -> None:
    holder = make_transport(**LEASE)
    requires(holder, "lease")
    other = make_transport(**LEASE)
    holder.publish([msg(1)])
    [held] = holder.fetch(["q"], 1, 1.0)
    waiting = threading.Thread(target=holder.fetch, args=(["empty"], 1, 1.2))
    waiting.start()  # a long fetch, no heartbeat: fetching is a sign of life too
    assert other.fetch(["q"], 1, 1.1) == []  # two lease periods
    waiting.join(5)
    holder.ack([held])


def test_token_buckets_are_shared_by_every_consumer(make_transport: MakeTransport) -> None:
    one, two = make_transport(), make_transport()
    requires(one, "rate_limit")
    # both connected first: a TLS handshake between the two takes below would
    # pass for refill time (the bucket is timed by the broker's clock)
    assert two.take_tokens("t.warm", 10.0, 1.0, 1)[0] == 1
    assert one.take_tokens("t.x", 10.0, 3.0, 2) == (2, 0.0)  # full when new: 3 tokens
    granted, wait = two.take_tokens("t.x", 10.0, 3.0, 5)
    assert granted == 1 and 0.05 < wait <= 0.1 + 1e-6  # one left; the next in 0.1 s
    assert two.take_tokens("t.other", 10.0, 1.0, 1)[0] == 1  # buckets are per key
    start = time.monotonic()
    got = 0
    while got < 5:  # refills at 10/s: five more tokens take about half a second
        granted, wait = one.take_tokens("t.x", 10.0, 3.0, 5 - got)
        got += granted
        assert time.monotonic() - start < 5
        time.sleep(wait)  # the passing of time is what is under test
    assert 0.35 < time.monotonic() - start < 5  # never faster than the rate
