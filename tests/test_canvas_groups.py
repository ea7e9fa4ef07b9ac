"""Canvas: groups, chords, map/starmap and chunks,
with Celery's semantics and Celery's wire form (DESIGN.md §3).

The workflows run on every transport (``any_app``); the finer points
(one publish for a group, the chord body each header task carries,
the shape of chunks) on the memory transport only.
"""
from __future__ import annotations

import pytest

from canvas_helpers import CustomError, T, body_of, make_tasks, spy_publish
from corekit import Corekit, chord, chunks, group, states
from corekit.canvas import xstarmap
from corekit.exceptions import ChordError
from corekit.result import AsyncResult, GroupResult
from corekit.testing import start_worker


# ---------------------------------------------------------------------------
# Every transport: the main workflows, end to end.
# ---------------------------------------------------------------------------

def test_groups(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = group(t.add.s(i, i) for i in range(10))()
        assert isinstance(res, GroupResult) and len(res) == 10 and res.id
        assert res.get(timeout=T) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
        assert res.ready() and res.successful() and not res.failed()
        assert res.completed_count() == 10
        assert [r.get(timeout=T) for r in res.results] == list(range(0, 20, 2))
        assert all(isinstance(r, AsyncResult) for r in res.results)

        assert group(t.add.s(i) for i in range(10))(10).get(timeout=T) == list(range(10, 20))
        assert group(t.sub.s(1), t.sub.s(2)).apply_async((10,)).get(timeout=T) == [9, 8]
        assert group([t.add.s(1, 1)]).delay().get(timeout=T) == [2]

        res = group(t.add.s(1, 1), t.fail.s(), t.add.s(2, 2))()
        joined = res.join(timeout=T, propagate=False)
        assert joined[0] == 2 and joined[2] == 4 and isinstance(joined[1], CustomError)
        assert res.ready() and res.failed() and not res.successful()
        assert res.completed_count() == 2
        with pytest.raises(CustomError):
            res.get(timeout=T)
        with pytest.raises(CustomError):
            res.join(timeout=T)

        res = group(t.add.s(i, 1) for i in range(3))()
        res.save()
        restored = GroupResult.restore(res.id, app=any_app)
        assert restored is not None and restored.id == res.id
        assert [r.id for r in restored.results] == [r.id for r in res.results]
        assert restored.get(timeout=T) == [1, 2, 3]
        assert GroupResult.restore("no-such-group", app=any_app) is None


def test_chords(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = chord((t.add.s(i, i) for i in range(10)), t.xsum.s())()
        assert res.get(timeout=T) == 90
        assert (group(t.add.s(i, i) for i in range(10)) | t.xsum.s())().get(timeout=T) == 90
        assert chord([t.add.s(1, 1), t.mul.s(3, 3)])(t.xsum.s()).get(timeout=T) == 11
        # the body gets the header's results in header order
        assert chord([t.sub.s(9, i) for i in range(5)], t.identity.s())().get(timeout=T) \
            == [9, 8, 7, 6, 5]
        # a partial body gets the list prepended
        assert chord([t.add.s(1, 1), t.add.s(2, 2)], t.record.s())().get(timeout=T) == [2, 4]
        # immutable body ignores the header's results
        assert chord([t.add.s(1, 1)], t.add.si(5, 5))().get(timeout=T) == 10
        # an empty header runs the body with []
        assert chord([], t.identity.s())().get(timeout=T) == []


def test_chord_header_failure_is_a_chord_error(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        res = chord([t.add.s(1, 1), t.fail.s(7), t.add.s(2, 2)], t.record.s())()
        with pytest.raises(ChordError) as info:
            res.get(timeout=T)
        [failed_id] = [e[1] for e in t.log if e[0] == "fail"]
        assert failed_id in str(info.value)
        assert res.state == states.FAILURE and res.failed()
        assert isinstance(res.get(timeout=T, propagate=False), ChordError)
        # the body never ran: not before, and not after more work went through
        assert t.add.delay(5, 5).get(timeout=T) == 10
        assert chord([t.add.s(3, 3)], t.xsum.s())().get(timeout=T) == 6
        assert not [e for e in t.log if e[0] == "record"]
        assert res.state == states.FAILURE


def test_map_starmap_chunks(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    expected_chunks = [[2 * i for i in range(k, k + 10)] for k in range(0, 100, 10)]
    with start_worker(any_app, concurrency=4):
        assert t.xsum.map([list(range(10)), list(range(100))]).delay().get(timeout=T) \
            == [45, 4950]
        assert t.add.starmap([(2, 2), (4, 4)]).apply_async().get(timeout=T) == [4, 8]
        assert t.add.starmap([]).apply_async().get(timeout=T) == []
        assert t.add.chunks(zip(range(100), range(100)), 10)().get(timeout=T) == expected_chunks
        g = t.add.chunks(zip(range(100), range(100)), 10).group()
        assert g.apply_async().get(timeout=T) == expected_chunks
        assert chunks(t.add.s(), [(1, 2), (3, 4), (5, 6)], 2)().get(timeout=T) == [[3, 7], [11]]


# ---------------------------------------------------------------------------
# Memory transport: signatures themselves, option merging, the wire form.
# ---------------------------------------------------------------------------

def test_group_publish_is_one_batch(memory_app: Corekit,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    t = make_tasks(memory_app)
    calls = spy_publish(memory_app, monkeypatch)
    res = group(t.add.s(i, i) for i in range(100)).apply_async()
    assert [len(c) for c in calls] == [100]
    [messages] = calls
    assert [m.headers["id"] for m in messages] == [r.id for r in res.results]
    assert {m.headers["group"] for m in messages} == {res.id}
    assert [m.headers["group_index"] for m in messages] == list(range(100))
    assert [body_of(memory_app, m)[0] for m in messages] == [[i, i] for i in range(100)]
    monkeypatch.undo()
    with start_worker(memory_app, concurrency=4):
        assert res.get(timeout=T) == [2 * i for i in range(100)]


def test_chord_on_the_wire(memory_app: Corekit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each header task carries the (frozen) body in "chord", as a Celery
    worker expects; the header goes out in one batch."""
    t = make_tasks(memory_app)
    calls = spy_publish(memory_app, monkeypatch)
    res = chord((t.add.s(i, i) for i in range(20)), t.xsum.s()).apply_async()
    header = [m for c in calls for m in c if m.headers["task"] == t.add.name]
    assert len(header) == 20
    ids = {m.headers["id"] for m in header}
    assert any(ids <= {m.headers["id"] for m in c} for c in calls), "header not in one batch"
    groups = {m.headers["group"] for m in header}
    assert len(groups) == 1 and None not in groups
    for m in header:
        body = body_of(memory_app, m)[2]["chord"]
        assert body["task"] == t.xsum.name
        assert body["options"]["task_id"] == res.id
    monkeypatch.undo()
    with start_worker(memory_app, concurrency=4):
        assert res.get(timeout=T) == 380


def test_chunks_shape(memory_app: Corekit) -> None:
    t = make_tasks(memory_app)
    c = t.add.chunks(zip(range(100), range(100)), 10)
    assert c["subtask_type"] in (None, "chunks")  # (Celery: a celery.chunks signature)
    g = c.group()
    assert isinstance(g, group) and len(g.tasks) == 10
    assert all(isinstance(s, xstarmap) for s in g.tasks)
    assert [len(list(s.kwargs["it"])) for s in g.tasks] == [10] * 10
