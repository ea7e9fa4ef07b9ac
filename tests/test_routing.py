"""task_routes and routing options decide the queue, with Celery's precedence."""
from __future__ import annotations

import re
from typing import Any

import pytest

from corekit import Corekit
from corekit.testing import start_worker


def queue_of(app: Corekit, send: Any) -> str:
    """The queue a call landed in (the first non-empty one of a few)."""
    send()
    transport = app.connection()
    for queue in ("celery", "hipri", "media", "videos", "images", "regex", "fn", "listed",
                  "explicit", "attr", "media.video", "routed"):
        got = transport.fetch([queue], 1, 0.0)
        if got:
            transport.ack(got)
            return queue
    raise AssertionError("no message found")


@pytest.fixture
def tasks(memory_app: Corekit) -> Any:
    @memory_app.task(name="proj.tasks.add")
    def add(x: int, y: int) -> int:
        return x + y

    @memory_app.task(name="proj.media.encode_video")
    def encode_video() -> None:
        pass

    @memory_app.task(name="proj.media.resize", queue="attr")
    def resize() -> None:
        pass

    return add, encode_video, resize


def test_dict_exact_glob_and_regex(memory_app: Corekit, tasks: Any) -> None:
    add, encode_video, resize = tasks
    memory_app.conf.task_routes = {"proj.tasks.add": {"queue": "hipri"},
                                   re.compile(r"proj\.media\.encode_.*"): "regex",
                                   "proj.media.*": {"queue": "media"}}
    assert queue_of(memory_app, lambda: add.delay(1, 2)) == "hipri"
    assert queue_of(memory_app, encode_video.delay) == "regex"
    assert queue_of(memory_app, lambda: memory_app.send_task("proj.media.thumbs")) == "media"
    assert queue_of(memory_app, lambda: memory_app.send_task("other.task")) == "celery"


def test_precedence_call_then_task_then_routes(memory_app: Corekit, tasks: Any) -> None:
    add, _, resize = tasks
    memory_app.conf.task_routes = {"proj.*": "routed"}
    assert queue_of(memory_app, lambda: add.apply_async((1, 2), queue="explicit")) == "explicit"
    assert queue_of(memory_app, resize.delay) == "attr"
    assert queue_of(memory_app, lambda: add.delay(1, 2)) == "routed"


def test_function_routers_in_a_list(memory_app: Corekit, tasks: Any) -> None:
    add, encode_video, _ = tasks
    seen: list[tuple[Any, ...]] = []

    def by_args(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
                **kw: Any) -> Any:
        seen.append((name, tuple(args), task))
        return {"queue": "fn"} if args and args[0] == 99 else None

    memory_app.conf.task_routes = [by_args, {"proj.media.*": "listed"}]
    assert queue_of(memory_app, lambda: add.delay(99, 1)) == "fn"
    assert queue_of(memory_app, lambda: add.delay(1, 1)) == "celery"
    assert queue_of(memory_app, encode_video.delay) == "listed"
    assert seen[0] == ("proj.tasks.add", (99, 1), add)


def test_a_router_by_dotted_path(memory_app: Corekit, tasks: Any, monkeypatch: Any) -> None:
    import types
    import sys

    module = types.ModuleType("corekit_test_routers")
    module.route = lambda name, *a, **k: "fn"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "corekit_test_routers", module)
    memory_app.conf.task_routes = "corekit_test_routers.route"
    assert queue_of(memory_app, lambda: tasks[0].delay(1, 2)) == "fn"


def test_routing_key_on_the_default_exchange_names_the_queue(memory_app: Corekit,
                                                              tasks: Any) -> None:
    add = tasks[0]
    assert queue_of(memory_app, lambda: add.apply_async((1, 1), routing_key="media.video")
                    ) == "media.video"
    memory_app.conf.task_routes = {"proj.tasks.add": {"routing_key": "hipri"}}
    assert queue_of(memory_app, lambda: add.delay(1, 1)) == "hipri"


def test_route_priority_and_bad_routes(memory_app: Corekit, tasks: Any) -> None:
    add = tasks[0]
    memory_app.conf.task_routes = {"proj.tasks.add": {"queue": "hipri", "priority": 7}}
    add.delay(1, 1)
    [message] = memory_app.connection().fetch(["hipri"], 1, 1.0)
    assert message.priority == 7
    broken = Corekit("x", broker="memory://broken", task_routes="no.such.module.route")
    with pytest.raises(ValueError, match="cannot import router 'no.such.module.route'"):
        broken.send_task("t")


def test_a_worker_consumes_the_routed_queue(memory_app: Corekit, tasks: Any) -> None:
    add = tasks[0]
    memory_app.conf.task_routes = {"proj.tasks.*": {"queue": "hipri"}}
    with start_worker(memory_app, queues=["hipri"]):
        assert add.delay(2, 3).get(timeout=10) == 5
