"""A task of a workflow whose result cannot be stored (the result
serializer cannot encode it, or it is over ``result_max_size``) is a
FAILURE in every respect, as in Celery: the rest of its chain fails with
it (no waiter hangs), its callbacks are not sent, its errbacks run, a chord
it belongs to fails its body, and its event is task-failed."""
from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from corekit import Corekit, chord, states
from corekit.exceptions import ChordError, EncodeError
from corekit.result import AsyncResult
from corekit.testing import start_worker
from event_log import EventLog


class Opaque:
    """Nothing JSON can encode."""


@pytest.fixture(params=["sqlite", "redis"])
def app(request: pytest.FixtureRequest) -> Corekit:
    return request.getfixturevalue(f"{request.param}_app")


def define(app: Corekit) -> dict[str, Any]:
    @app.task(name="proj.add")
    def add(x: int, y: int = 1) -> int:
        return x + y

    @app.task(name="proj.returns_object")
    def returns_object(x: Any) -> Opaque:
        return Opaque()

    @app.task(name="proj.returns_big")
    def returns_big(x: Any) -> str:
        return "x" * 4096

    @app.task(name="proj.collect")
    def collect(values: list[Any]) -> list[Any]:
        return values

    @app.task(name="proj.failed_id")
    def failed_id(task_id: str) -> str:
        return task_id

    return {"add": add, "returns_object": returns_object, "returns_big": returns_big,
            "collect": collect, "failed_id": failed_id}


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_chain_with_an_unencodable_step_fails_at_once(app: Corekit, pool: str) -> None:
    t = define(app)
    with start_worker(app, pool=pool, concurrency=1):
        result = (t["add"].s(1) | t["returns_object"].s() | t["add"].s()).delay()
        with pytest.raises(EncodeError, match="Opaque"):
            result.get(timeout=15)  # the last step's id: PENDING forever before
        middle, first = result.parent, result.parent.parent
        assert middle.state == states.FAILURE
        assert first.get(timeout=5) == 2
        meta = app.backend.get_task_meta(result.id)
        assert meta["result"]["exc_type"] == "EncodeError"
        assert meta["result"]["exc_module"] == "kombu.exceptions"
        assert app.backend.get_task_meta(middle.id)["result"] == meta["result"]
        # the worker goes on
        assert t["add"].delay(2).get(timeout=10) == 3


def test_a_result_over_result_max_size_fails_its_chain(app: Corekit) -> None:
    app.conf.result_max_size = 1024
    app.close()  # the backend is built again with the limit
    t = define(app)
    with start_worker(app):
        result = (t["returns_big"].s(0) | t["add"].s()).delay()
        with pytest.raises(EncodeError, match=r"over result_max_size \(1024 bytes\)"):
            result.get(timeout=15)
        assert result.parent.state == states.FAILURE


def test_errbacks_run_and_callbacks_are_not_sent(app: Corekit) -> None:
    t = define(app)
    called: list[tuple[str, BaseException]] = []
    done = threading.Event()

    @app.task(name="proj.on_error")
    def on_error(request: Any, exc: BaseException, traceback: str) -> None:
        called.append((request.id, exc))
        done.set()

    sent_errback = t["failed_id"].s().set(task_id=str(uuid.uuid4()))
    callback = t["add"].s().set(task_id=str(uuid.uuid4()))
    with start_worker(app, concurrency=2):
        result = t["returns_object"].apply_async(
            (1,), link=callback, link_error=[on_error.s(), sent_errback])
        with pytest.raises(EncodeError, match="Opaque"):
            result.get(timeout=15)
        assert AsyncResult(sent_errback.id, app=app).get(timeout=15) == result.id
        assert done.wait(15)
        assert called[0][0] == result.id
        assert "Opaque" in str(called[0][1])
        # a callback is sent only with a success: it never runs
        assert AsyncResult(callback.id, app=app).state == states.PENDING


@pytest.mark.parametrize("member", ["task", "chain"])
def test_a_chord_with_an_unencodable_member_fails_its_body(app: Corekit, member: str) -> None:
    t = define(app)
    bad = t["returns_object"].s(2)
    if member == "chain":  # its last step is the chord's part: it never ran before
        bad = t["add"].s(1, 1) | t["returns_object"].s() | t["add"].s()
    with start_worker(app, concurrency=2):
        result = chord([t["add"].s(1, 1), bad, t["add"].s(3, 3)], t["collect"].s()).delay()
        with pytest.raises(ChordError, match="EncodeError: .*Opaque"):
            result.get(timeout=15)


def test_the_event_is_task_failed(sqlite_app: Corekit) -> None:
    t = define(sqlite_app)
    with EventLog(sqlite_app) as log, start_worker(sqlite_app, task_events=True):
        result = (t["returns_object"].s(1) | t["add"].s()).delay()
        with pytest.raises(EncodeError):
            result.get(timeout=15)
        middle = result.parent.id
        log.wait_for(lambda: log.of("task-failed", uuid=middle))
        assert not log.of("task-succeeded", uuid=middle)
        assert "EncodeError" in log.of("task-failed", uuid=middle)[0]["exception"]
