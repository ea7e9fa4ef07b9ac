"""What a plugin adds to the worker through hooks alone: bootsteps, ordered
after what they require and refused when they clash or are not steps, and
early patches for a pool, refused when two plugins patch for one pool.

Plugins here are registered through `PluginManager.register`, as an entry
point would register them; tests/test_third_party_plugin.py does the same
from an installed package in real ``corekit`` processes."""
from __future__ import annotations

from typing import Any

import pytest

from corekit.bootsteps import Step
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.testing import start_worker
from corekit.worker.steps import ConsumerStep, PoolStep
from plugin_hooks_helpers import manager_with


# -- bootsteps ------------------------------------------------------------------


class AuditStep(Step):
    """A plugin's step: it needs the consumer and says when it starts and stops."""

    requires = (ConsumerStep,)
    log: list[str] = []

    def create(self, worker: Any) -> None:
        self.consumer = worker.blueprint[ConsumerStep].consumer
        self.log.append("create")

    def start(self, worker: Any) -> None:
        pool_started = worker.blueprint[PoolStep] in worker.blueprint.started
        self.log.append(f"start (pool running: {pool_started})")

    def stop(self, worker: Any) -> None:
        consumer_started = worker.blueprint[ConsumerStep] in worker.blueprint.started
        self.log.append(f"stop (consumer step still started: {consumer_started})")


class AuditPlugin:
    @hookimpl
    def corekit_register_bootsteps(self) -> list[type[Step]]:
        return [AuditStep]


def test_a_plugin_step_joins_the_blueprint_after_what_it_requires(make_app: Any) -> None:
    AuditStep.log = []
    app = make_app(manager_with(("audit", AuditPlugin())))
    with start_worker(app) as worker:
        step = worker.blueprint[AuditStep]
        assert step.consumer is worker.consumer
        order = worker.blueprint.order()
        assert order.index(AuditStep) > order.index(ConsumerStep)
        assert worker.blueprint.owners[AuditStep] == "audit"
    assert AuditStep.log == ["create", "start (pool running: True)",
                             "stop (consumer step still started: True)"]


def test_remote_control_and_events_come_from_their_plugin(make_app: Any) -> None:
    from corekit.worker.events import EventsStep
    from corekit.worker.remote_control import ControlStep

    with_them = make_app(manager_with()).Worker(pool="threads")
    assert {ControlStep, EventsStep} <= set(with_them.blueprint.declared)
    assert with_them.blueprint.owners[ControlStep] == "optional-steps"
    without = make_app(manager_with(without=("optional-steps",)))
    worker = without.Worker(pool="threads")
    assert not {ControlStep, EventsStep} & set(worker.blueprint.declared)
    with start_worker(without) as running:  # the core alone runs tasks
        task = without.task(name="tests.add")(lambda x, y: x + y)
        assert task.delay(2, 3).get(timeout=30) == 5
        assert EventsStep not in running.blueprint


def test_a_step_requiring_a_step_no_plugin_adds_names_both(make_app: Any) -> None:
    from corekit.worker.events import EventsStep

    class WantsEvents(Step):
        requires = (EventsStep,)

    class Plugin:
        @hookimpl
        def corekit_register_bootsteps(self) -> list[type[Step]]:
            return [WantsEvents]

    app = make_app(manager_with(("wants", Plugin()), without=("optional-steps",)))
    with pytest.raises(ImproperlyConfigured,
                       match=r"step .*WantsEvents \(plugin 'wants'\) requires step "
                             r"EventsStep, which is not in this blueprint"):
        app.Worker(pool="threads").setup()


def test_two_steps_of_one_name_are_an_error_naming_both_plugins(make_app: Any) -> None:
    def plugin(step_name: str) -> object:
        class S(Step):
            name = step_name

        class P:
            @hookimpl
            def corekit_register_bootsteps(self) -> list[type[Step]]:
                return [S]
        return P()

    app = make_app(manager_with(("first", plugin("Spy")), ("second", plugin("Spy"))))
    with pytest.raises(ImproperlyConfigured,
                       match="bootstep 'Spy' is added by both plugin '(first|second)' and "
                             "plugin '(first|second)'"):
        app.Worker(pool="threads")
    core = make_app(manager_with(("third", plugin("PoolStep"))))
    with pytest.raises(ImproperlyConfigured, match="bootstep 'PoolStep' is added by both "
                                                   "corekit's core steps and plugin 'third'"):
        core.Worker(pool="threads")


def test_a_bootstep_that_is_not_a_step_class_is_refused(make_app: Any) -> None:
    class Plugin:
        @hookimpl
        def corekit_register_bootsteps(self) -> list[Any]:
            return [object()]

    app = make_app(manager_with(("odd", Plugin())))
    with pytest.raises(ImproperlyConfigured, match="plugin 'odd' registered <object .*> as a "
                                                   "bootstep: .* must return Step subclasses"):
        app.Worker(pool="threads")


# -- early patches ----------------------------------------------------------------


def test_two_plugins_patching_for_one_pool_stop_the_worker_naming_both(make_app: Any) -> None:
    class Patcher:
        @hookimpl
        def corekit_register_early_patches(self) -> dict[str, Any]:
            return {"threads": lambda: None}

    app = make_app(manager_with(("patch-a", Patcher()), ("patch-b", Patcher())))
    worker = app.Worker(pool="threads", concurrency=1)
    with pytest.raises(ImproperlyConfigured, match="early patch 'threads' is provided by both "
                                                   "plugin 'patch-a' and plugin 'patch-b'"):
        worker.setup()
