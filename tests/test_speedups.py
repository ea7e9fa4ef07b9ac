"""The hot path's compiled modules and their pure-Python twins agree."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corekit._speedups as speedups
from corekit.transport import Message

PYTHON = speedups.load("python")
try:
    CYTHON = speedups.load("cython")
except ImportError:
    CYTHON = None

IMPLS = [pytest.param(PYTHON, id="python"),
         pytest.param(CYTHON, id="cython",
                      marks=pytest.mark.skipif(CYTHON is None, reason="extensions not built"))]
needs_both = pytest.mark.skipif(CYTHON is None, reason="extensions not built: nothing to compare")


def test_a_build_that_should_have_compiled_did() -> None:
    if os.environ.get("COREKIT_EXPECT_EXTENSIONS") != "1":
        pytest.skip("COREKIT_EXPECT_EXTENSIONS is not set (scripts/test.sh sets it)")
    assert CYTHON is not None, "the Cython extensions are not importable: the build fell back"
    assert speedups.IMPLEMENTATION == "cython"


def test_no_extensions_env_selects_the_twins() -> None:
    code = "import corekit._speedups as s; print(s.IMPLEMENTATION, s.EtaHeap.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "COREKIT_NO_EXTENSIONS": "1"}, check=True)
    assert out.stdout.split() == ["python", "corekit._speedups.etaheap"]


# -- parse_iso8601 -----------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("text", ["2026-11-22T10:00:00", "2026-11-22T10:00:00.5+00:00",
                                  "2026-11-22T10:00:00.123456Z", "2026-11-22 10:00:00.123",
                                  "2026-11-22T12:00:00+02:00", "1999-12-31T23:59:59-08:30"])
def test_parse_iso8601(impl: Any, text: str) -> None:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    expected = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    assert impl.parse_iso8601(text) == expected


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01T00:00:00", "2026-02-30T00:00:00",
                                  "2026-11-22T25:00:00", "2026-11-22T10:00:00+5", 12, None])
def test_parse_iso8601_rejects(impl: Any, text: Any) -> None:
    with pytest.raises(ValueError):
        impl.parse_iso8601(text)


iso_like = st.builds(
    lambda dt, sep, frac, tz: dt.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + tz,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["T", " ", "t", "x"]),
    st.sampled_from(["", ".1", ".123", ".123456", ".12", ".1234567"]),
    st.sampled_from(["", "Z", "+00:00", "-05:30", "+14:00", "+24:00", "+1:00", "z"]))


def _outcome(fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except ValueError:
        return ValueError


@needs_both
@settings(max_examples=400, deadline=None)
@given(st.one_of(iso_like, st.text(max_size=40)))
def test_parse_iso8601_twins_agree(text: str) -> None:
    assert _outcome(CYTHON.parse_iso8601, text) == _outcome(PYTHON.parse_iso8601, text)


# -- decode_batch ----------------------------------------------------------------------
def message(headers: Any, content_type: Any = "application/json") -> Message:
    return Message(body=b"[]", headers=headers, properties={}, content_type=content_type)


GOOD = {"task": "proj.add", "id": "abc", "retries": 2, "eta": "2026-01-01T00:00:00",
        "expires": None, "timelimit": [10, 5.5], "root_id": "r", "parent_id": "p",
        "group": "g", "ignore_result": True, "compression": "application/zstd"}


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_batch_good_and_bad(impl: Any) -> None:
    batch = [message(GOOD), message("not a dict"), message({**GOOD, "task": ""}),
             message({**GOOD, "id": 5}), message({**GOOD, "retries": "2"}),
             message({**GOOD, "eta": "soon"}), message({**GOOD, "timelimit": [1]}),
             message(GOOD, content_type=None), message({"task": "t", "id": "i"})]
    good, bad = impl.decode_batch(batch)
    assert [g.id for g in good] == ["abc", "i"]
    g = good[0]
    assert (g.task, g.retries, g.eta, g.expires, g.time_limit, g.soft_time_limit, g.root_id,
            g.parent_id, g.group, g.ignore_result, g.compression, g.content_type) == (
        "proj.add", 2, 1767225600.0, None, 10, 5.5, "r", "p", "g", True, "application/zstd",
        "application/json")
    assert g.message is batch[0] and not g.redelivered
    assert [reason for _, reason in bad] == [
        "headers are not a mapping", "bad 'task' header: ''", "bad 'id' header: 5",
        "bad 'retries' header: '2'", "bad 'eta' header: 'soon'",
        "bad 'timelimit' header: [1]", "bad content type: None"]
    assert good[1].retries == 0 and good[1].time_limit is None


header_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                          st.text(max_size=8), iso_like,
                          st.lists(st.one_of(st.none(), st.integers(0, 9), st.text(max_size=2)),
                                   max_size=3))
headers = st.one_of(
    st.fixed_dictionaries({}, optional={k: header_values for k in GOOD}),
    st.builds(lambda d: {**GOOD, **d}, st.dictionaries(st.sampled_from(sorted(GOOD)),
                                                       header_values, max_size=3)),
    header_values)


def _summary(result: tuple[list[Any], list[Any]]) -> Any:
    good, bad = result
    fields = ("task", "id", "root_id", "parent_id", "group", "retries", "eta", "expires",
              "time_limit", "soft_time_limit", "ignore_result", "compression", "content_type",
              "redelivered")
    return ([tuple(getattr(g, f) for f in fields) for g in good],
            [(id(m), reason) for m, reason in bad])


@needs_both
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(headers, st.sampled_from(["application/json", None, 3])),
                max_size=8))
def test_decode_batch_twins_agree(specs: list[tuple[Any, Any]]) -> None:
    batch = [message(h, ct) for h, ct in specs]
    assert _summary(CYTHON.decode_batch(batch)) == _summary(PYTHON.decode_batch(batch))


# -- EtaHeap ------------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_eta_heap(impl: Any) -> None:
    heap = impl.EtaHeap()
    assert not heap and heap.next_due() is None and heap.pop_due(1e18) == []
    ids = {name: heap.push(when, name) for name, when in
           [("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0), ("d", 4.0)]}
    assert len(heap) == 5 and heap.next_due() == 1.0
    assert heap.cancel(ids["a"]) and not heap.cancel(ids["a"])
    assert len(heap) == 4 and heap.next_due() == 1.0
    assert heap.pop_due(2.0, limit=1) == ["a2"]
    assert heap.pop_due(3.0) == ["b", "c"]
    assert heap.pop_due(3.5) == [] and heap.next_due() == 4.0
    for i in range(1000):  # growth past the initial capacity
        heap.push(float(1000 - i), i)
    assert heap.pop_due(5.0) == [999, 998, 997, "d", 996, 995]  # ties in push order


ops = st.lists(st.one_of(
    st.tuples(st.just("push"), st.floats(0, 100, allow_nan=False)),
    st.tuples(st.just("pop"), st.floats(0, 100, allow_nan=False)),
    st.tuples(st.just("popn"), st.integers(0, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 40))), max_size=60)


def _run_heap(impl: Any, operations: list[tuple[str, Any]]) -> list[Any]:
    heap, out, ids = impl.EtaHeap(), [], []
    for i, (op, arg) in enumerate(operations):
        if op == "push":
            ids.append(heap.push(arg, i))
        elif op == "pop":
            out.append(heap.pop_due(arg))
        elif op == "popn":
            out.append(heap.pop_due(50.0, arg))
        elif ids:
            out.append(heap.cancel(ids[arg % len(ids)]))
        out.append((len(heap), heap.next_due()))
    return out


@needs_both
@settings(max_examples=300, deadline=None)
@given(ops)
def test_eta_heap_twins_agree(operations: list[tuple[str, Any]]) -> None:
    assert _run_heap(CYTHON, operations) == _run_heap(PYTHON, operations)


# -- Dispatcher ---------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_dispatcher_prefetch_accounting_and_acks(impl: Any) -> None:
    applied: list[Any] = []
    d = impl.Dispatcher(applied.append, 2)
    d.add(["a", "b", "c"])
    assert d.wants(5) == 2 and d.reserved == 3
    assert d.dispatch() == 2 and applied == ["a", "b"]
    assert (d.inflight, d.ready_count, d.dispatch()) == (2, 1, 0)
    d.done("a", "ack-a")
    d.done("b", None)
    assert d.take_acks() == ["ack-a"] and d.take_acks() == []
    assert d.dispatch() == 1 and d.inflight == 1
    d.add(["x", "y"])
    assert d.drain_ready() == ["x", "y"] and d.reserved == 1
    d.set_capacity(3)
    d.add(["p", "q"])
    assert d.dispatch() == 2 and d.inflight == 3


@pytest.mark.parametrize("impl", IMPLS)
def test_dispatcher_apply_failure_keeps_the_request(impl: Any) -> None:
    def refuse(req: Any) -> None:
        raise RuntimeError("pool closed")

    d = impl.Dispatcher(refuse, 4)
    d.add(["a", "b"])
    with pytest.raises(RuntimeError):
        d.dispatch()
    assert d.inflight == 0 and d.drain_ready() == ["a", "b"]


@pytest.mark.parametrize("impl", IMPLS)
def test_dispatcher_done_from_other_threads(impl: Any) -> None:
    d = impl.Dispatcher(lambda req: None, 10_000)
    d.add(list(range(4000)))
    assert d.dispatch() == 4000
    threads = [threading.Thread(target=lambda k=k: [d.done(i, i) for i in range(k, 4000, 4)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert d.inflight == 0 and sorted(d.take_acks()) == list(range(4000))


dispatch_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 5)), st.tuples(st.just("dispatch"), st.just(0)),
    st.tuples(st.just("done"), st.booleans()), st.tuples(st.just("acks"), st.just(0)),
    st.tuples(st.just("drain"), st.just(0)), st.tuples(st.just("cap"), st.integers(1, 4))),
    max_size=50)


def _run_dispatcher(impl: Any, operations: list[tuple[str, Any]]) -> list[Any]:
    running: list[Any] = []
    d, out, n = impl.Dispatcher(running.append, 2), [], 0
    for op, arg in operations:
        if op == "add":
            d.add(list(range(n, n + arg)))
            n += arg
        elif op == "dispatch":
            out.append(d.dispatch())
        elif op == "done" and running:
            req = running.pop(0)
            d.done(req, req if arg else None)
        elif op == "acks":
            out.append(d.take_acks())
        elif op == "drain":
            out.append(d.drain_ready())
        elif op == "cap":
            d.set_capacity(arg)
        out.append((d.inflight, d.ready_count, d.reserved, d.wants(6)))
    return out


@needs_both
@settings(max_examples=300, deadline=None)
@given(dispatch_ops)
def test_dispatcher_twins_agree(operations: list[tuple[str, Any]]) -> None:
    assert _run_dispatcher(CYTHON, operations) == _run_dispatcher(PYTHON, operations)
