"""What a plugin adds to the ``corekit`` command line through hooks alone:
subcommands, and options on existing commands (prefork's worker options
among them), with the clashes and bad values each is refused for.

Plugins here are registered through `PluginManager.register`, as an entry
point would register them; tests/test_third_party_plugin.py does the same
from an installed package in real ``corekit`` processes."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from corekit.cli import build_parser
from corekit.cli.extensions import apply_setting_options
from corekit.cli.options import CommandOption
from corekit.exceptions import ImproperlyConfigured
from corekit.hookspecs import hookimpl
from plugin_hooks_helpers import manager_with


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
