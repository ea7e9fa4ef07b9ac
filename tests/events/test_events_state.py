"""`State`: the cluster as events tell it, fed events directly (the
stream from real workers is tested in test_events.py)."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from corekit.events.state import MAX_TASK_EVENTS, State

NOW = 1_800_000_000.0


def ev(type: str, at: float, **fields: Any) -> dict[str, Any]:
    """An event as a receiver hands it over."""
    return {"type": type, "timestamp": NOW + at, "local_received": time.time(),
            "hostname": fields.pop("hostname", "w1@host"), "clock": int(at * 10),
            "pid": 1, "utcoffset": 0, **fields}


def run_of(uuid: str, *steps: tuple[str, float, dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev(f"task-{kind}", at, uuid=uuid, **fields) for kind, at, fields in steps]


def test_a_task_goes_through_its_states_and_keeps_its_timeline() -> None:
    state = State()
    for event in run_of("t1",
                        ("sent", 0.0, {"name": "proj.add", "args": "(2, 2)", "kwargs": "{}",
                                       "hostname": "client@host", "queue": "celery"}),
                        ("received", 0.1, {"name": "proj.add", "args": "(2, 2)",
                                           "kwargs": "{}", "retries": 0}),
                        ("started", 0.2, {}),
                        ("succeeded", 0.3, {"result": "4", "runtime": 0.1})):
        state.event(event)
    task = state.tasks["t1"]
    assert task.state == "SUCCESS" and task.ready
    assert (task.name, task.args, task.result, task.runtime) == ("proj.add", "(2, 2)", "4", 0.1)
    assert (task.client, task.worker, task.queue) == ("client@host", "w1@host", "celery")
    assert (task.sent, task.received, task.started, task.succeeded) == (
        NOW, NOW + 0.1, NOW + 0.2, NOW + 0.3)
    assert task.timestamp == NOW + 0.3
    assert [e["type"] for e in task.events] == ["task-sent", "task-received", "task-started",
                                                "task-succeeded"]
    assert task.events[-1]["result"] == "4" and "clock" not in task.events[-1]
    assert state.task_count == 1 and state.event_count == 4
    assert state.task_types() == ["proj.add"]
    assert state.counts["task-succeeded"] == 1


def test_late_events_do_not_move_a_task_back() -> None:
    state = State()
    # the worker's events overtook the client's and the received one
    for event in run_of("t1", ("started", 0.2, {}),
                        ("succeeded", 0.3, {"result": "4", "runtime": 0.1}),
                        ("received", 0.1, {"name": "proj.add", "args": "(2, 2)"}),
                        ("sent", 0.0, {"name": "proj.add", "hostname": "client@host"})):
        state.event(event)
    task = state.tasks["t1"]
    assert task.state == "SUCCESS" and task.timestamp == NOW + 0.3
    assert task.name == "proj.add" and task.args == "(2, 2)"  # filled in from the late ones
    assert task.received == NOW + 0.1 and task.sent == NOW
    # the timeline is in the order things happened, not the order heard
    assert [e["type"] for e in task.events] == ["task-sent", "task-received", "task-started",
                                                "task-succeeded"]
    # a failure heard after a success does not undo it either
    state.event(ev("task-failed", 0.25, uuid="t1", exception="ValueError()"))
    assert task.state == "SUCCESS"


def test_a_retried_task_runs_again_under_its_id() -> None:
    state = State()
    for event in run_of("t1", ("received", 0.1, {"name": "proj.flaky", "retries": 0}),
                        ("started", 0.2, {}),
                        ("retried", 0.3, {"exception": "IOError('x')"}),
                        ("received", 1.1, {"name": "proj.flaky", "retries": 1})):
        state.event(event)
    task = state.tasks["t1"]
    assert task.state == "RECEIVED" and task.retries == 1 and task.retried == NOW + 0.3
    for event in run_of("t1", ("started", 1.2, {}), ("failed", 1.3, {"exception": "E()",
                                                                     "traceback": "tb"})):
        state.event(event)
    assert (task.state, task.exception, task.traceback) == ("FAILURE", "E()", "tb")
    assert state.task_count == 2


def test_revoked_and_rejected_tasks() -> None:
    state = State()
    state.event(ev("task-received", 0.0, uuid="a", name="proj.x"))
    state.event(ev("task-revoked", 0.1, uuid="a", terminated=True, expired=False, signum=15))
    state.event(ev("task-rejected", 0.2, uuid="b", requeue=False))
    assert state.tasks["a"].state == "REVOKED" and state.tasks["a"].terminated is True
    assert state.tasks["b"].state == "REJECTED" and state.tasks["b"].requeue is False


def test_children_are_found_through_parent_id_whatever_comes_first() -> None:
    state = State()
    state.event(ev("task-received", 0.2, uuid="early-child", parent_id="p", name="c"))
    state.event(ev("task-received", 0.1, uuid="p", name="parent"))
    state.event(ev("task-received", 0.3, uuid="late-child", parent_id="p", name="c"))
    state.event(ev("task-started", 0.4, uuid="late-child"))  # counted once
    assert state.tasks["p"].children == ["early-child", "late-child"]


def test_workers_come_and_go_with_their_heartbeats() -> None:
    state = State()
    info = {"freq": 0.2, "active": 1, "processed": 5, "loadavg": [0.5, 0.4, 0.3],
            "sw_ident": "corekit", "sw_ver": "1", "sw_sys": "Linux", "pid": 42}
    state.event(ev("worker-online", 0.0, **info))
    worker = state.workers["w1@host"]
    assert worker.alive and worker.status == "ONLINE" and worker.processed == 5
    assert [w.hostname for w in state.alive_workers()] == ["w1@host"]
    deadline = time.monotonic() + 5
    while worker.alive:  # no heartbeat for freq * 2 seconds: gone
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert worker.status == "OFFLINE" and state.alive_workers() == []
    state.event(ev("worker-heartbeat", 1.0, **{**info, "processed": 7}))
    assert worker.alive and worker.processed == 7
    state.event(ev("worker-offline", 2.0, **info))
    assert not worker.alive and "w1@host" in state.workers  # still listed, as offline


def test_a_task_event_counts_as_a_sign_of_life_from_its_worker() -> None:
    state = State()
    state.event(ev("task-started", 0.0, uuid="t", hostname="quiet@host"))
    assert state.workers["quiet@host"].alive


def test_memory_is_bounded() -> None:
    state = State(max_workers_in_memory=3, max_tasks_in_memory=3)
    for i in range(5):
        state.event(ev("task-received", i, uuid=f"t{i}", name="proj.x"))
    assert list(state.tasks) == ["t2", "t3", "t4"]  # the oldest go first
    state.event(ev("worker-offline", 0, hostname="dead@host"))
    state.event(ev("worker-online", 0, hostname="a@host", freq=60))
    state.event(ev("worker-online", 0, hostname="b@host", freq=60))
    # the dead one went first, though w1 (from the task events) is older
    assert sorted(state.workers) == ["a@host", "b@host", "w1@host"]
    state.event(ev("worker-online", 0, hostname="c@host", freq=60))
    assert sorted(state.workers) == ["a@host", "b@host", "c@host"]  # then the oldest
    for i in range(MAX_TASK_EVENTS + 10):
        state.event(ev("task-started", 10 + i, uuid="t4"))
    assert len(state.tasks["t4"].events) == MAX_TASK_EVENTS


def test_tasks_by_time_snapshot_and_clear() -> None:
    state = State()
    for event in (ev("task-received", 0.1, uuid="old", name="proj.a"),
                  ev("task-received", 0.3, uuid="new", name="proj.b"),
                  ev("task-received", 0.2, uuid="mid", name="proj.a"),
                  ev("task-succeeded", 0.4, uuid="mid", result="1", runtime=0.1),
                  ev("worker-online", 0.0, freq=2.0)):
        state.event(event)
    assert [t.uuid for t in state.tasks_by_time()] == ["mid", "new", "old"]
    assert [t.uuid for t in state.tasks_by_time(limit=1)] == ["mid"]
    snap = json.loads(json.dumps(state.snapshot()))  # plain JSON all the way down
    assert snap["tasks"]["mid"]["state"] == "SUCCESS"
    assert snap["tasks"]["mid"]["events"][-1]["type"] == "task-succeeded"
    assert snap["workers"]["w1@host"]["status"] == "ONLINE"
    assert snap["task_types"] == ["proj.a", "proj.b"] and snap["event_count"] == 5
    state.clear()  # keeps the tasks still in progress
    assert sorted(state.tasks) == ["new", "old"] and state.workers == {}
    state.clear(ready=False)
    assert state.tasks == {}


def test_events_from_many_threads_are_all_counted() -> None:
    state = State()

    def feed(n: int) -> None:
        for i in range(500):
            state.event(ev("task-received", i, uuid=f"{n}-{i}", name="proj.x"))

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.event_count == 2000 and state.task_count == 2000 and len(state.tasks) == 2000


def test_freeze_while_holds_events_back() -> None:
    state = State()
    inside = threading.Event()
    release = threading.Event()

    def shutter() -> int:
        inside.set()
        release.wait(5)
        return len(state.tasks)

    result: list[int] = []
    camera = threading.Thread(target=lambda: result.append(state.freeze_while(shutter)))
    camera.start()
    assert inside.wait(5)
    feeder = threading.Thread(target=state.event,
                              args=(ev("task-received", 0, uuid="t", name="x"),))
    feeder.start()
    feeder.join(0.2)
    assert feeder.is_alive()  # waits for the shutter
    release.set()
    camera.join(5)
    feeder.join(5)
    assert result == [0] and "t" in state.tasks
