"""Canvas: chains, and ``replace`` (which continues the chain it is in),
with Celery's semantics and Celery's wire form (DESIGN.md §3).

The workflows run on every transport (``any_app``); the finer points
(the message body) on the memory transport only.
"""
from __future__ import annotations

import pytest

from canvas_helpers import WIRE_KEYS, CustomError, T, body_of, make_tasks, take
from corekit import Corekit, chain, states
from corekit.testing import start_worker


# ---------------------------------------------------------------------------
# Every transport: the main workflows, end to end.
# ---------------------------------------------------------------------------

def test_chains(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        assert chain(t.add.s(2, 2), t.add.s(4), t.add.s(8))().get(timeout=T) == 16
        assert (t.add.s(2, 2) | t.add.s(4) | t.add.s(8))().get(timeout=T) == 16
        assert chain(t.add.s(4, 4) | t.mul.s(8))().get(timeout=T) == 64
        assert chain(t.add.s(4) | t.mul.s(8))(4).get(timeout=T) == 64
        assert chain([t.sub.s(10, 1), t.sub.s(2)]).apply_async().get(timeout=T) == 7
        # the previous result is prepended: sub(sub(10, 1), 2) above; (20 - 5) here
        assert (t.sub.s(20) | t.sub.s(5)).delay(50).get(timeout=T) == 25

        # (Celery's docs: the last one immutable too, else it would get 8 prepended)
        res = (t.add.si(2, 2) | t.add.si(4, 4) | t.add.si(8, 8))()
        assert res.get(timeout=T) == 16
        assert res.parent.get(timeout=T) == 8
        assert res.parent.parent.get(timeout=T) == 4
        assert res.parent.parent.parent is None

        res = (t.add.s(1, 1) | t.add.s(2) | t.add.s(3))()
        assert res.get(timeout=T) == 7
        root = res.parent.parent
        # (a task's meta, children included, is stored after it sent the next
        # task, which may end first: wait for each before reading its children)
        assert [r.get(timeout=T) for r in (root, res.parent)] == [2, 4]
        assert root.children == [res.parent] and res.parent.children == [res]
        assert list(root.collect()) == [(root, 2), (res.parent, 4), (res, 7)]


def test_chain_failure_propagates_to_the_end(any_app: Corekit) -> None:
    """Celery >= 5.1: a failing link marks the rest of the chain failed, so
    waiting on the chain's result does not hang."""
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=2):
        res = (t.add.s(1, 1) | t.fail.s() | t.record.s())()
        with pytest.raises(CustomError):
            res.get(timeout=T)
        assert res.parent.failed() and res.parent.parent.get(timeout=T) == 2
        assert not [e for e in t.log if e[0] == "record"]


def test_replace(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = t.replacer.delay(5)
        assert res.get(timeout=T) == 10
        assert t.replacer.AsyncResult(res.id).state == states.SUCCESS
        # replace() raises by itself
        assert t.replace_no_raise.delay(1).get(timeout=T) == 101
        assert not [e for e in t.log if e[0] == "unreachable"]
        # a replaced task inside a chain continues the chain
        assert (t.replacer.s(5) | t.add.s(1))().get(timeout=T) == 11
        assert (t.add.s(1, 2) | t.replacer.s() | t.mul.s(10))().get(timeout=T) == 60
        # replaced by a chain
        assert t.replace_with_chain.delay(4).get(timeout=T) == 50


# ---------------------------------------------------------------------------
# Memory transport: signatures themselves, option merging, the wire form.
# ---------------------------------------------------------------------------

def test_chain_on_the_wire(memory_app: Corekit) -> None:
    """The first message carries the rest of the chain, reversed: the next
    task last, each with the task id the caller's results already know."""
    t = make_tasks(memory_app)
    res = chain(t.add.s(1, 1), t.mul.s(2), t.sub.s(3)).apply_async()
    [m] = take(memory_app)
    assert m.headers["task"] == t.add.name
    assert m.headers["id"] == res.parent.parent.id
    args, kwargs, embed = body_of(memory_app, m)
    assert (args, kwargs) == ([1, 1], {})
    rest = embed["chain"]
    assert [(s["task"], s["args"]) for s in rest] == [(t.sub.name, [3]), (t.mul.name, [2])]
    assert all(set(s) >= WIRE_KEYS for s in rest)
    assert rest[0]["options"]["task_id"] == res.id
    assert rest[1]["options"]["task_id"] == res.parent.id
    assert embed["callbacks"] is None and embed["chord"] is None
