"""Canvas: signatures and partials (``s``, ``si``, ``signature``, ``set``,
``clone``, their JSON form),
with Celery's semantics and Celery's wire form (DESIGN.md §3).

The workflows run on every transport (``any_app``); the finer points
(option merging, repr, the message body) on the memory transport only.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from canvas_helpers import WIRE_KEYS, T, body_of, make_tasks, plain, spy_publish, take
from corekit import Corekit, chain, chord, group, signature
from corekit.canvas import Signature, maybe_signature, xmap, xstarmap
from corekit.testing import start_worker


# ---------------------------------------------------------------------------
# Every transport: the main workflows, end to end.
# ---------------------------------------------------------------------------

def test_signatures_and_partials_run(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        assert t.add.s(2, 2).delay().get(timeout=T) == 4
        assert t.add.signature((2, 3)).apply_async().get(timeout=T) == 5
        assert t.add.subtask((3, 3)).apply_async().get(timeout=T) == 6
        assert t.add.s(2, 2)() == 4  # calling a task's signature runs it here
        assert t.sub.s(2)(10) == 8
        # new args are prepended: sub(10, 2)
        assert t.sub.s(2).delay(10).get(timeout=T) == 8
        assert t.sub.s(2).apply_async((10,)).get(timeout=T) == 8
        # kwargs merge, the call's win
        assert t.sub.s(y=1).delay(x=5).get(timeout=T) == 4
        assert t.sub.s(x=9, y=1).apply_async(kwargs={"y": 4}).get(timeout=T) == 5
        # immutable: extra args ignored
        assert t.sub.si(10, 3).delay(100).get(timeout=T) == 7
        assert t.sub.signature((10, 4), immutable=True).apply_async((1,)).get(timeout=T) == 6
        # by name, and rebuilt from its JSON form
        assert signature(t.sub.name, args=(7, 2), app=any_app).delay().get(timeout=T) == 5
        rebuilt = Signature(plain(t.sub.s(9, 3)), app=any_app)
        assert rebuilt.delay().get(timeout=T) == 6
        assert signature(plain(t.sub.s(3)), app=any_app).delay(10).get(timeout=T) == 7


# ---------------------------------------------------------------------------
# Memory transport: signatures themselves, option merging, the wire form.
# ---------------------------------------------------------------------------

def test_signature_is_a_dict_with_celerys_keys(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    s = signature("tasks.add", args=(2, 2), countdown=10)
    assert isinstance(s, Signature) and isinstance(s, dict)
    assert set(s) == WIRE_KEYS
    assert s["task"] == s.task == "tasks.add"
    assert tuple(s["args"]) == tuple(s.args) == (2, 2)
    assert s["kwargs"] == s.kwargs == {}
    assert s["options"] == s.options == {"countdown": 10}
    assert s["subtask_type"] is None and s["immutable"] is False and s.immutable is False
    assert s["chord_size"] is None
    assert repr(s) == "tasks.add(2, 2)"

    assert repr(t.add.s(2, 2)) == f"{t.add.name}(2, 2)"
    assert repr(t.add.s(2, y=3)) == f"{t.add.name}(2, y=3)"
    assert repr(t.add.signature((2, 2), countdown=10)) == f"{t.add.name}(2, 2)"
    assert repr(t.add.subtask((2, 2), countdown=10)) == f"{t.add.name}(2, 2)"
    # every way of making one gives the same dict
    assert t.add.signature((2, 2), countdown=10) == t.add.subtask((2, 2), countdown=10)
    assert t.add.signature((2, 2), countdown=10) == signature(t.add.name, args=(2, 2),
                                                              countdown=10)
    assert t.add.s(2, 2) == t.add.signature((2, 2))
    assert t.add.s(2, y=3)["kwargs"] == {"y": 3}
    assert t.add.si(2, 2)["immutable"] is True and t.add.si(2, 2) == t.add.signature(
        (2, 2), immutable=True)
    assert t.add.subtask(immutable=True).immutable is True
    assert plain(t.add.s(2, 2)) == {"task": t.add.name, "args": [2, 2], "kwargs": {},
                                    "options": {}, "subtask_type": None, "immutable": False,
                                    "chord_size": None}


def test_json_round_trip_and_maybe_signature(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    originals = [
        t.add.s(2, y=3).set(queue="q", countdown=5),
        t.add.si(1, 1),
        signature("elsewhere.task", args=(1,), kwargs={"k": [1, 2]}, priority=3),
        chain(t.add.s(1, 1), t.mul.s(3), t.add.s(4)),
        group(t.add.s(1, 1), t.mul.s(2, 2)),
        chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s()),
        t.xsum.map([[1, 2]]),
        t.add.starmap([(1, 2)]),
        t.add.chunks([(1, 2), (3, 4)], 1),
    ]
    # Celery marks chains, groups and chords; map, starmap and chunks are
    # signatures of its built-in tasks
    types = [None, None, None, "chain", "group", "chord", "xmap", "xstarmap", "chunks"]
    for original, subtask_type in zip(originals, types):
        data = plain(original)
        if subtask_type in ("xmap", "xstarmap", "chunks"):
            subtask_type = data["subtask_type"]
            assert subtask_type in (None, original["subtask_type"])
        assert data["subtask_type"] == subtask_type, original
        for rebuilt in (signature(data), signature(data, app=memory_app),
                        Signature(data, app=memory_app), maybe_signature(data, app=memory_app)):
            assert isinstance(rebuilt, Signature)
            assert plain(rebuilt) == data  # the JSON form is stable
            assert rebuilt["subtask_type"] == subtask_type
    s = t.add.s(1, 1)
    assert maybe_signature(s) is s
    assert maybe_signature(None) is None
    assert isinstance(t.xsum.map([[1]]), xmap) and isinstance(t.add.starmap([(1, 1)]), xstarmap)


def test_rebuilt_workflows_run(memory_app: Corekit) -> None:
    """A workflow rebuilt from its JSON form (as a worker gets it in a
    message) runs like the original."""
    t = make_tasks(memory_app)
    with start_worker(memory_app, concurrency=4):
        def rerun(sig: Any, *args: Any) -> Any:
            return signature(plain(sig), app=memory_app).apply_async(args).get(timeout=T)

        assert rerun(chain(t.add.s(1, 1), t.mul.s(3))) == 6
        assert rerun(chain(t.add.s(1), t.mul.s(3)), 1) == 6
        assert rerun(group(t.add.s(1, 1), t.mul.s(2, 2))) == [2, 4]
        assert rerun(chord([t.add.s(1, 1), t.add.s(2, 2)], t.xsum.s())) == 6
        assert rerun(t.add.starmap([(1, 2), (3, 4)])) == [3, 7]


def test_partials_on_the_wire(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    t.add.s(2).delay(4)
    t.add.s(x=1).apply_async(kwargs={"y": 2})
    t.add.s(x=1, y=1).delay(y=5)
    t.add.si(2, 2).delay(5, z=1)
    t.add.signature((2, 2), immutable=True).apply_async((9,))
    t.add.s(y=2).apply_async((1,), {"y": 3})  # the call's kwargs win
    bodies = [body_of(memory_app, m)[:2] for m in take(memory_app)]
    assert bodies == [[[4, 2], {}], [[], {"x": 1, "y": 2}], [[], {"x": 1, "y": 5}],
                      [[2, 2], {}], [[2, 2], {}], [[1], {"y": 3}]]


def test_options_merge_call_options_win(memory_app: Corekit,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    t = make_tasks(memory_app)
    calls = spy_publish(memory_app, monkeypatch)
    s = t.add.signature((2, 2), countdown=10)
    before = datetime.now(timezone.utc)
    s.apply_async(countdown=1)
    assert s.options == {"countdown": 10}  # the signature itself is unchanged
    s.apply_async()
    s.set(queue="hipri").apply_async(countdown=1)
    t.add.s(1, 1).set(queue="hipri", priority=5).apply_async(queue="lopri")
    sent = [m for c in calls for m in c]
    assert len(sent) == 4
    etas = [datetime.fromisoformat(m.headers["eta"]) - before if m.headers["eta"] else None
            for m in sent]
    assert timedelta(0) < etas[0] < timedelta(seconds=3)
    assert timedelta(seconds=9) < etas[1] < timedelta(seconds=12)
    assert timedelta(0) < etas[2] < timedelta(seconds=3) and etas[3] is None
    assert [m.queue for m in sent] == ["celery", "celery", "hipri", "lopri"]
    assert sent[3].priority == 5


def test_set_and_clone(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    s = t.add.s(2)
    assert s.set(queue="q1", priority=3) is s
    assert s.options == {"queue": "q1", "priority": 3}
    c = s.clone()
    assert c == s and c is not s and isinstance(c, Signature)
    c.set(queue="q2")
    assert s.options["queue"] == "q1" and c.options["queue"] == "q2"
    assert tuple(s.clone(args=(4,)).args) == (4, 2)  # prepended
    assert s.clone(kwargs={"y": 1}).kwargs == {"y": 1}
    assert tuple(s.args) == (2,) and s.kwargs == {}
    assert tuple(t.add.si(2, 2).clone(args=(9,)).args) == (2, 2)
    assert t.add.si(2, 2).clone().immutable is True
    s.delay(1)
    [m] = take(memory_app, "q1")
    assert body_of(memory_app, m)[0] == [1, 2]
