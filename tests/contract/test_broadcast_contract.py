"""Broadcast (`Transport.publish_broadcast`, `Transport.subscribe_broadcast`)
on every transport that declares the ``"broadcast"`` capability.

Waiting is done with `Subscription.get` timeouts, never bare sleeps: a get
that must come back empty is given the time a broker would need to misbehave.
"""
from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from corekit.pluginmanager import default_manager
from corekit.messages import Message
from corekit.transport import BROADCAST_EXCHANGE_TYPES, Subscription, Transport

MakeTransport = Callable[..., Transport]
Subscribe = Callable[..., Subscription]

REPLIES, EVENTS = "reply.celery.pidbox", "celeryev"


def msg(n: int) -> Message:
    return Message(body=b"\x00body-%d\xff" % n, headers={"id": str(n), "task": "t", "n": n},
                   properties={"correlation_id": str(n), "reply_to": "r"},
                   content_type="application/x-msgpack", content_encoding="binary",
                   exchange="not-the-broadcast-exchange", routing_key=f"rk{n}")


def ids(messages: list[Message]) -> list[int]:
    return [m.headers["n"] for m in messages]


def requires(transport: Transport, capability: str) -> None:
    if capability not in transport.capabilities:
        pytest.skip(f"{transport.scheme}:// does not declare {capability!r}")


def collect(subscription: Subscription, count: int, timeout: float = 10.0) -> list[Message]:
    """Get until *count* messages arrived or *timeout* passed."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        got += subscription.get(left)
    return got


@pytest.fixture
def exchange() -> str:
    """A name no other test (or xdist worker on a shared server) uses."""
    return f"ctl-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(make_transport: MakeTransport) -> Transport:
    transport = make_transport()
    requires(transport, "broadcast")
    return transport


@pytest.fixture
def subscribe(make_transport: MakeTransport, publisher: Transport
              ) -> Iterator[Subscribe]:
    """``subscribe(*exchanges)``: a subscription on a transport of its own,
    closed after the test."""
    made: list[Subscription] = []

    def make(*exchanges: str, routing_key: str | None = None) -> Subscription:
        subscription = make_transport().subscribe_broadcast(list(exchanges), routing_key)
        made.append(subscription)
        return subscription

    yield make
    for subscription in made:
        subscription.close()


def test_every_subscriber_gets_every_message_in_order(publisher: Transport, subscribe: Subscribe,
                                                      exchange: str) -> None:
    first, second = subscribe(exchange), subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(i) for i in range(5)])
    publisher.publish_broadcast(exchange, [msg(i) for i in range(5, 10)])
    for subscription in (first, second):
        got = collect(subscription, 10)
        assert ids(got) == list(range(10))
        assert all(m.exchange == exchange and m.delivery_tag is None for m in got)
        assert subscription.get(0.1) == []  # each message once


def test_a_subscriber_of_another_exchange_gets_nothing(publisher: Transport,
                                                       subscribe: Subscribe,
                                                       exchange: str) -> None:
    other, listening = subscribe(exchange + "-other"), subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(1)])
    assert ids(collect(listening, 1)) == [1]
    assert other.get(0.2) == []


def test_one_subscription_to_several_exchanges(publisher: Transport, subscribe: Subscribe,
                                               exchange: str) -> None:
    both = subscribe(exchange + "-a", exchange + "-b")
    publisher.publish_broadcast(exchange + "-a", [msg(1)])
    publisher.publish_broadcast(exchange + "-b", [msg(2)])
    publisher.publish_broadcast(exchange + "-c", [msg(3)])
    publisher.publish_broadcast(exchange + "-a", [msg(4)])
    got = collect(both, 3)
    assert [(m.headers["n"], m.exchange) for m in got] == [
        (1, exchange + "-a"), (2, exchange + "-b"), (4, exchange + "-a")]
    assert both.get(0.1) == []


def test_messages_published_before_subscribing_are_not_seen(publisher: Transport,
                                                             subscribe: Subscribe,
                                                             exchange: str) -> None:
    publisher.publish_broadcast(exchange, [msg(1)])  # nobody listens: dropped
    early = subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(2)])
    late = subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(3)])
    assert ids(collect(early, 2)) == [2, 3]
    assert ids(collect(late, 1)) == [3]
    assert early.get(0.1) == [] and late.get(0.0) == []


def test_fields_are_preserved_and_copies_are_independent(publisher: Transport,
                                                         subscribe: Subscribe,
                                                         exchange: str) -> None:
    first, second = subscribe(exchange), subscribe(exchange)
    sent = msg(1)
    publisher.publish_broadcast(exchange, [sent])
    sent.headers["n"], sent.properties["reply_to"] = 99, "sender changed it"
    [m] = collect(first, 1)
    assert m.body == b"\x00body-1\xff" and m.headers == {"id": "1", "task": "t", "n": 1}
    assert m.properties == {"correlation_id": "1", "reply_to": "r"}
    assert (m.content_type, m.content_encoding) == ("application/x-msgpack", "binary")
    assert (m.exchange, m.routing_key, m.delivery_tag) == (exchange, "rk1", None)
    m.headers["n"], m.properties["reply_to"] = 100, "first changed it"
    [other] = collect(second, 1)
    assert other.headers["n"] == 1 and other.properties["reply_to"] == "r"


def test_get_times_out_empty(subscribe: Subscribe, exchange: str) -> None:
    subscription = subscribe(exchange)
    start = time.monotonic()
    assert subscription.get(0.2) == []
    assert 0.15 <= time.monotonic() - start < 2.0
    start = time.monotonic()
    assert subscription.get(0.0) == []
    assert time.monotonic() - start < 1.0


def test_get_wakes_when_a_message_arrives(make_transport: MakeTransport, publisher: Transport,
                                          subscribe: Subscribe, exchange: str) -> None:
    subscription, idle = subscribe(exchange), subscribe(exchange + "-idle")
    got: list[Message] = []
    returned_at: list[float] = []

    def wait() -> None:
        got.extend(subscription.get(10.0))
        returned_at.append(time.monotonic())

    thread = threading.Thread(target=wait)
    thread.start()
    idle.get(0.1)  # let the subscriber start waiting
    published_at = time.monotonic()
    make_transport().publish_broadcast(exchange, [msg(7)])
    thread.join(10)
    assert ids(got) == [7]
    assert returned_at[0] - published_at < 1.0  # woken, not timed out


def test_close_is_idempotent_and_stops_delivery(publisher: Transport, subscribe: Subscribe,
                                                 exchange: str) -> None:
    closing, staying = subscribe(exchange), subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(1)])
    assert ids(collect(closing, 1)) == [1]
    closing.close()
    closing.close()
    publisher.publish_broadcast(exchange, [msg(2)])
    start = time.monotonic()
    assert closing.get(5.0) == []
    assert time.monotonic() - start < 1.0  # a closed subscription does not wait
    assert ids(collect(staying, 2)) == [1, 2]


def test_a_subscription_is_a_context_manager(publisher: Transport, exchange: str) -> None:
    with publisher.subscribe_broadcast([exchange]) as subscription:
        assert isinstance(subscription, Subscription)
        publisher.publish_broadcast(exchange, [msg(1)])
        assert ids(collect(subscription, 1)) == [1]
    publisher.publish_broadcast(exchange, [msg(2)])
    assert subscription.get(0.0) == []


def test_a_subscription_outlives_its_transport(make_transport: MakeTransport,
                                               publisher: Transport, exchange: str) -> None:
    owner = make_transport()
    with owner.subscribe_broadcast([exchange]) as subscription:
        owner.close()
        publisher.publish_broadcast(exchange, [msg(1)])
        assert ids(collect(subscription, 1)) == [1]


def test_a_batch_of_500_arrives_complete_and_in_order(publisher: Transport,
                                                      subscribe: Subscribe,
                                                      exchange: str) -> None:
    subscription = subscribe(exchange)
    publisher.publish_broadcast(exchange, [msg(i) for i in range(500)])
    publisher.publish_broadcast(exchange, [])
    assert ids(collect(subscription, 500)) == list(range(500))
    assert subscription.get(0.1) == []


def test_subscribing_to_nothing_is_an_error(publisher: Transport) -> None:
    with pytest.raises(ValueError):
        publisher.subscribe_broadcast([])


def keyed(n: int, routing_key: str) -> Message:
    m = msg(n)
    m.routing_key = routing_key
    return m


def test_a_routing_key_picks_messages_on_a_fanout_exchange(publisher: Transport,
                                                           subscribe: Subscribe,
                                                           exchange: str) -> None:
    picky, everything = subscribe(exchange, routing_key="a"), subscribe(exchange)
    publisher.publish_broadcast(exchange, [keyed(1, "a"), keyed(2, "b"), keyed(3, "")])
    publisher.publish_broadcast(exchange, [keyed(4, "a.b"), keyed(5, "a")])
    assert ids(collect(everything, 5)) == [1, 2, 3, 4, 5]
    assert ids(collect(picky, 2)) == [1, 5]
    assert picky.get(0.2) == []


def test_replies_reach_only_the_client_they_are_addressed_to(publisher: Transport,
                                                             subscribe: Subscribe) -> None:
    """``reply.celery.pidbox`` is a direct exchange: each client subscribes
    with its own node id as routing key."""
    assert BROADCAST_EXCHANGE_TYPES[REPLIES] == "direct"
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    me, them = subscribe(REPLIES, routing_key=mine), subscribe(REPLIES, routing_key=theirs)
    publisher.publish_broadcast(REPLIES, [keyed(1, theirs), keyed(2, mine), keyed(3, "x"),
                                          keyed(4, mine)])
    assert [(m.headers["n"], m.routing_key, m.exchange) for m in collect(me, 2)] == [
        (2, mine, REPLIES), (4, mine, REPLIES)]
    assert ids(collect(them, 1)) == [1]
    assert me.get(0.2) == [] and them.get(0.0) == []


def test_a_direct_exchange_needs_a_routing_key(publisher: Transport) -> None:
    with pytest.raises(ValueError, match="routing_key"):
        publisher.subscribe_broadcast([REPLIES])
    with pytest.raises(ValueError, match="routing_key"):
        publisher.subscribe_broadcast(["celery.pidbox", REPLIES])


def test_events_routing_keys_are_topic_patterns(publisher: Transport,
                                                subscribe: Subscribe) -> None:
    """``celeryev`` is a topic exchange: ``*`` is one word, ``#`` any."""
    assert BROADCAST_EXCHANGE_TYPES[EVENTS] == "topic"
    tasks, succeeded = subscribe(EVENTS, routing_key="task.#"), subscribe(
        EVENTS, routing_key="task.succeeded")
    workers, everything = subscribe(EVENTS, routing_key="worker.*"), subscribe(EVENTS)
    keys = ["task.received", "worker.heartbeat", "task.succeeded", "worker.online",
            "task.failed", "task"]
    publisher.publish_broadcast(EVENTS, [keyed(i, key) for i, key in enumerate(keys)])
    assert ids(collect(everything, 6)) == [0, 1, 2, 3, 4, 5]
    assert ids(collect(tasks, 4)) == [0, 2, 4, 5]
    assert ids(collect(workers, 2)) == [1, 3]
    assert ids(collect(succeeded, 1)) == [2]
    for subscription in (tasks, succeeded, workers, everything):
        assert subscription.get(0.1) == []


def test_celery_declares_the_same_exchanges_without_conflict(make_transport: MakeTransport,
                                                             publisher: Transport) -> None:
    """On a broker with real exchanges, corekit declares ``celery.pidbox``,
    ``reply.celery.pidbox`` and ``celeryev`` exactly as kombu's mailbox and
    Celery's events do: either may declare first, and neither gets
    PRECONDITION_FAILED."""
    requires(publisher, "exchanges")
    from celery.events.event import get_exchange
    from kombu import Connection
    from kombu.pidbox import Mailbox

    from corekit.plugins.amqp.link import tls_options

    url, tls = tls_options(publisher.url, None)

    def declare_like_celery() -> None:
        with Connection(url, ssl=tls) as conn:
            mailbox = Mailbox("celery", type="fanout")(conn)
            channel = conn.default_channel
            for exchange in (mailbox.exchange, mailbox.reply_exchange, get_exchange(conn)):
                exchange(channel).declare()

    declare_like_celery()
    with publisher.subscribe_broadcast(["celery.pidbox", EVENTS]) as requests, \
            publisher.subscribe_broadcast([REPLIES], routing_key="me") as replies:
        declare_like_celery()
        sender = make_transport()  # a fresh publisher link declares again
        sender.publish_broadcast("celery.pidbox", [keyed(1, "")])
        sender.publish_broadcast(EVENTS, [keyed(2, "task.sent")])
        sender.publish_broadcast(REPLIES, [keyed(3, "me")])
        assert ids(collect(requests, 2)) == [1, 2]
        assert ids(collect(replies, 1)) == [3]
    declare_like_celery()


def test_a_transport_without_broadcast_says_so() -> None:
    class Plain(Transport):
        scheme = "plain"

    plain = Plain("plain://")
    assert "broadcast" not in plain.capabilities
    with pytest.raises(NotImplementedError, match="plain://"):
        plain.publish_broadcast("x", [msg(1)])
    with pytest.raises(NotImplementedError, match="plain://"):
        plain.subscribe_broadcast(["x"])


#: Subscribes to ``requests``, says ``ready``, answers the first request on
#: ``replies`` with its body + b" back", prints how many it got.
CHILD = textwrap.dedent("""
    import sys, time
    from corekit.pluginmanager import default_manager
    from corekit.messages import Message

    transport = default_manager().get("transports", "sqlite")(sys.argv[1], {})
    with transport.subscribe_broadcast(["requests"]) as subscription:
        print("ready", flush=True)
        got, deadline = [], time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            got = subscription.get(1.0)
    transport.publish_broadcast("replies", [
        Message(body=m.body + b" back", headers=m.headers, properties={},
                content_type=m.content_type, routing_key=m.routing_key) for m in got])
    print(len(got), flush=True)
""")


def test_sqlite_broadcast_crosses_processes(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'broadcast.sqlite3'}"
    transport = default_manager().get("transports", "sqlite")(url, {})
    child = subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE,
                             text=True)
    try:
        with transport.subscribe_broadcast(["replies"]) as replies:
            assert child.stdout is not None
            ready, _, _ = select.select([child.stdout], [], [], 30)
            assert ready, "the child did not subscribe in time"
            assert child.stdout.readline().strip() == "ready"
            transport.publish_broadcast("requests", [msg(5)])
            [reply] = collect(replies, 1, timeout=20)
        out, _ = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        transport.close()
    assert child.returncode == 0 and out.strip() == "1"
    assert reply.body == b"\x00body-5\xff back" and reply.headers["n"] == 5
    assert (reply.exchange, reply.routing_key) == ("replies", "rk5")
