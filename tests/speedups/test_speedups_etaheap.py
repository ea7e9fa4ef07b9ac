"""EtaHeap, the worker's timer: both twins, against a reference model and
against each other."""
from __future__ import annotations

import gc
import random
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


from helpers import CYTHON, IMPLS, PYTHON, needs_both


class Model:
    """What EtaHeap must do, the slow obvious way."""

    def __init__(self) -> None:
        self.live: dict[int, tuple[float, Any]] = {}
        self.seq = 0

    def push(self, when: float, item: Any) -> int:
        self.live[self.seq] = (float(when), item)
        self.seq += 1
        return self.seq - 1

    def pop_due(self, now: float, limit: int = -1) -> list[Any]:
        due = sorted((when, seq) for seq, (when, _) in self.live.items() if when <= now)
        if limit >= 0:
            due = due[:limit]
        return [self.live.pop(seq)[1] for _, seq in due]

    def cancel(self, entry_id: Any) -> bool:
        return type(entry_id) is int and self.live.pop(entry_id, None) is not None

    def next_due(self) -> float | None:
        return min((when for when, _ in self.live.values()), default=None)

    def __len__(self) -> int:
        return len(self.live)


@pytest.mark.parametrize("impl", IMPLS)
def test_eta_heap(impl: Any) -> None:
    heap = impl.EtaHeap()
    assert not heap and len(heap) == 0 and heap.next_due() is None and heap.pop_due(1e18) == []
    ids = {name: heap.push(when, name) for name, when in
           [("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1), ("d", 4.0)]}
    assert len(set(ids.values())) == 5 and all(type(i) is int for i in ids.values())
    assert heap and len(heap) == 5 and heap.next_due() == 1.0
    assert type(heap.next_due()) is float
    assert heap.cancel(ids["a"]) and not heap.cancel(ids["a"])
    assert len(heap) == 4 and heap.next_due() == 1.0
    assert heap.pop_due(0.5) == [] and heap.pop_due(2.0, limit=0) == []
    assert heap.pop_due(2.0, limit=1) == ["a2"]
    assert not heap.cancel(ids["a2"])  # already popped
    assert heap.pop_due(3.0) == ["b", "c"]
    assert heap.pop_due(3.5) == [] and heap.next_due() == 4.0
    for i in range(1000):  # past the initial capacity
        heap.push(float(1000 - i), i)
    assert heap.pop_due(5.0) == [999, 998, 997, "d", 996, 995]  # ties in push order
    assert len(heap) == 995 and heap.next_due() == 6.0
    assert heap.pop_due(float("inf"), 3) == [994, 993, 992]
    assert len(heap.pop_due(float("inf"))) == 992 and not heap and heap.next_due() is None


@pytest.mark.parametrize("impl", IMPLS)
def test_eta_heap_odd_input(impl: Any) -> None:
    heap = impl.EtaHeap()
    with pytest.raises(ValueError):
        heap.push(float("nan"), "x")
    with pytest.raises(TypeError):
        heap.push("1.0", "x")  # type: ignore[arg-type]
    assert len(heap) == 0
    none_id = heap.push(1.0, None)  # an item may be None
    heap.push(float("-inf"), "early")
    heap.push(float("inf"), "never")
    assert len(heap) == 3 and heap.next_due() == float("-inf")
    assert heap.pop_due(float("nan")) == []
    assert not heap.cancel("0") and not heap.cancel(None) and not heap.cancel(-1)
    assert not heap.cancel(True) and not heap.cancel(10**30)
    assert heap.cancel(none_id) and not heap.cancel(none_id) and len(heap) == 2
    assert heap.pop_due(1e300) == ["early"] and heap.pop_due(float("inf")) == ["never"]


@pytest.mark.parametrize("impl", IMPLS)
def test_eta_heap_cancelled_top_is_skipped(impl: Any) -> None:
    heap = impl.EtaHeap()
    first = heap.push(1.0, "first")
    heap.push(2.0, "second")
    heap.cancel(first)
    assert heap.next_due() == 2.0 and heap.pop_due(1.5) == [] and len(heap) == 1
    assert heap.pop_due(2.0, limit=1) == ["second"]


class Item:
    pass


@pytest.mark.parametrize("impl", IMPLS)
def test_popped_and_cancelled_items_are_released(impl: Any) -> None:
    heap = impl.EtaHeap()
    items = [Item() for _ in range(4)]
    refs = [weakref.ref(item) for item in items]
    ids = [heap.push(float(i), item) for i, item in enumerate(items)]
    del items
    assert len(heap.pop_due(0.0)) == 1
    assert heap.cancel(ids[3])
    gc.collect()
    assert [ref() is None for ref in refs] == [True, False, False, True]


@pytest.mark.parametrize("impl", IMPLS)
def test_reference_cycles_through_the_heap_are_collected(impl: Any) -> None:
    heap = impl.EtaHeap()
    item = Item()
    item.heap = heap  # type: ignore[attr-defined]
    heap.push(1.0, item)
    heap.push(2.0, (heap, Item()))  # a cycle through a tuple, which the GC cannot clear
    ref = weakref.ref(item)
    del heap, item
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("impl", IMPLS)
def test_an_item_finalizer_may_use_the_heap(impl: Any) -> None:
    heap = impl.EtaHeap()

    class Reschedules:
        def __del__(self) -> None:
            heap.push(5.0, "from __del__")

    entry = heap.push(1.0, Reschedules())
    heap.push(2.0, "other")
    assert heap.cancel(entry)
    assert len(heap) == 2 and heap.pop_due(10.0) == ["other", "from __del__"]
    heap.push(1.0, Reschedules())
    assert len(heap.pop_due(1.0)) == 1  # the list, and with it the item, is gone now
    assert heap.pop_due(10.0) == ["from __del__"]


@pytest.mark.parametrize("impl", IMPLS)
def test_eta_heap_many_cancels_compact_and_keep_order(impl: Any) -> None:
    rng = random.Random(7)
    heap, model = impl.EtaHeap(), Model()
    ids = []
    for i in range(6000):
        when = rng.choice([rng.uniform(0, 100), float(rng.randint(0, 20))])
        ids.append((heap.push(when, i), model.push(when, i)))
    for a, b in rng.sample(ids, 5000):  # past the compaction threshold
        assert heap.cancel(a) == model.cancel(b)
    assert len(heap) == len(model) == 1000 and heap.next_due() == model.next_due()
    heap.push(50.0, "late")
    model.push(50.0, "late")
    assert heap.pop_due(60.0, 300) == model.pop_due(60.0, 300)
    assert heap.pop_due(1e9) == model.pop_due(1e9) and not heap


ops = st.lists(st.one_of(
    st.tuples(st.just("push"), st.one_of(st.sampled_from([0.0, 1.0, 1.5, 2.0, 50.0]),
                                         st.floats(-1e3, 1e3), st.integers(-5, 5))),
    st.tuples(st.just("pop"), st.one_of(st.floats(-1e3, 1e3), st.sampled_from([1.0, 2.0]))),
    st.tuples(st.just("popn"), st.integers(-1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
    st.tuples(st.just("cancel-odd"), st.sampled_from([-1, 10**6, "1", None, True, 2**64]))),
    max_size=80)


def _run(heap: Any, operations: list[tuple[str, Any]]) -> list[Any]:
    out: list[Any] = []
    ids: list[Any] = []
    for i, (op, arg) in enumerate(operations):
        if op == "push":
            ids.append(heap.push(arg, i))
        elif op == "pop":
            out.append(heap.pop_due(arg))
        elif op == "popn":
            out.append(heap.pop_due(50.0, arg))
        elif op == "cancel" and ids:
            out.append(heap.cancel(ids[arg % len(ids)]))
        elif op == "cancel-odd":
            out.append(heap.cancel(arg))
        due = heap.next_due()
        out.append((len(heap), bool(heap), due, type(due).__name__))
    return out


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=300, deadline=None)
@given(operations=ops)
def test_eta_heap_matches_the_model(impl: Any, operations: list[tuple[str, Any]]) -> None:
    assert _run(impl.EtaHeap(), operations) == _run(Model(), operations)


@needs_both
@settings(max_examples=300, deadline=None)
@given(ops)
def test_eta_heap_twins_agree(operations: list[tuple[str, Any]]) -> None:
    assert _run(CYTHON.EtaHeap(), operations) == _run(PYTHON.EtaHeap(), operations)
