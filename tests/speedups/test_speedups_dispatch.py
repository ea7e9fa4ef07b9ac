"""Dispatcher, the pool hand-off: both twins, against a reference model, from
several threads, and against each other."""
from __future__ import annotations

import gc
import queue
import threading
import weakref
from collections import deque
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from helpers import CYTHON, IMPLS, PYTHON, needs_both


@pytest.mark.parametrize("impl", IMPLS)
def test_prefetch_accounting_and_acks(impl: Any) -> None:
    applied: list[Any] = []
    d = impl.Dispatcher(applied.append, 2)
    assert (d.capacity, d.apply, d.inflight, d.ready_count, d.reserved) == (
        2, applied.append, 0, 0, 0)
    d.add(["a", "b", "c"])
    assert d.wants(5) == 2 and d.reserved == 3 and d.wants(2) == 0
    assert d.dispatch() == 2 and applied == ["a", "b"]
    assert (d.inflight, d.ready_count, d.reserved, d.dispatch()) == (2, 1, 3, 0)
    d.done("a", "ack-a")
    d.done("b", None)
    acks = d.take_acks()
    assert acks == ["ack-a"] and d.take_acks() == []
    acks.append("mine")  # the caller owns what it took
    assert d.take_acks() == []
    assert d.dispatch() == 1 and d.inflight == 1 and applied == ["a", "b", "c"]
    d.add(("x", "y"))
    d.add(r for r in ["z"])
    assert d.drain_ready() == ["x", "y", "z"] and d.reserved == 1 and d.drain_ready() == []
    d.set_capacity(3)
    d.add(["p", "q", "r"])
    assert d.dispatch() == 2 and d.inflight == 3 and d.ready_count == 1 and d.capacity == 3
    d.set_capacity(0)
    for req in ["c", "p", "q"]:
        d.done(req, req)
    assert d.dispatch() == 0 and d.inflight == 0 and d.wants(3) == 2
    assert d.take_acks() == ["c", "p", "q"]


@pytest.mark.parametrize("impl", IMPLS)
def test_bad_capacity_and_spurious_done(impl: Any) -> None:
    with pytest.raises(ValueError):
        impl.Dispatcher(print, -1)
    d = impl.Dispatcher(lambda req: None, 1)
    with pytest.raises(ValueError):
        d.set_capacity(-1)
    with pytest.raises(TypeError):
        d.set_capacity(1.5)
    assert d.capacity == 1
    with pytest.raises(RuntimeError, match="nothing in flight"):
        d.done("ghost", "ack")
    assert d.inflight == 0 and d.take_acks() == []


@pytest.mark.parametrize("impl", IMPLS)
def test_apply_failure_puts_the_request_back_in_front(impl: Any) -> None:
    applied: list[Any] = []

    def apply(req: Any) -> None:
        if req == "bad":
            raise RuntimeError("pool closed")
        applied.append(req)

    d = impl.Dispatcher(apply, 3)
    d.add(["a", "bad", "c", "d"])
    with pytest.raises(RuntimeError, match="pool closed"):
        d.dispatch()
    assert applied == ["a"] and d.inflight == 1 and d.ready_count == 3
    with pytest.raises(RuntimeError):
        d.dispatch()
    assert d.drain_ready() == ["bad", "c", "d"] and d.inflight == 1
    d.add(["e", "f"])
    assert d.dispatch() == 2 and applied == ["a", "e", "f"]


@pytest.mark.parametrize("impl", IMPLS)
def test_apply_may_finish_inline(impl: Any) -> None:
    """A solo pool runs the request inside ``apply`` and calls `done` there:
    no deadlock, and the freed slot is used in the same `dispatch`."""
    order: list[int] = []

    def run_inline(req: int) -> None:
        order.append(req)
        assert d.inflight == 1
        d.done(req, req)

    d = impl.Dispatcher(run_inline, 1)
    d.add(list(range(500)))
    assert d.dispatch() == 500 and order == list(range(500))
    assert d.inflight == 0 and d.take_acks() == list(range(500))


class Request:
    pass


@pytest.mark.parametrize("impl", IMPLS)
def test_handed_over_requests_are_not_kept_alive(impl: Any) -> None:
    d = impl.Dispatcher(lambda req: None, 2)
    requests = [Request() for _ in range(10)]
    refs = [weakref.ref(r) for r in requests]
    d.add(requests)
    del requests
    assert d.dispatch() == 2
    d.done(None, None)
    d.done(None, None)
    gc.collect()
    assert [ref() is None for ref in refs] == [True] * 2 + [False] * 8
    assert len(d.drain_ready()) == 8
    gc.collect()
    assert all(ref() is None for ref in refs)


@pytest.mark.parametrize("impl", IMPLS)
def test_a_consumer_that_owns_its_dispatcher_is_collected(impl: Any) -> None:
    class Consumer:  # the consumer -> dispatcher -> bound method -> consumer cycle
        def __init__(self) -> None:
            self.dispatcher = impl.Dispatcher(self.hand_to_pool, 2)

        def hand_to_pool(self, req: Any) -> None:
            pass

    consumer = Consumer()
    consumer.dispatcher.add([Request(), Request(), Request()])
    consumer.dispatcher.dispatch()
    ref = weakref.ref(consumer)
    del consumer
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("impl", IMPLS)
def test_done_from_pool_threads_while_dispatching(impl: Any) -> None:
    capacity, total = 8, 20000
    work: queue.Queue[Any] = queue.Queue()
    outstanding, peak, guard, wake = [0], [0], threading.Lock(), threading.Event()

    def apply(req: int) -> None:
        with guard:
            outstanding[0] += 1
            peak[0] = max(peak[0], outstanding[0])
        work.put(req)

    d = impl.Dispatcher(apply, capacity)

    def pool_thread() -> None:
        while (req := work.get()) is not None:
            with guard:
                outstanding[0] -= 1
            d.done(req, req if req % 2 else None)
            wake.set()

    threads = [threading.Thread(target=pool_thread) for _ in range(4)]
    for t in threads:
        t.start()
    acked: list[int] = []
    try:
        sent = 0
        while sent < total or d.reserved:
            if sent < total and d.wants(32):
                batch = list(range(sent, min(total, sent + d.wants(32))))
                d.add(batch)
                sent += len(batch)
            assert d.inflight <= capacity
            if not d.dispatch():  # like the consumer: sleep until a pool thread finishes
                wake.wait(0.01)
                wake.clear()
            acked.extend(d.take_acks())
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    acked.extend(d.take_acks())
    assert d.inflight == 0 and d.ready_count == 0
    assert sorted(acked) == list(range(1, total, 2)) and 1 < peak[0] <= capacity


@pytest.mark.parametrize("impl", IMPLS)
def test_concurrent_done_loses_nothing(impl: Any) -> None:
    d = impl.Dispatcher(lambda req: None, 100_000)
    d.add(list(range(40_000)))
    assert d.dispatch() == 40_000
    threads = [threading.Thread(target=lambda k=k: [d.done(i, i) for i in range(k, 40_000, 4)])
               for k in range(4)]
    taken: list[int] = []
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        taken.extend(d.take_acks())
    for t in threads:
        t.join()
    taken.extend(d.take_acks())
    assert d.inflight == 0 and sorted(taken) == list(range(40_000))


class Model:
    """What Dispatcher must do, one request at a time."""

    def __init__(self, apply: Any, capacity: int) -> None:
        self.apply, self.capacity = apply, capacity
        self.ready: deque[Any] = deque()
        self.inflight = 0
        self.acks: list[Any] = []

    def add(self, requests: list[Any]) -> None:
        self.ready.extend(requests)

    def dispatch(self) -> int:
        n = 0
        while self.ready and self.inflight < self.capacity:
            req = self.ready.popleft()
            try:
                self.apply(req)
            except BaseException:
                self.ready.appendleft(req)
                raise
            self.inflight += 1
            n += 1
        return n

    def done(self, request: Any, ack: Any) -> None:
        self.inflight -= 1
        if ack is not None:
            self.acks.append(ack)

    def take_acks(self) -> list[Any]:
        acks, self.acks = self.acks, []
        return acks

    def drain_ready(self) -> list[Any]:
        out = list(self.ready)
        self.ready.clear()
        return out

    def set_capacity(self, n: int) -> None:
        self.capacity = n

    @property
    def ready_count(self) -> int:
        return len(self.ready)

    @property
    def reserved(self) -> int:
        return len(self.ready) + self.inflight

    def wants(self, limit: int) -> int:
        return max(0, limit - self.reserved)


dispatch_ops = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 40)), st.tuples(st.just("dispatch"), st.just(0)),
    st.tuples(st.just("done"), st.integers(0, 10)), st.tuples(st.just("acks"), st.just(0)),
    st.tuples(st.just("drain"), st.just(0)), st.tuples(st.just("cap"), st.integers(0, 50)),
    st.tuples(st.just("poison"), st.integers(0, 200)), st.tuples(st.just("cure"), st.just(0))),
    max_size=60)


def _run(make: Any, operations: list[tuple[str, Any]]) -> list[Any]:
    running: list[Any] = []
    poison: set[int] = set()

    def apply(req: int) -> None:
        if req in poison:
            raise KeyError(req)
        running.append(req)

    d, out, n = make(apply, 3), [], 0
    for op, arg in operations:
        if op == "add":
            d.add(list(range(n, n + arg)))
            n += arg
        elif op == "dispatch":
            try:
                out.append(d.dispatch())
            except KeyError as exc:
                out.append(("raised", exc.args))
        elif op == "done" and running:
            req = running.pop(arg % len(running))
            d.done(req, req if req % 3 else None)
        elif op == "acks":
            out.append(d.take_acks())
        elif op == "drain":
            out.append(d.drain_ready())
        elif op == "cap":
            d.set_capacity(arg)
        elif op == "poison":
            poison.add(arg)
        elif op == "cure":
            poison.clear()
        out.append((d.inflight, d.ready_count, d.reserved, d.wants(20), list(running)))
    return out


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(operations=dispatch_ops)
def test_dispatcher_matches_the_model(impl: Any, operations: list[tuple[str, Any]]) -> None:
    assert _run(impl.Dispatcher, operations) == _run(Model, operations)


@needs_both
@settings(max_examples=300, deadline=None)
@given(dispatch_ops)
def test_dispatcher_twins_agree(operations: list[tuple[str, Any]]) -> None:
    assert _run(CYTHON.Dispatcher, operations) == _run(PYTHON.Dispatcher, operations)
