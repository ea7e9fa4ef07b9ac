"""Task and worker events from real workers on real brokers, as a receiver
hears them: their order, their fields, switching them on and off, task-sent
from the client, and the cluster state built from them."""
from __future__ import annotations

import time
from typing import Any

import pytest

from corekit import Corekit, TaskRevokedError
from corekit.events.dispatcher import EventDispatcher
from corekit.events.state import State
from corekit.testing import start_worker
from corekit.worker.events import EventsStep, TaskEvents
from event_log import EventLog

BROKERS = ["sqlite_app", "redis_app", "amqp_app"]


def define_tasks(app: Corekit) -> dict[str, Any]:
    @app.task(name="proj.add")
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="proj.boom")
    def boom() -> None:
        raise ValueError("no")

    @app.task(name="proj.flaky", bind=True, max_retries=1)
    def flaky(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=OSError("try again"), countdown=0)
        return "fine"

    return {"add": add, "boom": boom, "flaky": flaky}


@pytest.mark.parametrize("app_name", BROKERS)
def test_task_events_in_order(app_name: str, request: pytest.FixtureRequest) -> None:
    app = request.getfixturevalue(app_name)
    tasks = define_tasks(app)
    doomed = tasks["add"].delay(0, 0)
    doomed.revoke()  # kept by the backend: the worker revokes it on receipt
    with EventLog(app) as log, start_worker(app, task_events=True) as worker:
        ok, failed, retried = (tasks["add"].delay(2, 2), tasks["boom"].delay(),
                               tasks["flaky"].delay())
        assert ok.get(timeout=15) == 4 and retried.get(timeout=15) == "fine"
        with pytest.raises(ValueError):
            failed.get(timeout=15)
        with pytest.raises(TaskRevokedError):
            doomed.get(timeout=15)
        log.wait_for(lambda: all(log.of(kind, uuid=r.id) for kind, r in (
            ("task-succeeded", ok), ("task-failed", failed), ("task-succeeded", retried),
            ("task-revoked", doomed))))
    assert log.types(uuid=ok.id) == ["task-received", "task-started", "task-succeeded"]
    assert log.types(uuid=failed.id) == ["task-received", "task-started", "task-failed"]
    # the retry's message may be received before the first run's end is reported
    rerun = log.types(uuid=retried.id)
    assert rerun[:2] == ["task-received", "task-started"] and len(rerun) == 6
    assert sorted(rerun[2:4]) == ["task-received", "task-retried"]
    assert rerun[4:] == ["task-started", "task-succeeded"]
    assert log.types(uuid=doomed.id) == ["task-received", "task-revoked"]
    # Celery's fields
    [received] = log.of("task-received", uuid=ok.id)
    assert received["name"] == "proj.add" and received["args"] == "[2, 2]"
    assert received["kwargs"] == "{}" and received["retries"] == 0
    assert received["root_id"] == ok.id and received["parent_id"] is None
    [succeeded] = log.of("task-succeeded", uuid=ok.id)
    assert succeeded["result"] == "4" and 0 <= succeeded["runtime"] < 5
    for event in (received, succeeded):
        assert event["hostname"] == worker.hostname and isinstance(event["clock"], int)
        assert abs(event["timestamp"] - time.time()) < 60 and event["pid"] > 0
        assert "utcoffset" in event and "local_received" in event
    assert received["clock"] < succeeded["clock"]
    [failure] = log.of("task-failed", uuid=failed.id)
    assert failure["exception"] == "ValueError('no')" and "ValueError: no" in failure["traceback"]
    [retry] = log.of("task-retried", uuid=retried.id)
    assert retry["exception"] == "OSError('try again')"
    assert [e["retries"] for e in log.of("task-received", uuid=retried.id)] == [0, 1]
    [revoked] = log.of("task-revoked", uuid=doomed.id)
    assert (revoked["terminated"], revoked["expired"]) == (False, False)


def test_task_events_from_a_prefork_pool(redis_app: Corekit) -> None:
    tasks = define_tasks(redis_app)
    with EventLog(redis_app) as log, start_worker(redis_app, pool="prefork", concurrency=1,
                                                  task_events=True):
        result = tasks["add"].delay(1, 2)
        assert result.get(timeout=30) == 3
        log.wait_for(lambda: log.of("task-succeeded", uuid=result.id))
    assert log.types(uuid=result.id) == ["task-received", "task-started", "task-succeeded"]


def test_expired_and_rejected_tasks(sqlite_app: Corekit) -> None:
    tasks = define_tasks(sqlite_app)
    expired = tasks["add"].apply_async((1, 1), expires=0.01)
    time.sleep(0.05)  # let it expire before any worker sees it
    unknown = sqlite_app.send_task("nobody.knows.me")
    with EventLog(sqlite_app) as log, start_worker(sqlite_app, task_events=True):
        log.wait_for(lambda: log.of("task-revoked", uuid=expired.id)
                     and log.of("task-rejected", uuid=unknown.id))
    [revoked] = log.of("task-revoked", uuid=expired.id)
    assert (revoked["expired"], revoked["terminated"]) == (True, False)
    [rejected] = log.of("task-rejected", uuid=unknown.id)
    assert rejected["requeue"] is False


@pytest.mark.parametrize("app_name", BROKERS)
def test_worker_online_heartbeats_and_offline(app_name: str,
                                              request: pytest.FixtureRequest) -> None:
    app = request.getfixturevalue(app_name)
    tasks = define_tasks(app)
    with EventLog(app) as log:
        with start_worker(app, heartbeat_interval=0.2) as worker:
            me = worker.hostname
            log.wait_for(lambda: log.of("worker-online", hostname=me))
            assert tasks["add"].delay(1, 1).get(timeout=15) == 2
            log.wait_for(lambda: any(e["processed"] == 1
                                     for e in log.of("worker-heartbeat", hostname=me)))
        log.wait_for(lambda: log.of("worker-offline", hostname=me))
    types = log.types(hostname=me)
    assert types[0] == "worker-online" and types[-1] == "worker-offline"
    assert types.count("worker-heartbeat") >= 2
    assert not [t for t in types if t.startswith("task-")]  # no -E: no task events
    online = log.of("worker-online", hostname=me)[0]
    assert online["freq"] == 0.2 and online["sw_ident"] == "corekit"
    assert online["processed"] == 0 and online["active"] == 0
    assert len(online["loadavg"]) == 3 and online["sw_sys"]
    assert log.of("worker-offline", hostname=me)[0]["processed"] == 1


def test_a_worker_without_heartbeat_sends_nothing(sqlite_app: Corekit) -> None:
    tasks = define_tasks(sqlite_app)
    with EventLog(sqlite_app) as log:
        with start_worker(sqlite_app, without_heartbeat=True) as worker:
            assert tasks["add"].delay(1, 1).get(timeout=15) == 2
            # a heartbeat asked for now would be heard before this one
            probe = EventDispatcher(sqlite_app, "probe@host")
            probe.send("worker-heartbeat")
            probe.close()
            log.wait_for(lambda: log.of("worker-heartbeat", hostname="probe@host"))
        # no task events follow the jobs
        assert not [x for x in worker.consumer.listeners if isinstance(x, TaskEvents)]
    assert log.types() == ["worker-heartbeat"]


def test_task_events_switched_on_and_off_at_runtime(redis_app: Corekit) -> None:
    tasks = define_tasks(redis_app)
    add = tasks["add"]
    with EventLog(redis_app) as log, start_worker(redis_app, heartbeat_interval=0.2) as worker:
        dispatcher = worker.blueprint[EventsStep].dispatcher
        assert not dispatcher.enabled
        quiet = add.delay(1, 1)
        quiet.get(timeout=15)
        dispatcher.enable()
        assert dispatcher.enabled
        loud = add.delay(2, 2)
        loud.get(timeout=15)
        log.wait_for(lambda: log.of("task-succeeded", uuid=loud.id))
        dispatcher.disable()
        assert not dispatcher.enabled
        quiet_again = add.delay(3, 3)
        quiet_again.get(timeout=15)
        # heartbeats go on, and count every task, heard or not
        log.wait_for(lambda: any(e["processed"] == 3 for e in log.of("worker-heartbeat")))
    assert log.types(uuid=quiet.id) == [] and log.types(uuid=quiet_again.id) == []
    assert log.types(uuid=loud.id) == ["task-received", "task-started", "task-succeeded"]


def test_remote_control_switches_task_events(sqlite_app: Corekit) -> None:
    tasks = define_tasks(sqlite_app)
    with EventLog(sqlite_app) as log, start_worker(sqlite_app) as worker:
        me = [worker.hostname]
        replies = sqlite_app.control.enable_events(destination=me, reply=True, timeout=5)
        assert replies and worker.hostname in replies[0]
        assert worker.blueprint[EventsStep].dispatcher.enabled
        loud = tasks["add"].delay(2, 2)
        loud.get(timeout=15)
        log.wait_for(lambda: log.of("task-succeeded", uuid=loud.id))
        sqlite_app.control.disable_events(destination=me, reply=True, timeout=5)
        assert not worker.blueprint[EventsStep].dispatcher.enabled
        sqlite_app.control.heartbeat(destination=me)
        log.wait_for(lambda: log.of("worker-heartbeat", hostname=worker.hostname))


@pytest.mark.parametrize("app_name", ["sqlite_app", "redis_app"])
def test_task_sent_events_from_the_client(app_name: str,
                                          request: pytest.FixtureRequest) -> None:
    app = request.getfixturevalue(app_name)
    add = define_tasks(app)["add"]
    with EventLog(app, routing_key="task.#") as log:
        unseen = add.delay(0, 0)  # task_send_sent_event is off by default
        app.conf.task_send_sent_event = True
        sent = add.apply_async((2, 3), countdown=60, expires=120)
        log.wait_for(lambda: log.of("task-sent", uuid=sent.id))
    assert log.of("task-sent", uuid=unseen.id) == []
    [event] = log.of("task-sent", uuid=sent.id)
    assert event["name"] == "proj.add" and event["args"] == "[2, 3]"
    assert event["queue"] == "celery" and event["routing_key"] == "celery"
    assert event["eta"] and event["expires"] and event["retries"] == 0
    assert event["hostname"].startswith("gen")


def test_a_routing_key_picks_the_events(redis_app: Corekit) -> None:
    tasks = define_tasks(redis_app)
    with EventLog(redis_app, routing_key="worker.#") as workers_only, \
            start_worker(redis_app, task_events=True, heartbeat_interval=0.2) as worker:
        tasks["add"].delay(1, 1).get(timeout=15)
        workers_only.wait_for(lambda: workers_only.of("worker-heartbeat"))
    assert workers_only.types(hostname=worker.hostname)
    assert all(t.startswith("worker-") for t in workers_only.types())


def test_the_state_follows_a_real_event_stream(redis_app: Corekit) -> None:
    state = State()
    tasks = define_tasks(redis_app)

    @redis_app.task(name="proj.parent")
    def parent() -> str:
        return tasks["add"].delay(5, 5).id

    with EventLog(redis_app, handler=state.event) as log:
        with start_worker(redis_app, concurrency=2, task_events=True,
                          heartbeat_interval=0.2) as worker:
            child_id = parent.delay().get(timeout=15)
            failed = tasks["boom"].delay()
            log.wait_for(lambda: child_id in state.tasks and state.tasks[child_id].ready
                         and failed.id in state.tasks and state.tasks[failed.id].ready)
            log.wait_for(lambda: (state.workers.get(worker.hostname) is not None
                                  and state.workers[worker.hostname].processed == 3))
            assert [w.hostname for w in state.alive_workers()] == [worker.hostname]
        log.wait_for(lambda: not state.workers[worker.hostname].alive)  # worker-offline
    parent_task = [t for t in state.tasks.values() if t.name == "proj.parent"][0]
    assert parent_task.state == "SUCCESS" and parent_task.children == [child_id]
    assert state.tasks[child_id].parent_id == parent_task.uuid
    assert state.tasks[child_id].result == "10" and state.tasks[child_id].worker == worker.hostname
    assert state.tasks[failed.id].state == "FAILURE"
    assert state.task_types() == ["proj.add", "proj.boom", "proj.parent"]


def test_the_dispatcher_keeps_a_bounded_buffer_while_the_broker_is_away() -> None:
    app = Corekit("tests", broker="redis://127.0.0.1:1/0")  # nothing listens there
    dispatcher = EventDispatcher(app, "lonely@host", buffer_limit=5)
    for i in range(50):
        dispatcher.send("worker-heartbeat", n=i)
    deadline = time.monotonic() + 10
    while dispatcher.dropped < 45:
        assert time.monotonic() < deadline, dispatcher.dropped
        time.sleep(0.05)
    started = time.monotonic()
    dispatcher.close(timeout=0.5)
    assert time.monotonic() - started < 5  # closing does not hang on a dead broker
    dispatcher.send("worker-heartbeat")  # after close: dropped, no error


def test_a_disabled_dispatcher_sends_nothing(sqlite_app: Corekit) -> None:
    with EventLog(sqlite_app) as log:
        off = EventDispatcher(sqlite_app, "off@host", enabled=False)
        off.send("worker-heartbeat")
        workers_only = EventDispatcher(sqlite_app, "w@host", groups={"worker"})
        workers_only.send("task-received", uuid="x")
        workers_only.send("worker-heartbeat")
        assert workers_only.flush(5)
        log.wait_for(lambda: log.of("worker-heartbeat", hostname="w@host"))
        off.close()
        workers_only.close()
    assert log.types() == ["worker-heartbeat"]
