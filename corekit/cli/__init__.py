"""The ``corekit`` command line."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

from corekit import __version__
from corekit.cli import commands, events, monitor, multi_parser, remote, worker
from corekit.cli.appload import AppLoadError, load_app
from corekit.cli.errors import fail, server_error_message
from corekit.cli.parser import CorekitParser
from corekit.exceptions import CorekitError

#: Built-in subcommands: name -> setup(subparsers, parents).
BUILTIN_COMMANDS: dict[str, Callable[..., Any]] = {
    "worker": worker.setup,
    "call": commands.setup_call,
    "result": commands.setup_result,
    "purge": commands.setup_purge,
    "plugins": commands.setup_plugins,
    "dlq": commands.setup_dlq,
    "inspect": remote.setup_inspect,
    "control": remote.setup_control,
    "status": remote.setup_status,
    "events": events.setup,
    "monitor": monitor.setup,
    "multi": multi_parser.setup,
}


def common_options() -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (``corekit -A proj
    worker`` and ``corekit worker -A proj`` both work)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-A", "--app", default=argparse.SUPPRESS,
                        help="the app: module, module.sub, or module:attribute (default: "
                             "COREKIT_APP, else app in corekit.toml or pyproject.toml's "
                             "[tool.corekit])")
    common.add_argument("-b", "--broker", default=argparse.SUPPRESS,
                        help="broker URL (overrides the app's broker_url)")
    common.add_argument("--result-backend", default=argparse.SUPPRESS,
                        help="result backend URL (overrides the app's result_backend)")
    common.add_argument("--plugin", action="append", default=argparse.SUPPRESS,
                        metavar="NAME",
                        help="require an installed plugin by name (repeatable); with no "
                             "broker configured, the named plugin's transport is the broker, "
                             "on its default local URL, and results follow it")
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="module to load settings from (config_from_object)")
    common.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an error (and, for `result`, of a "
                             "failed task)")
    return common


def build_parser(manager: Any = None, prog: str = "corekit") -> argparse.ArgumentParser:
    """The whole ``corekit`` parser: built-in subcommands, then what the
    plugins of *manager* (default: the installed ones) add.  *prog* names
    the command in usage lines (``manage.py corekit`` for Django's)."""
    common = common_options()
    parser = CorekitParser(
        prog=prog, parents=[common],
        description="corekit: a distributed task queue with Celery's API and wire format.")
    parser.add_argument("--version", action="version", version=f"corekit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for setup in BUILTIN_COMMANDS.values():
        setup(subparsers, [common])
    add_plugin_parts(subparsers, [common], manager)
    return parser


def add_plugin_parts(subparsers: Any, parents: list[argparse.ArgumentParser],
                     manager: Any = None) -> None:
    """The plugins' subcommands, then their options on any subcommand."""
    from corekit.cli.extensions import add_plugin_commands, add_plugin_options

    if manager is None:
        from corekit.pluginmanager import default_manager

        manager = default_manager()
    add_plugin_commands(subparsers, parents, BUILTIN_COMMANDS, manager)
    add_plugin_options(subparsers, manager)


def app_from_args(args: argparse.Namespace) -> Any:
    """The app the command runs with: flags over the environment over the
    config file over the app's code (`corekit.config_sources`)."""
    app = load_app(getattr(args, "app", None))
    if getattr(args, "config", None):
        app.config_from_object(args.config)
    if getattr(args, "broker", None):
        app.conf.pin("broker_url", args.broker, "--broker")
    if getattr(args, "result_backend", None):
        app.conf.pin("result_backend", args.result_backend, "--result-backend")
    from corekit.cli.extensions import apply_setting_options, require_plugins

    require_plugins(app, getattr(args, "plugin", []))
    apply_setting_options(args, app)
    return app


def main(argv: Sequence[str] | None = None, prog: str = "corekit") -> int:
    """Run one command.  Every error a user can act on (an app that does not
    load, a bad setting, a broker or result backend that cannot be reached
    or says no) ends as one ``Error:`` line and exit status 1; the traceback
    only with ``--traceback`` (or ``-l debug``)."""
    try:
        parser = build_parser(prog=prog)
    except CorekitError as exc:  # a plugin's command or option clashes with another
        return fail(str(exc), exc)
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # a bare `corekit`: what it can do (a usage error, as argparse's)
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    app = None
    try:
        if hasattr(args, "detach"):  # a service command: --workdir, --umask, --detach
            from corekit.cli.daemon import prepare

            detached = prepare(args)
            if detached is not None:  # the process that detached: the daemon's status
                return detached
        app = app_from_args(args)
        return int(args.func(args, app) or 0)
    except (AppLoadError, CorekitError, ValueError) as exc:
        return fail(str(exc), exc, args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = server_error_message(exc, app)
        if message is None:  # not the broker's or backend's: a bug keeps its traceback
            raise
        return fail(message, exc, args)


if __name__ == "__main__":
    sys.exit(main())
