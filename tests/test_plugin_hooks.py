"""What a plugin adds through hooks alone: worker bootsteps, ``corekit``
subcommands and options on existing ones, and the lifecycle hooks, each
called once, at its documented moment, with its documented argument.

Plugins here are registered through `PluginManager.register`, as an entry
point would register them; tests/test_third_party_plugin.py does the same
from an installed package in real ``corekit`` processes."""
from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from corekit import Corekit
from corekit.bootsteps import Step
from corekit.cli import build_parser
from corekit.cli.extensions import apply_setting_options
from corekit.cli.options import CommandOption
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from corekit.pluginmanager import ENTRY_POINT_GROUP, PluginInfo, PluginManager
from corekit.testing import start_worker
from corekit.worker.steps import ConsumerStep, PoolStep


def manager_with(*plugins: tuple[str, object], without: tuple[str, ...] = ()) -> PluginManager:
    """The installed plugins (but those named in *without*) plus *plugins*."""
    eps = [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if ep.name not in without]
    manager = PluginManager(eps)
    assert manager.plugins  # the installed ones load first, as they would
    for name, plugin in plugins:
        manager.register(plugin, PluginInfo(name, f"tests.{name}", "tests", "0"))
    return manager


@pytest.fixture
def make_app() -> Iterator[Any]:
    apps: list[Corekit] = []

    def make(manager: PluginManager, **config: Any) -> Corekit:
        name = uuid.uuid4().hex
        app = Corekit("tests", broker=f"memory://{name}", backend=f"memory://{name}",
                      plugin_manager=manager, **config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


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


# -- lifecycle ------------------------------------------------------------------


class Lifecycle:
    """Records each lifecycle call with what it could see at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    @hookimpl
    def corekit_app_configure(self, app: Corekit) -> None:
        self.calls.append(("configure", app, {
            "include imported": "tests_lifecycle_tasks" in sys.modules,
            "conf": app.conf.task_default_queue}))

    @hookimpl
    def corekit_worker_ready(self, worker: Any) -> None:
        self.calls.append(("ready", worker, {
            "steps": worker.blueprint.state, "ready event": worker.ready.is_set(),
            "thread": threading.current_thread().name}))

    @hookimpl
    def corekit_worker_shutdown(self, worker: Any) -> None:
        self.calls.append(("shutdown", worker, {
            "steps": worker.blueprint.state,
            "consuming": not worker.consumer.stopping.is_set()
            if hasattr(worker.consumer, "stopping") else None}))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def test_app_configure_is_called_once_at_finalize_before_include_imports(
        make_app: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tests_lifecycle_tasks.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "tests_lifecycle_tasks", raising=False)
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)), include=["tests_lifecycle_tasks"],
                   task_default_queue="configured")
    assert seen.calls == []  # creating the app is not finalizing it
    app.finalize()
    app.finalize()
    _ = app.tasks
    assert seen.calls == [("configure", app, {"include imported": False,
                                              "conf": "configured"})]
    assert "tests_lifecycle_tasks" in sys.modules


def test_worker_ready_and_shutdown_are_called_once_each_at_their_moment(
        make_app: Any) -> None:
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)))
    with start_worker(app) as worker:
        assert seen.names() == ["configure", "ready"]
    assert seen.names() == ["configure", "ready", "shutdown"]
    _, ready_worker, at_ready = seen.calls[1]
    assert ready_worker is worker
    assert at_ready == {"steps": "running", "ready event": False,
                        "thread": "corekit-test-worker"}
    _, stopping_worker, at_shutdown = seen.calls[2]
    assert stopping_worker is worker and at_shutdown["steps"] == "running"
    assert worker.blueprint.state == "stopped"


def test_no_lifecycle_call_for_a_worker_that_never_started(make_app: Any) -> None:
    seen = Lifecycle()
    app = make_app(manager_with(("lifecycle", seen)))
    app.Worker(pool="threads").setup()
    assert seen.names() == ["configure"]


def test_the_unusable_worker_start_hook_is_gone() -> None:
    from corekit import hookspecs

    assert not hasattr(hookspecs, "corekit_worker_start")


# -- command line -----------------------------------------------------------------


def command(name: str, ran: list[Any]) -> object:
    class Plugin:
        @hookimpl
        def corekit_register_commands(self) -> dict[str, Any]:
            def setup(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
                p = subparsers.add_parser(name, parents=parents, help=f"the {name} command")
                p.add_argument("--times", type=int, default=1)
                p.set_defaults(func=lambda args, app: ran.append((args.times, app)) or 0)
            return {name: setup}
    return Plugin()


def test_a_plugin_command_takes_the_common_options_and_runs() -> None:
    ran: list[Any] = []
    parser = build_parser(manager_with(("greeter", command("greet", ran))))
    assert "the greet command" in parser.format_help()
    args = parser.parse_args(["greet", "--times", "3", "-b", "memory://x"])
    assert args.broker == "memory://x"  # the common options come through parents
    assert args.func(args, "app") == 0 and ran == [(3, "app")]


def test_a_plugin_command_clashing_with_a_builtin_or_another_plugin_is_an_error() -> None:
    with pytest.raises(ImproperlyConfigured,
                       match="plugin 'evil' adds the command 'worker', which corekit's "
                             "built-in command already provides"):
        build_parser(manager_with(("evil", command("worker", []))))
    with pytest.raises(ImproperlyConfigured,
                       match="plugin '(one|two)' adds the command 'greet', which plugin "
                             "'(one|two)' already provides"):
        build_parser(manager_with(("one", command("greet", [])), ("two", command("greet", []))))


def test_a_command_whose_setup_adds_nothing_is_an_error() -> None:
    class Plugin:
        @hookimpl
        def corekit_register_commands(self) -> dict[str, Any]:
            return {"ghost": lambda subparsers, parents: None}

    with pytest.raises(ImproperlyConfigured, match="plugin 'ghost' registered the command "
                                                   "'ghost', but its setup added no sub-parser"):
        build_parser(manager_with(("ghost", Plugin())))


def options(mapping: dict[str, list[CommandOption]]) -> object:
    class Plugin:
        @hookimpl
        def corekit_register_command_options(self) -> dict[str, list[CommandOption]]:
            return mapping
    return Plugin()


def test_prefork_options_set_their_settings_only_when_given(make_app: Any) -> None:
    parser = build_parser(manager_with())
    worker_help = parser._subparsers._group_actions[0].choices["worker"].format_help()  # type: ignore[union-attr]
    assert "options from plugin 'prefork'" in worker_help
    for flag in ("--max-tasks-per-child", "--max-memory-per-child", "--autoscale"):
        assert flag in worker_help
    app = make_app(manager_with())
    apply_setting_options(parser.parse_args(
        ["worker", "--max-tasks-per-child", "5", "--autoscale", "4,1"]), app)
    assert app.conf.worker_max_tasks_per_child == 5
    assert app.conf.worker_autoscale == (4, 1)
    assert app.conf.worker_max_memory_per_child is None  # not given: left alone
    untouched = make_app(manager_with(), worker_max_tasks_per_child=7)
    apply_setting_options(parser.parse_args(["worker"]), untouched)
    assert untouched.conf.worker_max_tasks_per_child == 7


def test_a_prefork_option_reaches_the_pool_through_its_setting(make_app: Any) -> None:
    app = make_app(manager_with())
    args = build_parser(manager_with()).parse_args(
        ["worker", "--max-tasks-per-child", "3", "--autoscale", "3,1"])
    apply_setting_options(args, app)
    worker = app.Worker(pool="prefork", concurrency=1)
    worker.setup()  # creates the pool, starts no child
    assert worker.pool.options["max_tasks_per_child"] == 3
    assert worker.pool.autoscaling == (3, 1)


@pytest.mark.parametrize("argv, message", [
    (["worker", "--max-tasks-per-child", "0"], "must be at least 1, not 0"),
    (["worker", "--autoscale", "2,5"], "expected MAX,MIN with MAX >= MIN"),
    (["worker", "--autoscale", "ten"], "expected MAX,MIN, e.g. 10,3"),
])
def test_bad_option_values_are_refused_by_the_parser(argv: list[str], message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser(manager_with()).parse_args(argv)
    assert message in capsys.readouterr().err


def test_an_option_on_an_unknown_command_is_an_error() -> None:
    plugin = options({"wroker": [CommandOption(("--x",), "x_setting", "x")]})
    with pytest.raises(ImproperlyConfigured, match="plugin 'typo' adds options to the command "
                                                   "'wroker', which does not exist"):
        build_parser(manager_with(("typo", plugin)))


@pytest.mark.parametrize("flag, taken_by", [
    ("--concurrency", "a built-in option"), ("-c", "a built-in option"),
    ("-A", "a built-in option"), ("--max-tasks-per-child", "plugin 'prefork'")])
def test_an_option_clashing_with_a_taken_flag_names_both(flag: str, taken_by: str) -> None:
    plugin = options({"worker": [CommandOption((flag,), "clashing", "clash")]})
    with pytest.raises(ImproperlyConfigured,
                       match=f"plugin 'clash' adds the option {flag} to `corekit worker`, "
                             f"which {taken_by} already uses"):
        build_parser(manager_with(("clash", plugin)))


def test_a_clash_ends_the_command_with_one_error_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import corekit.pluginmanager
    from corekit.cli import main

    manager = manager_with(("clash", options({"worker": [CommandOption(("-Q",), "q", "q")]})))
    monkeypatch.setattr(corekit.pluginmanager, "default_manager", lambda: manager)
    assert main(["--help"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: plugin 'clash' adds the option -Q to `corekit worker`")
    assert "Traceback" not in err


def test_something_other_than_a_command_option_is_refused() -> None:
    plugin = options({"worker": [{"flags": "--x"}]})  # type: ignore[list-item]
    with pytest.raises(ImproperlyConfigured, match="corekit_register_command_options must "
                                                   "give CommandOption objects"):
        build_parser(manager_with(("odd", plugin)))


def test_command_option_refuses_what_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="flags must start with '-'"):
        CommandOption(("max",), "worker_x", "x")
    with pytest.raises(ValueError, match="dest may not be given"):
        CommandOption(("--x",), "worker_x", "x", {"dest": "y"})
    assert CommandOption("--x", "worker_x", "x").flags == ("--x",)


@pytest.mark.parametrize("argv, runs", [
    (["-P", "threads", "--max-tasks-per-child", "5"], "threads"),
    (["--autoscale", "4,1"], "threads"),  # worker_pool's default
    (["-P", "solo", "--max-memory-per-child", "1000"], "solo"),
])
def test_a_pool_option_given_to_a_worker_of_another_pool_is_refused(
        argv: list[str], runs: str, tmp_path: Path) -> None:
    from helpers import run_cli

    (tmp_path / "proj.py").write_text("from corekit import Corekit\n"
                                      "app = Corekit('proj', broker='sqlite://b.db', "
                                      "backend='sqlite://b.db')\n")
    out = run_cli("-A", "proj", "worker", *argv, cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    flag = next(a for a in argv if a.startswith("--"))
    assert out.stderr.strip() == (
        f"Error: {flag} is an option of the prefork pool, and this worker runs the {runs} "
        f"pool: add -P prefork, or leave {flag} out")
    assert not (tmp_path / "b.db").exists()  # refused before the worker touched the broker


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
