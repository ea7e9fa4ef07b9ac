"""What the canvas tests share (test_canvas_signatures.py,
test_canvas_callbacks.py, test_canvas_chains.py, test_canvas_groups.py,
test_canvas_nesting.py): the tasks they run, registered on a test's app,
and helpers that read the messages a workflow publishes."""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from corekit import Corekit
from corekit.result import AsyncResult, GroupResult
from corekit.messages import Message

T = 20  # every get() waits at most this long

WIRE_KEYS = {"task", "args", "kwargs", "options", "subtask_type", "immutable", "chord_size"}


class CustomError(Exception):
    pass


def make_tasks(app: Corekit) -> SimpleNamespace:
    """The tasks every canvas test uses, registered on *app*.

    ``ns.log`` records side effects (in-process worker threads share it);
    ``ns.events[name]`` is set when the errback *name* ran."""
    log: list[Any] = []
    events = {"errback3": threading.Event(), "errback1": threading.Event()}

    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    @app.task
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task
    def sub(x: int, y: int) -> int:  # not commutative: shows the order of merged args
        return x - y

    @app.task
    def xsum(values: list[int]) -> int:
        return sum(values)

    @app.task
    def identity(value: Any) -> Any:
        return value

    @app.task
    def record(value: Any) -> Any:
        log.append(("record", value))
        return value

    @app.task(bind=True)
    def fail(self: Any, *args: Any) -> None:
        log.append(("fail", self.request.id))
        raise CustomError("boom", *args)

    @app.task
    def errback3(request: Any, exc: BaseException, traceback: str) -> None:
        log.append(("errback3", request.id, exc, traceback))
        events["errback3"].set()

    @app.task
    def errback1(task_id: str) -> str:
        log.append(("errback1", task_id))
        events["errback1"].set()
        return task_id

    @app.task(bind=True)
    def spawn(self: Any, n: int) -> list[str]:
        return [add.delay(i, i).id for i in range(n)]

    @app.task(bind=True)
    def replacer(self: Any, x: int) -> None:
        raise self.replace(mul.s(x, 2))

    @app.task(bind=True)
    def replace_no_raise(self: Any, x: int) -> None:
        self.replace(add.s(x, 100))
        log.append(("unreachable", x))

    @app.task(bind=True)
    def replace_with_chain(self: Any, x: int) -> None:
        raise self.replace(add.s(x, 1) | mul.s(10))

    return SimpleNamespace(log=log, events=events, add=add, mul=mul, sub=sub, xsum=xsum,
                           identity=identity, record=record, fail=fail, errback3=errback3,
                           errback1=errback1, spawn=spawn, replacer=replacer,
                           replace_no_raise=replace_no_raise,
                           replace_with_chain=replace_with_chain)


def plain(value: Any) -> Any:
    """*value* as it looks after a JSON round trip."""
    return json.loads(json.dumps(value))


def take(app: Corekit, queue: str = "celery") -> list[Message]:
    """Every message waiting in *queue*, in order, removed from it."""
    transport = app.connection()
    got: list[Message] = []
    while batch := transport.fetch([queue], 200, 0.5 if not got else 0.05):
        got.extend(batch)
        transport.ack(batch)
    return got


def flat_children(res: AsyncResult) -> list[AsyncResult]:
    """*res*'s children, with a group of callbacks (Celery sends several
    callbacks as one group) opened up."""
    out: list[AsyncResult] = []
    for child in res.children:
        out.extend(child.results if isinstance(child, GroupResult) else [child])
    return out


def body_of(app: Corekit, message: Message) -> Any:
    return app.codecs.decode(message.body, message.content_type,
                             message.headers.get("compression"))


def spy_publish(app: Corekit, monkeypatch: pytest.MonkeyPatch) -> list[list[Message]]:
    """Record each producer publish call (the list of messages it got)."""
    calls: list[list[Message]] = []
    producer = app.producer
    real = producer.publish

    def publish(messages: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(list(messages))
        return real(messages, *args, **kwargs)

    monkeypatch.setattr(producer, "publish", publish)
    return calls
