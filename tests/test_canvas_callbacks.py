"""Canvas: callbacks (``link``, ``link_error``) and the children a task's
result knows, with Celery's semantics and Celery's wire form (DESIGN.md §3).

The workflows run on every transport (``any_app``); the finer points
(the message body) on the memory transport only.
"""
from __future__ import annotations

import pytest

from canvas_helpers import WIRE_KEYS, CustomError, T, body_of, flat_children, make_tasks, take
from corekit import Corekit
from corekit.result import AsyncResult
from corekit.testing import start_worker


# ---------------------------------------------------------------------------
# Every transport: the main workflows, end to end.
# ---------------------------------------------------------------------------

def test_link_callbacks_and_children(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = t.add.apply_async((2, 2), link=t.mul.s(3))
        assert res.get(timeout=T) == 4
        [child] = res.children  # the callback, sent by the task itself
        assert isinstance(child, AsyncResult)
        assert child.get(timeout=T) == 12

        res = t.sub.apply_async((10, 4), link=[t.sub.s(1), t.record.s(), t.add.si(1, 1)])
        assert res.get(timeout=T) == 6
        values = sorted(c.get(timeout=T) for c in flat_children(res))
        assert values == [2, 5, 6]  # sub(6, 1), record(6), add(1, 1)
        assert ("record", 6) in t.log

        # a task's children are the tasks it sent
        res = t.spawn.delay(3)
        ids = res.get(timeout=T)
        assert [c.id for c in res.children] == ids
        assert [c.get(timeout=T) for c in res.children] == [0, 2, 4]
        assert t.add.delay(1, 1).get(timeout=T) == 2 and t.add.AsyncResult(ids[0]).children == []


def test_link_error_callbacks(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = t.fail.apply_async((1,), link_error=t.errback3.s(), link=t.record.s())
        with pytest.raises(CustomError):
            res.get(timeout=T)
        assert t.events["errback3"].wait(T), "the (request, exc, traceback) errback never ran"
        [(_, request_id, exc, tb)] = [e for e in t.log if e[0] == "errback3"]
        assert request_id == res.id
        assert isinstance(exc, CustomError) and exc.args == ("boom", 1)
        assert isinstance(tb, str) and "CustomError" in tb

        res = t.fail.apply_async(link_error=[t.errback1.s()])
        with pytest.raises(CustomError):
            res.get(timeout=T)
        assert t.events["errback1"].wait(T), "the one-argument errback never ran"
        assert ("errback1", res.id) in t.log
        # link= callbacks never ran for the failures; errbacks not for a success
        assert t.add.apply_async((1, 1), link_error=t.errback1.s()).get(timeout=T) == 2
        assert t.add.delay(0, 0).get(timeout=T) == 0
        assert not [e for e in t.log if e[0] == "record"]
        assert len([e for e in t.log if e[0] == "errback1"]) == 1


# ---------------------------------------------------------------------------
# Memory transport: signatures themselves, option merging, the wire form.
# ---------------------------------------------------------------------------

def test_callbacks_and_errbacks_on_the_wire(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    t.add.apply_async((1, 1), link=t.mul.s(2), link_error=t.errback3.s())
    [m] = take(memory_app)
    args, kwargs, embed = body_of(memory_app, m)
    assert (args, kwargs) == ([1, 1], {})
    assert set(embed) == {"callbacks", "errbacks", "chain", "chord"}
    [callback] = embed["callbacks"]
    assert set(callback) == WIRE_KEYS
    assert callback["task"] == t.mul.name and callback["args"] == [2]
    assert callback["kwargs"] == {} and callback["subtask_type"] is None
    assert callback["immutable"] is False
    [errback] = embed["errbacks"]
    assert errback["task"] == t.errback3.name and errback["args"] == []
    assert embed["chain"] is None and embed["chord"] is None

    t.add.apply_async((1, 1), link=[t.mul.s(2), t.add.si(0, 0)])
    [m] = take(memory_app)
    callbacks = body_of(memory_app, m)[2]["callbacks"]
    assert [(c["task"], c["args"], c["immutable"]) for c in callbacks] == [
        (t.mul.name, [2], False), (t.add.name, [0, 0], True)]
