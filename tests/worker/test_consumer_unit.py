"""The consumer's routing of a fetched batch, on memory:// (no servers):
what it runs, holds in its timer, hands back to the broker, revokes and
dead-letters.  Each test drives one turn by hand instead of running the loop."""
from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

from corekit import Corekit, states
from corekit.messages import Message
from corekit.worker.consumer import Consumer
from corekit.worker.result_writer import ResultWriter


@pytest.fixture
def ran() -> list[Any]:
    return []


@pytest.fixture
def app(memory_app: Corekit, ran: list[Any]) -> Corekit:
    @memory_app.task(name="unit.add")
    def add(x: int, y: int) -> int:
        ran.append(("add", x, y))
        return x + y

    @memory_app.task(name="unit.slow", rate_limit="1/h")
    def slow(n: int) -> int:
        ran.append(("slow", n))
        return n

    return memory_app


@pytest.fixture
def consumer(app: Corekit) -> Iterator[Consumer]:
    transport = app.connection()
    transport.connect()
    writer = ResultWriter(app.backend)
    writer.start()
    pool = app.plugins.get("pools", "solo")(1)
    pool.start()
    consumer = Consumer(app, transport, writer, pool, ["celery"], "unit@host", 4)
    yield consumer
    writer.stop()
    pool.stop(wait=True)
    transport.close()


def turn(consumer: Consumer) -> list[Message]:
    """Fetch what is ready, route it, run what may run, store and ack."""
    got = consumer.transport.fetch(consumer.queues, 100, 0.0)
    consumer.receive(got)
    consumer.dispatcher.dispatch()
    consumer.results.flush()
    consumer.acks.flush()
    return got


def state(app: Corekit, task_id: str) -> str:
    return app.AsyncResult(task_id).state


def test_a_ready_message_runs_and_is_acked(app: Corekit, consumer: Consumer,
                                           ran: list[Any]) -> None:
    result = app.send_task("unit.add", (2, 3))
    assert len(turn(consumer)) == 1
    assert ran == [("add", 2, 3)]
    assert app.AsyncResult(result.id).get(timeout=1) == 5
    assert consumer.transport.queue_size("celery") == 0
    assert consumer.dispatcher.inflight == 0


def test_an_expired_message_is_revoked_not_run(app: Corekit, consumer: Consumer,
                                               ran: list[Any]) -> None:
    result = app.send_task("unit.add", (1, 1), expires=-1)
    turn(consumer)
    assert ran == []
    assert state(app, result.id) == states.REVOKED
    assert consumer.transport.queue_size("celery") == 0  # acked, not redelivered


def test_an_expired_message_takes_no_rate_limit_token(app: Corekit, consumer: Consumer,
                                                      ran: list[Any]) -> None:
    expired = app.send_task("unit.slow", (1,), expires=-1)
    app.send_task("unit.slow", (2,))  # not expired: runs
    turn(consumer)
    assert state(app, expired.id) == states.REVOKED
    assert ran == [("slow", 2)]


def test_a_message_that_expires_while_held_is_revoked_when_due(
        app: Corekit, consumer: Consumer, ran: list[Any]) -> None:
    consumer.delayed_by_broker = False
    message = app.prepare_task("unit.add", (1, 2), countdown=30, expires=60)
    message.eta = None  # a producer that did not ask the broker to hold it
    consumer.transport.publish([message])
    turn(consumer)
    (due, job), = consumer.waiting.values()
    assert ran == [] and len(consumer.timer) == 1
    job.headers.expires = time.time() - 1  # the hour passed while it waited
    consumer.dispatcher.add(consumer.timer.pop_due(due + 1))
    consumer.dispatcher.dispatch()
    consumer.results.flush()
    assert ran == []
    assert state(app, message.headers["id"]) == states.REVOKED


def test_an_early_message_waits_in_the_timer(app: Corekit, consumer: Consumer,
                                             ran: list[Any]) -> None:
    consumer.delayed_by_broker = False
    message = app.prepare_task("unit.add", (1, 2), countdown=30)
    message.eta = None
    consumer.transport.publish([message])
    turn(consumer)
    assert ran == []
    (due, job), = consumer.waiting.values()
    assert job.id == message.headers["id"] and due > time.time() + 20
    assert consumer.transport.queue_size("celery") == 0  # taken, held unacked
    released = consumer.timer.pop_due(due + 1)
    assert released == [job]


def test_an_early_message_goes_back_to_a_broker_that_delays(app: Corekit, consumer: Consumer,
                                                            ran: list[Any]) -> None:
    assert consumer.delayed_by_broker
    message = app.prepare_task("unit.add", (1, 2), countdown=30)
    message.eta = None
    consumer.transport.publish([message])
    turn(consumer)
    assert ran == [] and len(consumer.timer) == 0 and not consumer.waiting
    assert consumer.transport.fetch(["celery"], 10, 0.0) == []  # held by the broker now
    assert state(app, message.headers["id"]) == states.PENDING


def test_a_rate_limited_task_waits_for_its_token(app: Corekit, consumer: Consumer,
                                                 ran: list[Any]) -> None:
    ids = [app.send_task("unit.slow", (n,)).id for n in range(3)]
    turn(consumer)
    assert ran == [("slow", 0)]
    assert state(app, ids[0]) == states.SUCCESS
    waiting = sorted(consumer.waiting.values(), key=lambda entry: entry[0])
    assert [job.id for _, job in waiting] == ids[1:]
    assert waiting[0][0] > time.time() + 3000  # one token an hour
    assert all(state(app, i) == states.PENDING for i in ids[1:])


def test_reset_rate_limit_takes_the_tasks_new_limit(app: Corekit, consumer: Consumer,
                                                    ran: list[Any]) -> None:
    app.send_task("unit.slow", (0,))
    turn(consumer)
    app.tasks["unit.slow"].rate_limit = None
    consumer.live.reset_rate_limit("unit.slow")
    app.send_task("unit.slow", (1,))
    app.send_task("unit.slow", (2,))
    turn(consumer)
    assert ran == [("slow", 0), ("slow", 1), ("slow", 2)]


def test_rate_limits_off_run_everything(app: Corekit, ran: list[Any]) -> None:
    app.conf.worker_disable_rate_limits = True
    transport = app.connection()
    writer = ResultWriter(app.backend)
    writer.start()
    consumer = Consumer(app, transport, writer, app.plugins.get("pools", "solo")(1),
                        ["celery"], "unit@host", 4)
    try:
        for n in range(3):
            app.send_task("unit.slow", (n,))
        turn(consumer)
        assert len(ran) == 3
        with pytest.raises(ValueError, match="rate limits are off"):
            consumer.live.reset_rate_limit("unit.slow")
    finally:
        writer.stop()
        transport.close()


def test_a_revoked_message_is_not_run(app: Corekit, consumer: Consumer,
                                      ran: list[Any]) -> None:
    result = app.send_task("unit.add", (1, 1))
    consumer.revoked.add({"task_id": result.id})
    turn(consumer)
    assert ran == [] and state(app, result.id) == states.REVOKED


def test_a_message_revoked_while_prefetched_is_not_run(app: Corekit, consumer: Consumer,
                                                       ran: list[Any]) -> None:
    result = app.send_task("unit.add", (1, 1))
    consumer.receive(consumer.transport.fetch(["celery"], 10, 0.0))
    consumer.revoked.add({"task_id": result.id})
    consumer.dispatcher.dispatch()
    consumer.results.flush()
    assert ran == [] and state(app, result.id) == states.REVOKED


@pytest.mark.parametrize("spoil, reason", [
    (lambda m: setattr(m, "body", b'{"not": "a list"}'), "malformed body"),
    (lambda m: setattr(m, "body", b"\xff\xfe not json"), ""),
    (lambda m: m.headers.update(task="unit.nowhere"), "unknown task 'unit.nowhere'"),
    (lambda m: m.headers.update(eta="tomorrow"), "eta"),
    (lambda m: m.headers.update(id=None), "id"),
], ids=["body-shape", "undecodable", "unknown-task", "bad-eta", "no-id"])
def test_a_malformed_message_is_dead_lettered(app: Corekit, consumer: Consumer, ran: list[Any],
                                              spoil: Any, reason: str) -> None:
    bad = app.prepare_task("unit.add", (1, 1))
    spoil(bad)
    good = app.send_task("unit.add", (2, 2))
    consumer.transport.publish([bad])
    turn(consumer)
    assert ran == [("add", 2, 2)]  # one bad message holds up nothing
    assert state(app, good.id) == states.SUCCESS
    (letter,) = consumer.transport.dead_letters()
    assert reason in letter.reason
    assert consumer.transport.queue_size("celery") == 0


# -- gates (corekit.worker.gates) ---------------------------------------------------

class Finished:
    """A listener keeping the jobs that ended."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def received(self, job: Any) -> None: ...
    def started(self, job: Any) -> None: ...
    def requeued(self, job: Any) -> None: ...
    def rejected(self, message: Any, reason: str) -> None: ...

    def finished(self, job: Any) -> None:
        self.jobs.append(job)


def test_a_gate_stops_only_jobs_whose_message_has_its_header(
        app: Corekit, consumer: Consumer, ran: list[Any], caplog: pytest.LogCaptureFixture
        ) -> None:
    asked: list[list[str]] = []

    def gate(jobs: Any) -> list[str | None]:
        asked.append([job.id for job in jobs])
        return ["a second copy" if job.message.headers["x-copy"] == "second" else None
                for job in jobs]

    finished = Finished()
    consumer.gates = {"x-copy": gate}
    consumer.listeners = [*consumer.listeners, finished]
    first = app.send_task("unit.add", (1, 1), headers={"x-copy": "first"})
    second = app.send_task("unit.add", (2, 2), headers={"x-copy": "second"})
    plain = app.send_task("unit.add", (3, 3))
    with caplog.at_level("INFO", "corekit.worker"):
        turn(consumer)
    assert asked == [[first.id, second.id]]  # once a batch; not about the plain message
    assert ran == [("add", 1, 1), ("add", 3, 3)]
    assert state(app, second.id) == states.PENDING  # nothing stored for it
    assert consumer.transport.queue_size("celery") == 0  # and it is acked
    assert consumer.dispatcher.inflight == 0 and not consumer.tracker.reserved()
    assert [job.id for job in finished.jobs if not job.metas] == [second.id]
    assert f"unit.add[{second.id}] not run: a second copy" in caplog.text
    assert app.AsyncResult(plain.id).get(timeout=1) == 6


def test_a_late_acked_job_a_gate_stops_is_acked(app: Corekit, consumer: Consumer,
                                                ran: list[Any]) -> None:
    app.tasks["unit.add"].acks_late = True
    consumer.gates = {"x-copy": lambda jobs: ["a second copy" for _ in jobs]}
    app.send_task("unit.add", (1, 1), headers={"x-copy": "second"})
    turn(consumer)
    assert consumer._options["unit.add"].acks_late  # so only the gate's drop acks it
    assert ran == []
    assert consumer.transport.queue_size("celery") == 0
    assert consumer.transport.fetch(["celery"], 10, 0.0) == []  # not redelivered


def raising(jobs: Any) -> list[str | None]:
    raise ConnectionError("the gate's store is away")


@pytest.mark.parametrize("gate", [raising, lambda jobs: ["stop"] * (len(jobs) + 1)],
                         ids=["raises", "answers-too-often"])
def test_a_gate_that_fails_lets_the_jobs_run(app: Corekit, consumer: Consumer, ran: list[Any],
                                             caplog: pytest.LogCaptureFixture, gate: Any
                                             ) -> None:
    consumer.gates = {"x-copy": gate}
    result = app.send_task("unit.add", (4, 4), headers={"x-copy": "first"})
    turn(consumer)
    assert ran == [("add", 4, 4)] and app.AsyncResult(result.id).get(timeout=1) == 8
    assert "the 'x-copy' gate failed; its 1 task(s) run" in caplog.text
