"""Remote control, the worker's side: every control command sent to live
workers on SQLite, Redis and RabbitMQ through ``app.control``, with its
effect proven (tasks run slower after rate_limit, more at once after
pool_grow, a new queue is consumed after add_consumer, the running task
finishes after shutdown...).  test_remote_control_inspect.py: the
inspect commands.

Waits poll a condition with a deadline; a short timed wait appears only
to observe that something does *not* happen.
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.testing import start_worker
from corekit.worker.commands.control import signal_number
from remote_control_helpers import (TIMEOUT, answer, ask, holds_for, inspect, opened_at_exit,
                                    wait_until)

pytestmark = pytest.mark.timeout(120)


# -- limits -------------------------------------------------------------------------------
def test_rate_limit_slows_a_task_type_and_can_be_lifted(app: Corekit) -> None:
    @app.task(name="rc.stamp")
    def stamp() -> float:
        return time.time()

    def span(n: int) -> float:
        results = [stamp.delay() for _ in range(n)]
        times = sorted(r.get(timeout=TIMEOUT) for r in results)
        return times[-1] - times[0]

    with start_worker(app, pool="threads", concurrency=4) as worker:
        assert answer(app.control.rate_limit("rc.stamp", "4/s", destination=[worker.hostname],
                                             reply=True, timeout=TIMEOUT), worker) == {
            "ok": "new rate limit set successfully"}
        assert span(5) >= 0.9  # a token every 0.25 s: the fifth starts 1 s after the first
        assert answer(app.control.rate_limit("rc.stamp", None, destination=[worker.hostname],
                                             reply=True, timeout=TIMEOUT), worker) == {
            "ok": "rate limit disabled successfully"}
        assert span(5) < 0.9


def test_time_limit_is_refused_where_the_pool_cannot_enforce_it(app: Corekit) -> None:
    @app.task(name="rc.nap")
    def nap() -> None:
        time.sleep(0.01)

    with start_worker(app, pool="threads", concurrency=1) as worker:
        refused = ask(app, worker, "time_limit", task_name="rc.nap", soft=1.0, hard=2.0)
        assert "the threads pool cannot enforce" in refused["error"]
        assert app.tasks["rc.nap"].time_limit is None
        assert ask(app, worker, "time_limit", task_name="rc.nap") == {
            "ok": "time limits set successfully"}
        assert ask(app, worker, "time_limit", task_name="rc.none", hard=1) == {
            "error": "unknown task"}


def test_time_limit_is_enforced_on_prefork(sqlite_app: Corekit) -> None:
    from corekit.exceptions import TimeLimitExceeded

    @sqlite_app.task(name="rc.slow")
    def slow() -> str:
        time.sleep(30)
        return "never"

    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        assert answer(sqlite_app.control.time_limit(
            "rc.slow", hard=0.5, destination=[worker.hostname], reply=True,
            timeout=TIMEOUT), worker) == {"ok": "time limits set successfully"}
        with pytest.raises(TimeLimitExceeded):
            slow.delay().get(timeout=TIMEOUT)


# -- the pool -----------------------------------------------------------------------------
def test_pool_grow_and_shrink_change_how_many_run_at_once(app: Corekit) -> None:
    gate = threading.Event()
    lock = threading.Lock()
    running: set[int] = set()

    @app.task(name="rc.hold")
    def hold(i: int) -> int:
        with lock:
            running.add(i)
        gate.wait(30)
        with lock:
            running.discard(i)
        return i

    with start_worker(app, pool="threads", concurrency=1) as worker, \
            opened_at_exit(gate):
        me = [worker.hostname]
        results = [hold.delay(i) for i in range(3)]
        wait_until(lambda: len(running) == 1)
        assert answer(app.control.pool_grow(2, destination=me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "pool will grow"}
        wait_until(lambda: len(running) == 3)
        stats = inspect(app, worker).stats()[worker.hostname]
        assert stats["pool"]["max-concurrency"] == 3 and stats["prefetch_count"] == 12
        assert answer(app.control.pool_shrink(2, destination=me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "pool will shrink"}
        gate.set()
        assert [r.get(timeout=TIMEOUT) for r in results] == [0, 1, 2]
        gate.clear()
        results = [hold.delay(i) for i in range(3, 6)]
        wait_until(lambda: len(running) == 1)
        assert holds_for(lambda: len(running) <= 1, 0.3)
        assert ask(app, worker, "pool_shrink", n=1) == {
            "error": "concurrency must be at least 1, not 0"}
        gate.set()
        assert [r.get(timeout=TIMEOUT) for r in results] == [3, 4, 5]


def test_the_solo_pool_cannot_change_size_nor_autoscale(sqlite_app: Corekit) -> None:
    with start_worker(sqlite_app, pool="solo") as worker:
        assert ask(sqlite_app, worker, "pool_grow", n=1) == {
            "error": "the solo pool cannot change its size"}
        assert "does not autoscale" in ask(sqlite_app, worker, "autoscale", max=2,
                                           min=1)["error"]


def test_prefork_grows_shrinks_and_autoscales(sqlite_app: Corekit) -> None:
    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        ins = inspect(sqlite_app, worker)

        def processes() -> int:
            return len(ins.stats()[worker.hostname]["pool"]["processes"])

        assert ask(sqlite_app, worker, "pool_grow", n=2) == {"ok": "pool will grow"}
        wait_until(lambda: processes() == 3)
        assert worker.consumer.dispatcher.capacity == 3
        assert ask(sqlite_app, worker, "pool_shrink", n=2) == {"ok": "pool will shrink"}
        wait_until(lambda: processes() == 1)
        assert ask(sqlite_app, worker, "autoscale", max=3, min=1) == {
            "ok": "autoscale now max=3 min=1"}
        assert ins.stats()[worker.hostname]["pool"]["autoscale"] == [3, 1]
        assert ask(sqlite_app, worker, "pool_grow", n=1) == {
            "error": "pool_grow is not supported with autoscale. Adjust autoscale range "
                     "instead."}


# -- queues -------------------------------------------------------------------------------
def test_add_consumer_and_cancel_consumer(app: Corekit) -> None:
    @app.task(name="rc.where")
    def where(tag: str) -> str:
        return tag

    with start_worker(app, pool="threads", concurrency=2) as worker:
        me = [worker.hostname]
        assert answer(app.control.add_consumer("extra", destination=me, reply=True,
                                               timeout=TIMEOUT), worker) == {
            "ok": "add consumer extra"}
        assert where.apply_async(("extra",), queue="extra").get(timeout=TIMEOUT) == "extra"
        # declared with the exchange and routing key given, then routed through them
        assert answer(app.control.add_consumer(
            "images", exchange="media", exchange_type="topic", routing_key="image.#",
            destination=me, reply=True, timeout=TIMEOUT), worker) == {
                "ok": "add consumer images"}
        assert where.apply_async(("png",), exchange="media",
                                 routing_key="image.png").get(timeout=TIMEOUT) == "png"
        names = [q["name"] for q in inspect(app, worker).active_queues()[worker.hostname]]
        assert names == ["celery", "extra", "images"]

        assert answer(app.control.cancel_consumer("extra", destination=me, reply=True,
                                                  timeout=TIMEOUT), worker) == {
            "ok": "no longer consuming from extra"}
        # once a task fetched after the cancel ran, every fetch leaves "extra" alone
        assert where.delay("first").get(timeout=TIMEOUT) == "first"
        stranded = where.apply_async(("stranded",), queue="extra")
        assert where.delay("second").get(timeout=TIMEOUT) == "second"
        assert stranded.state == "PENDING"
        assert worker.consumer.transport.queue_size("extra") == 1

        for queue in ("images", "celery"):
            ask(app, worker, "cancel_consumer", queue=queue)
        assert worker.consumer.queues == ["celery"]
        assert ask(app, worker, "cancel_consumer", queue="celery") == {
            "error": "cannot stop consuming 'celery': it is the only queue this worker "
                     "consumes"}


# -- events -------------------------------------------------------------------------------
def test_events_commands_switch_task_events_and_send_a_heartbeat(app: Corekit) -> None:
    @app.task(name="rc.evented")
    def evented() -> str:
        return "ok"

    transport = app.connection()
    with start_worker(app, pool="threads", concurrency=1, heartbeat_interval=60) as worker, \
            transport.subscribe_broadcast(["celeryev"]) as events:
        me = [worker.hostname]

        def next_event(kind: str) -> dict[str, Any]:
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                for message in events.get(0.2):
                    event = json.loads(message.body)
                    if event["type"] == kind and event["hostname"] == worker.hostname:
                        return event
            raise AssertionError(f"no {kind} event")

        assert answer(app.control.enable_events(me, reply=True, timeout=TIMEOUT), worker) == {
            "ok": "task events enabled"}
        assert ask(app, worker, "enable_events") == {"ok": "task events already enabled"}
        result = evented.delay()
        assert next_event("task-succeeded")["uuid"] == result.id
        assert answer(app.control.disable_events(me, reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "task events disabled"}
        assert answer(app.control.heartbeat(me, reply=True, timeout=TIMEOUT), worker) is None
        assert next_event("worker-heartbeat")["sw_ident"] == "corekit"
    transport.close()


# -- the worker ---------------------------------------------------------------------------
def test_shutdown_replies_then_stops_the_worker_warmly(app: Corekit) -> None:
    gate = threading.Event()

    @app.task(name="rc.finish")
    def finish() -> str:
        gate.wait(30)
        return "finished"

    with start_worker(app, pool="threads", concurrency=1) as worker, \
            opened_at_exit(gate):
        result = finish.delay()
        wait_until(lambda: result.id in worker.consumer.running)
        assert answer(app.control.shutdown([worker.hostname], reply=True, timeout=TIMEOUT),
                      worker) == {"ok": "shutting down"}
        wait_until(worker.consumer.stopping.is_set)  # right after the reply went out
        gate.set()
        assert result.get(timeout=TIMEOUT) == "finished"  # warm: the running task finished
        wait_until(lambda: worker.blueprint.state == "stopped")
        assert not app.control.ping([worker.hostname], timeout=0.5)


def test_terminate_and_stamped_header_replies(sqlite_app: Corekit, tmp_path: Path) -> None:
    started = tmp_path / "started"

    @sqlite_app.task(name="rc.forever")
    def forever() -> None:
        started.write_text("yes")
        time.sleep(60)

    with start_worker(sqlite_app, pool="prefork", concurrency=1) as worker:
        me = [worker.hostname]
        assert answer(sqlite_app.control.terminate("nope", destination=me, reply=True,
                                                   timeout=TIMEOUT), worker) == {
            "ok": "terminate: tasks unknown"}
        result = forever.apply_async(headers={"batch": "b1"})
        wait_until(started.exists)
        wait_until(lambda: result.id in worker.consumer.running)
        reply = answer(sqlite_app.control.revoke_by_stamped_headers(
            {"batch": "b1"}, destination=me, terminate=True, signal="SIGKILL", reply=True,
            timeout=TIMEOUT), worker)
        assert reply == {"ok": f"headers {{'batch': 'b1'}} revoked: {result.id} terminated"}
        with pytest.raises(TaskRevokedError, match="terminated"):
            result.get(timeout=TIMEOUT)
        assert answer(sqlite_app.control.revoke_by_stamped_headers(
            {"batch": "b2"}, destination=me, reply=True, timeout=TIMEOUT), worker) == {
                "ok": "headers {'batch': 'b2'} flagged as revoked, but not terminated"}


@pytest.mark.parametrize("name, number", [("SIGKILL", 9), ("kill", 9), (15, 15), (None, 15),
                                          ("SIGNOPE", 15)])
def test_signal_names_in_revokes(name: Any, number: int) -> None:
    assert signal_number(name) == number
