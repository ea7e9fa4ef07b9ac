"""The transport contract, on every transport: what a transport declares in
``capabilities`` (priorities, queue order, delayed delivery, dead letters,
token buckets for rate limits), each test skipped where it is not declared.

Waiting is done with fetch timeouts, never bare sleeps: a fetch that must
come back empty is given the time the broker would need to misbehave.
"""
from __future__ import annotations

import time

from corekit.transport import Transport
from transport_helpers import LEASE, PAST_LEASE, MakeTransport, fetch_n, ids, msg, requires


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


def test_an_idle_fetch_wakes_for_a_delayed_message_when_due(transport: Transport) -> None:
    """A consumer waiting on an empty queue is woken by a delayed message
    when it is due, not only by a new publish."""
    transport.publish([msg(1, eta=time.time() + 0.3)])
    start = time.monotonic()
    got = transport.fetch(["q"], 10, 5.0)
    assert ids(got) == [1] and 0.2 <= time.monotonic() - start < 2.0


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
