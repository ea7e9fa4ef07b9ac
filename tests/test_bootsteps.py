"""Blueprints order steps by `requires`, start in order, stop in reverse."""
from __future__ import annotations

from typing import Any

import pytest

from corekit.bootsteps import Blueprint, Step
from corekit.exceptions import ImproperlyConfigured


class Parent:
    def __init__(self) -> None:
        self.log: list[str] = []


def recording(name: str, requires: tuple[type[Step], ...] = (), fail: str = "",
              enabled: bool = True) -> type[Step]:
    class S(Step):
        def create(self, parent: Any) -> None:
            parent.log.append(f"create {name}")
            self.thing = f"{name}-object"

        def start(self, parent: Any) -> None:
            if fail == "start":
                raise RuntimeError(f"{name} cannot start")
            parent.log.append(f"start {name}")

        def stop(self, parent: Any) -> None:
            parent.log.append(f"stop {name}")
            if fail == "stop":
                raise RuntimeError(f"{name} cannot stop")

        def enabled(self, parent: Any) -> bool:
            return enabled

    S.__name__ = S.__qualname__ = name
    S.name = name
    S.requires = requires
    return S


def test_order_start_and_reverse_stop() -> None:
    a = recording("A")
    b = recording("B", (a,))
    c = recording("C", (a,))
    d = recording("D", (b, c))
    bp = Blueprint([d])  # requirements are pulled in
    assert bp.order() == [a, b, c, d]
    parent = Parent()
    bp.apply(parent)
    assert bp[b].thing == "B-object"
    bp.start(parent)
    assert bp.state == "running"
    bp.stop(parent)
    bp.stop(parent)  # idempotent
    assert parent.log == ["create A", "create B", "create C", "create D",
                          "start A", "start B", "start C", "start D",
                          "stop D", "stop C", "stop B", "stop A"]
    assert bp.state == "stopped"


def test_declared_order_kept_where_free() -> None:
    x, y, z = recording("X"), recording("Y"), recording("Z")
    assert Blueprint([z, x, y]).order() == [z, x, y]


def test_cycle_is_named() -> None:
    a = recording("A")
    b = recording("B", (a,))
    a.requires = (b,)
    with pytest.raises(ImproperlyConfigured, match="A -> B -> A|B -> A -> B"):
        Blueprint([a]).order()


def test_failed_start_stops_what_started() -> None:
    a = recording("A")
    b = recording("B", (a,), fail="start")
    parent = Parent()
    bp = Blueprint([b]).apply(parent)
    with pytest.raises(RuntimeError, match="B cannot start"):
        bp.start(parent)
    assert parent.log[-2:] == ["start A", "stop A"]


def test_failed_stop_continues_then_raises() -> None:
    a = recording("A")
    b = recording("B", (a,), fail="stop")
    parent = Parent()
    bp = Blueprint([b]).apply(parent)
    bp.start(parent)
    with pytest.raises(RuntimeError, match="B cannot stop"):
        bp.stop(parent)
    assert parent.log[-2:] == ["stop B", "stop A"]


def test_disabled_steps() -> None:
    a = recording("A", enabled=False)
    b = recording("B")
    parent = Parent()
    bp = Blueprint([a, b]).apply(parent)
    assert list(bp.steps) == [b]
    needs_a = recording("C", (a,))
    with pytest.raises(ImproperlyConfigured, match="C requires disabled step.*A"):
        Blueprint([needs_a]).apply(Parent())
