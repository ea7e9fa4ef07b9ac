"""What plugins add to the ``corekit`` command line: subcommands
(``corekit_register_commands``) and options on existing subcommands
(``corekit_register_command_options``), checked for clashes while the
parser is built, and the settings those options set, applied once the app
is loaded."""
from __future__ import annotations

import argparse
from typing import Any, Collection

from corekit.cli.options import CommandOption
from corekit.exceptions import ImproperlyConfigured

#: Prefix of the argparse ``dest`` of a plugin option: the rest is the setting.
SETTING_DEST = "setting:"
#: The parser default that maps a pool's own options to ``(flag, pool)``.
POOL_OPTIONS = "pool_options_of_plugins"


def add_plugin_commands(subparsers: Any, parents: list[argparse.ArgumentParser],
                        builtin: Collection[str], manager: Any) -> None:
    """Add every plugin's subcommands; a name that a built-in command or an
    earlier plugin took is an `ImproperlyConfigured` naming both."""
    owners = dict.fromkeys(builtin, "")
    for impl in manager.implementations("corekit_register_commands"):
        plugin = impl.plugin_name
        for name, setup in dict(impl.function() or {}).items():
            if name in owners:
                taken = (f"plugin {owners[name]!r}" if owners[name]
                         else "corekit's built-in command")
                raise ImproperlyConfigured(
                    f"plugin {plugin!r} adds the command {name!r}, which {taken} already "
                    f"provides: one of them must use another name")
            owners[name] = plugin
            setup(subparsers, parents)
            if name not in subparsers.choices:
                raise ImproperlyConfigured(
                    f"plugin {plugin!r} registered the command {name!r}, but its setup "
                    f"added no sub-parser of that name")


def add_plugin_options(subparsers: Any, manager: Any) -> None:
    """Add every plugin's options to the subcommands they name, each plugin's
    in a group of its own in ``--help``.  An unknown command, or a flag that
    a built-in option or another plugin already uses, is an
    `ImproperlyConfigured` naming both."""
    parsers: dict[str, argparse.ArgumentParser] = subparsers.choices
    owners: dict[tuple[str, str], str] = {}
    for impl in manager.implementations("corekit_register_command_options"):
        plugin = impl.plugin_name
        for command, options in dict(impl.function() or {}).items():
            parser = parsers.get(command)
            if parser is None:
                raise ImproperlyConfigured(
                    f"plugin {plugin!r} adds options to the command {command!r}, which does "
                    f"not exist (commands: {', '.join(sorted(parsers))})")
            group = parser.add_argument_group(f"options from plugin {plugin!r}")
            for option in options:
                _check_option(option, plugin, command, parser, owners)
                option.add_to(group)
                owners.update({(command, flag): plugin for flag in option.flags})
                if option.pool:
                    _remember_pool_option(parser, option)


def _remember_pool_option(parser: argparse.ArgumentParser, option: CommandOption) -> None:
    known = dict(parser.get_default(POOL_OPTIONS) or {})
    known[option.dest] = (option.flags[0], option.pool)
    parser.set_defaults(**{POOL_OPTIONS: known})


def check_pool_options(args: argparse.Namespace, pool: str) -> None:
    """Refuse a pool's own option given to a worker that runs another pool:
    its setting would be read by no one."""
    given = vars(args)
    for dest, (flag, owner) in (getattr(args, POOL_OPTIONS, None) or {}).items():
        if dest in given and owner != pool:
            raise ImproperlyConfigured(
                f"{flag} is an option of the {owner} pool, and this worker runs the {pool} "
                f"pool: add -P {owner}, or leave {flag} out")


def _check_option(option: Any, plugin: str, command: str, parser: argparse.ArgumentParser,
                  owners: dict[tuple[str, str], str]) -> None:
    if not isinstance(option, CommandOption):
        raise ImproperlyConfigured(
            f"plugin {plugin!r} gave {option!r} as an option of `corekit {command}`: "
            f"corekit_register_command_options must give CommandOption objects")
    for flag in option.flags:
        if flag in parser._option_string_actions:  # noqa: SLF001 - argparse keeps no public index
            taken = owners.get((command, flag))
            by = f"plugin {taken!r}" if taken else "a built-in option"
            raise ImproperlyConfigured(
                f"plugin {plugin!r} adds the option {flag} to `corekit {command}`, which "
                f"{by} already uses: one of them must use another flag")


def apply_setting_options(args: argparse.Namespace, app: Any) -> None:
    """Store the value of every plugin option the user gave in the setting
    it names (options not given leave the configuration alone)."""
    for dest, value in vars(args).items():
        if dest.startswith(SETTING_DEST):
            app.conf.pin(dest[len(SETTING_DEST):], value, "the command line")


def require_plugins(app: Any, names: list[str]) -> None:
    """``--plugin NAME``: each must be installed; with no broker configured
    anywhere, the one whose transport has a default URL gives the broker
    (and so the results, unless a result backend is set)."""
    brokers = []
    for name in names:
        info = app.plugins.require(name)
        schemes = info.provides.get("transports", [])
        if schemes:
            url = app.plugins.get("transports", schemes[0]).default_url
            if url:
                brokers.append((name, url))
    if not brokers or app.conf.broker_url:
        return
    if len(brokers) > 1:
        raise ValueError(f"plugins {' and '.join(n for n, _ in brokers)} each provide a "
                         f"broker: name the broker with -b/--broker")
    name, url = brokers[0]
    app.conf.pin("broker_url", url, f"--plugin {name}")
