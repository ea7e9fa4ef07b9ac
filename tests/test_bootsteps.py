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
    bp = Blueprint([d, c, b, a])  # declared in any order: requires decide
    assert bp.order() == [a, b, c, d]
    parent = Parent()
    bp.apply(parent)
    assert getattr(bp[b], "thing") == "B-object"
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
        Blueprint([a, b]).order()


def test_failed_start_stops_what_started() -> None:
    a = recording("A")
    b = recording("B", (a,), fail="start")
    parent = Parent()
    bp = Blueprint([a, b]).apply(parent)
    with pytest.raises(RuntimeError, match="B cannot start"):
        bp.start(parent)
    assert parent.log[-2:] == ["start A", "stop A"]


def test_failed_stop_continues_then_raises() -> None:
    a = recording("A")
    b = recording("B", (a,), fail="stop")
    parent = Parent()
    bp = Blueprint([a, b]).apply(parent)
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
        Blueprint([a, needs_a]).apply(Parent())


def test_order_moves_requirements_first_and_keeps_declared_order() -> None:
    a, b = recording("A"), recording("B")
    c = recording("C", (b,))
    d = recording("D", (a,))
    # C needs B and D needs A, both listed later: each lands just before
    assert Blueprint([c, b, d, a]).order() == [b, c, a, d]
    assert Blueprint([a, b, c, d]).order() == [a, b, c, d]


def test_requiring_a_step_that_is_not_there_names_both() -> None:
    a = recording("Absent")
    needs = recording("Needs", (a,))
    with pytest.raises(ImproperlyConfigured,
                       match="step Needs requires step Absent, which is not in this "
                             "blueprint"):
        Blueprint([recording("Other"), needs]).order()
    parent = Parent()
    with pytest.raises(ImproperlyConfigured, match="Needs requires step Absent"):
        Blueprint([needs]).apply(parent)
    assert parent.log == []  # nothing created


def test_the_error_says_which_plugin_added_each_step() -> None:
    a = recording("Absent")
    needs = recording("Needs", (a,))
    with pytest.raises(ImproperlyConfigured,
                       match=r"step Needs \(plugin 'acme'\) requires step Absent, which is not "
                             r"in this blueprint: install or enable the plugin that adds it"):
        Blueprint([needs], owners={needs: "acme"}).order()


def test_longer_cycles_and_self_requires_are_named() -> None:
    a = recording("A")
    b = recording("B", (a,))
    c = recording("C", (b,))
    a.requires = (c,)
    with pytest.raises(ImproperlyConfigured, match="circular requires: C -> B -> A -> C"):
        Blueprint([c, b, a]).order()
    s = recording("Self")
    s.requires = (s,)
    with pytest.raises(ImproperlyConfigured, match="Self -> Self"):
        Blueprint([s]).apply(Parent())


def test_step_name_defaults_to_the_class_name() -> None:
    class PoolStep(Step):
        pass

    class Named(Step):
        name = "custom"

    class Child(Named):
        pass

    assert (PoolStep.name, Named.name, Child.name) == ("PoolStep", "custom", "Child")


def test_failed_start_rolls_back_in_reverse_and_reports_the_start_error(
        caplog: pytest.LogCaptureFixture) -> None:
    a = recording("A", fail="stop")
    b = recording("B", (a,))
    c = recording("C", (b,), fail="start")
    d = recording("D", (c,))
    parent = Parent()
    bp = Blueprint([a, b, c, d]).apply(parent)
    with pytest.raises(RuntimeError, match="C cannot start"):
        bp.start(parent)
    assert parent.log[4:] == ["start A", "start B", "stop B", "stop A"]
    assert "A cannot stop" in caplog.text  # the rollback's own failure is logged
    assert bp.state == "stopped"
    bp.stop(parent)
    assert parent.log[-1] == "stop A"  # nothing is stopped twice


def test_failed_stop_is_logged_and_the_first_error_wins(
        caplog: pytest.LogCaptureFixture) -> None:
    a = recording("A", fail="stop")
    b = recording("B", (a,))
    c = recording("C", (b,), fail="stop")
    parent = Parent()
    bp = Blueprint([a, b, c]).apply(parent)
    bp.start(parent)
    with pytest.raises(RuntimeError, match="C cannot stop"):
        bp.stop(parent)
    assert parent.log[-3:] == ["stop C", "stop B", "stop A"]
    failures = [r for r in caplog.records if r.name == "corekit.bootsteps"]
    assert [r.levelname for r in failures] == ["ERROR", "ERROR"]
    assert bp.state == "stopped"
    bp.stop(parent)  # idempotent: nothing left to stop, nothing raised
    assert parent.log[-1] == "stop A"


def test_stop_only_stops_started_steps() -> None:
    parent = Parent()
    bp = Blueprint([recording("A")]).apply(parent)
    bp.stop(parent)
    assert parent.log == ["create A"] and bp.state == "stopped"
    with pytest.raises(RuntimeError, match="cannot start again"):
        bp.start(parent)


def test_terminate_calls_terminate_in_reverse() -> None:
    calls: list[str] = []

    def step(name: str, requires: tuple[type[Step], ...] = ()) -> type[Step]:
        class T(Step):
            def stop(self, parent: Any) -> None:
                calls.append(f"stop {name}")

            def terminate(self, parent: Any) -> None:
                calls.append(f"terminate {name}")

        T.requires = requires
        return T

    a = step("A")
    b = step("B", (a,))
    plain = recording("Plain", (b,))  # no terminate of its own: stop stands in
    parent = Parent()
    bp = Blueprint([a, b, plain]).apply(parent)
    bp.start(parent)
    bp.stop(parent, terminate=True)
    assert calls == ["terminate B", "terminate A"]
    assert parent.log[-1] == "stop Plain"


def test_apply_instantiates_once_and_start_is_idempotent() -> None:
    a = recording("A")
    parent = Parent()
    bp = Blueprint([a]).apply(parent)
    first = bp[a]
    bp.apply(parent)
    assert bp[a] is first and parent.log == ["create A"]
    bp.start(parent)
    bp.start(parent)
    assert parent.log == ["create A", "start A"] and bp.state == "running"
    bp.stop(parent)


def test_requiring_a_disabled_step_creates_nothing() -> None:
    off = recording("Off", enabled=False)
    first = recording("First")
    needs = recording("Needs", (off,))
    parent = Parent()
    with pytest.raises(ImproperlyConfigured, match="Needs requires disabled step.*Off"):
        Blueprint([first, off, needs]).apply(parent)
    assert parent.log == []


def test_disabled_step_is_not_reachable() -> None:
    off = recording("Off", enabled=False)
    parent = Parent()
    bp = Blueprint([off, recording("On")]).apply(parent)
    assert off not in bp
    with pytest.raises(KeyError, match="Off is not part of this blueprint"):
        bp[off]
    bp.start(parent)
    bp.stop(parent)
    assert not any("Off" in line for line in parent.log)


def test_steps_reach_what_required_steps_expose() -> None:
    class Pool:
        pass

    class PoolStep(Step):
        def create(self, parent: Any) -> None:
            self.pool = Pool()

    class ConsumerStep(Step):
        requires = (PoolStep,)

        def create(self, parent: Any) -> None:
            self.pool = parent.blueprint[PoolStep].pool

    class Owner:
        def __init__(self) -> None:
            self.blueprint = Blueprint([ConsumerStep, PoolStep])

    owner = Owner()
    owner.blueprint.apply(owner)
    assert owner.blueprint[ConsumerStep].pool is owner.blueprint[PoolStep].pool
    assert vars(owner).keys() == {"blueprint"}  # nothing written onto the parent
    assert list(owner.blueprint.steps) == [PoolStep, ConsumerStep]


def test_a_pool_refuses_options_it_cannot_honour(memory_app: Any) -> None:
    from corekit.exceptions import ImproperlyConfigured

    worker = memory_app.Worker(pool="threads", concurrency=2, max_tasks_per_child=10)
    with pytest.raises(ImproperlyConfigured, match="threads pool cannot honour "
                                                   "max_tasks_per_child"):
        worker.setup()


def test_a_task_time_limit_the_pool_cannot_enforce_fails_at_start(memory_app: Any) -> None:
    from corekit.exceptions import ImproperlyConfigured

    @memory_app.task(name="proj.bounded", soft_time_limit=5)
    def bounded() -> None:
        pass

    with pytest.raises(ImproperlyConfigured, match="proj.bounded has a soft_time_limit, "
                                                   "which the threads pool cannot enforce"):
        memory_app.Worker(pool="threads", concurrency=1).setup()
