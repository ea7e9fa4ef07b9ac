"""The ack bookkeeping (`corekit.worker.acks.Acks`) on memory:// (no servers):
what is acked, requeued and dead-lettered, when, and what survives a broker
call that fails or a lapsed lease.  Messages are taken from a real in-memory
broker so that an ack, a requeue or a dead letter shows in its queues."""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import pytest

from corekit import Corekit
from corekit._speedups import Dispatcher
from corekit.messages import Message
from corekit.transport import Transport
from corekit.worker.acks import Acks
from corekit.worker.job import FailedMessage
from corekit.worker.result_writer import ResultWriter


class Flaky:
    """Wraps a transport: records the calls that change messages, and makes
    the next *n* calls of a method raise ConnectionError."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.failing: dict[str, int] = {}
        self.meanwhile: dict[str, Callable[[], None]] = {}
        #: (method, the ids of the messages it got) of each call made
        self.calls: list[tuple[str, list[str]]] = []

    def fail(self, method: str, times: int = 1,
             meanwhile: Callable[[], None] = lambda: None) -> None:
        """Fail *method* *times* times, calling *meanwhile* during the call
        (what another thread does while the broker call hangs)."""
        self.failing[method] = times
        self.meanwhile[method] = meanwhile

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.transport, name)
        if not self.failing.get(name):
            if name in ("ack", "reject"):
                def recorded(messages: list[Message], *args: Any, **kwargs: Any) -> Any:
                    self.calls.append((name, [m.headers["id"] for m in messages]))
                    return real(messages, *args, **kwargs)
                return recorded
            return real

        def broken(*args: Any, **kwargs: Any) -> Any:
            self.failing[name] -= 1
            self.meanwhile[name]()
            raise ConnectionError(f"{name}: broker gone")
        return broken


class Setup:
    def __init__(self, app: Corekit) -> None:
        self.app = app
        self.transport = app.connection()
        self.transport.connect()
        self.flaky = Flaky(self.transport)
        self.dispatcher = Dispatcher(lambda job: None, 100)
        self.results = ResultWriter(app.backend)
        self.dead: list[tuple[Message, str]] = []
        self.acks = Acks(self.flaky, self.dispatcher,  # type: ignore[arg-type]
                         self.results, self.dead_letter)

    def dead_letter(self, message: Message, reason: str) -> None:
        self.dead.append((message, reason))
        self.transport.dead_letter(message, reason)

    def take(self, n: int) -> list[Message]:
        """Publish *n* messages and fetch them (held unacked by this consumer)."""
        self.transport.publish([self.app.prepare_task("unit.t", (i,)) for i in range(n)])
        got = self.transport.fetch(["celery"], n, 1.0)
        assert len(got) == n
        return got

    def finish_on_dispatcher(self, ack: Message | None) -> None:
        """A job the dispatcher handed out finishes with *ack* (a late ack)."""
        self.dispatcher.add([object()])
        self.dispatcher.dispatch()
        self.dispatcher.done(None, ack)

    def unacked(self) -> int:
        return len(self.transport.broker.unacked)

    def queued(self) -> int:
        return self.transport.queue_size("celery")


@pytest.fixture
def s(memory_app: Corekit) -> Iterator[Setup]:
    setup = Setup(memory_app)
    yield setup
    setup.transport.close()


def test_nothing_pending_takes_nothing_and_sends_nothing(s: Setup) -> None:
    assert s.acks.take() == []
    s.flaky.fail("ack")
    s.acks.flush()  # no broker call for nothing: the failing ack is never made
    assert s.flaky.failing["ack"] == 1


def test_early_acks_are_taken_once(s: Setup) -> None:
    a, b = s.take(2)
    s.acks.pending.append(a)
    s.acks.pending.append(b)
    assert s.acks.take() == [a, b]
    assert s.acks.take() == []


def test_acks_from_every_source_go_in_one_batch(s: Setup) -> None:
    early, late, stored = s.take(3)
    s.acks.pending.append(early)
    s.finish_on_dispatcher(late)
    s.results.submit([], stored)
    s.results.start()
    s.results.flush()
    try:
        assert sorted(s.acks.take(), key=id) == sorted([early, late, stored], key=id)
    finally:
        s.results.stop()


def test_flush_acks_at_the_broker(s: Setup) -> None:
    got = s.take(3)
    s.acks.pending.extend(got)
    assert s.unacked() == 3
    s.acks.flush()
    assert s.unacked() == 0 and s.queued() == 0 and s.acks.take() == []


def test_acks_that_fail_to_send_are_sent_after_the_reconnect(s: Setup) -> None:
    first, second = s.take(2)
    s.acks.pending.append(first)
    s.flaky.fail("ack")
    with pytest.raises(ConnectionError):
        s.acks.flush()
    assert s.unacked() == 2  # nothing acked, nothing lost
    s.acks.pending.append(second)
    assert s.acks.take() == [first, second]  # the kept ones first


def test_put_back_acks_go_before_newer_ones(s: Setup) -> None:
    old, new = s.take(2)
    s.acks.pending.append(new)
    s.acks.put_back([old])
    assert s.acks.take() == [old, new]


def test_pending_is_one_list_for_the_consumers_bound_append(s: Setup) -> None:
    """The consumer binds ``acks.pending.append`` once; taking, putting back
    and a lapsed lease must change that list in place, never replace it."""
    append = s.acks.pending.append
    a, b, c = s.take(3)
    append(a)
    assert s.acks.take() == [a]
    s.acks.put_back([b])
    s.acks.forget_lease([])
    append(c)
    assert s.acks.take() == [c]


def test_a_requeue_from_another_thread_is_rejected_back_to_the_queue(s: Setup) -> None:
    (message,) = s.take(1)
    thread = threading.Thread(target=s.acks.requeue, args=(message,))
    thread.start()
    thread.join()
    assert s.queued() == 0  # not before the consumer's thread takes
    assert s.acks.take() == []  # a requeue is no ack
    assert s.queued() == 1 and s.unacked() == 0
    assert s.transport.fetch(["celery"], 1, 1.0)[0].redelivered


def test_requeues_that_fail_are_kept_in_order(s: Setup) -> None:
    a, b, c = s.take(3)
    s.acks.requeue(a)
    s.acks.requeue(b)
    s.flaky.fail("reject", meanwhile=lambda: s.acks.requeue(c))  # a pool thread, meanwhile
    with pytest.raises(ConnectionError):
        s.acks.take()
    s.acks.take()
    assert s.flaky.calls == [("reject", [m.headers["id"] for m in (a, b, c)])]
    assert s.queued() == 3


def test_a_failed_late_acked_task_is_dead_lettered_not_acked(s: Setup) -> None:
    good, failed = s.take(2)
    s.results.submit([], good)
    s.results.submit([], FailedMessage(failed, "task failed: RuntimeError: boom"))
    s.results.start()
    s.results.flush()
    try:
        assert s.acks.take() == [good]
    finally:
        s.results.stop()
    assert s.dead == [(failed, "task failed: RuntimeError: boom")]
    (letter,) = s.transport.dead_letters()
    assert letter.message.headers["id"] == failed.headers["id"]


def test_a_dead_letter_the_broker_refuses_is_sent_at_the_next_take(s: Setup) -> None:
    one, two = s.take(2)
    s.results.submit([], FailedMessage(one, "task failed: one"))
    s.results.submit([], FailedMessage(two, "task failed: two"))
    s.results.start()
    s.results.flush()
    s.results.stop()
    refused = [0]

    def refuse_second(message: Message, reason: str) -> None:
        if message is two and not refused[0]:
            refused[0] += 1
            raise ConnectionError("broker gone")
        s.dead_letter(message, reason)
    s.acks._dead_letter = refuse_second  # type: ignore[assignment]
    with pytest.raises(ConnectionError):
        s.acks.take()
    assert [m for m, _ in s.dead] == [one]
    s.acks.take()
    assert [m for m, _ in s.dead] == [one, two]  # each once, in order
    assert len(s.transport.dead_letters()) == 2


def test_a_lapsed_lease_drops_everything_pending(s: Setup) -> None:
    early, late, requeued, failed = s.take(4)
    s.acks.pending.append(early)
    s.finish_on_dispatcher(late)
    s.acks.requeue(requeued)
    s.results.submit([], FailedMessage(failed, "task failed"))
    s.results.start()
    s.results.flush()
    s.results.stop()
    s.acks.forget_lease([])
    assert s.acks.take() == []
    assert s.dead == [] and s.queued() == 0 and s.unacked() == 4


def test_the_late_acks_of_jobs_running_when_the_lease_lapsed_are_dropped(s: Setup) -> None:
    running, requeued, failed, later = s.take(4)
    s.acks.forget_lease([running, requeued, failed])
    s.finish_on_dispatcher(running)
    s.acks.requeue(requeued)
    s.results.submit([], FailedMessage(failed, "task failed"))
    s.results.start()
    s.results.flush()
    s.results.stop()
    s.acks.pending.append(later)  # taken after the lease was renewed: acked
    assert s.acks.take() == [later]
    assert s.dead == [] and s.queued() == 0
    assert s.acks.orphans == 0  # each forgotten once it came: nothing kept for ever


def test_an_orphan_that_never_finishes_stays_until_it_does(s: Setup) -> None:
    running, other = s.take(2)
    s.acks.forget_lease([running])
    s.acks.pending.append(other)
    assert s.acks.take() == [other]
    assert s.acks.orphans == 1
    s.acks.pending.append(running)
    assert s.acks.take() == [] and s.acks.orphans == 0
