"""The transport contract, on every transport: acks and leases.  A message
fetched is owned by its consumer until acked, rejected or its lease lapses
(no heartbeat, no fetch); an ack or reject from a consumer whose lease
lapsed cannot touch the copy another consumer now owns.

Waiting is done with fetch timeouts, never bare sleeps: a fetch that must
come back empty is given the time the broker would need to misbehave.
"""
from __future__ import annotations

import threading
import time

import pytest

from corekit.exceptions import LeaseLost
from transport_helpers import LAPSE, LEASE, PAST_LEASE, MakeTransport, fetch_n, ids, msg, requires


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
