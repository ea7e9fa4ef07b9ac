"""Canvas: signatures, callbacks, chains, groups, chords, map/starmap/chunks
and replace, with Celery's semantics and Celery's wire form (DESIGN.md §3).

The main workflows run on every transport (``any_app``); the finer points
(option merging, repr, the message body) on the memory transport only.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from corekit import Corekit, chain, chord, chunks, group, signature, states
from corekit.canvas import Signature, maybe_signature, xmap, xstarmap
from corekit.exceptions import ChordError
from corekit.result import AsyncResult, GroupResult
from corekit.testing import start_worker
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


def test_nested_workflows(any_app: Corekit) -> None:
    t = make_tasks(any_app)
    with start_worker(any_app, concurrency=4):
        # a chain inside a group inside a chord: (1 + 1) * 2 + (3 + 3)
        res = chord(group(chain(t.add.s(1, 1), t.mul.s(2)), t.add.s(3, 3)), t.xsum.s())()
        assert res.get(timeout=T) == 10
        # a chord inside a chain: ((2 + 1) + (2 + 2)) * 10
        res = chain(t.add.s(1, 1), chord([t.add.s(1), t.add.s(2)], t.xsum.s()), t.mul.s(10))()
        assert res.get(timeout=T) == 70
        # a group at the end of a chain
        assert (t.add.s(1, 1) | group(t.add.s(1), t.add.s(2)))().get(timeout=T) == [3, 4]
        # a group in the middle of a chain becomes a chord
        assert (t.add.s(1, 1) | group(t.add.s(1), t.add.s(2)) | t.xsum.s())().get(timeout=T) == 7
        # a group of chains
        assert group(t.add.s(i, i) | t.mul.s(10) for i in range(3))().get(timeout=T) == [0, 20, 40]


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
