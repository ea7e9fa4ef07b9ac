"""The ``prefork`` pool: each task runs in a forked child process, so a
crash, a leak or a hard time limit costs one child, never the worker."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.cli.options import CommandOption
    from corekit.settings import Setting


@hookimpl
def corekit_register_pools() -> dict[str, str]:
    return {"prefork": "corekit.plugins.prefork.pool:PreforkPool"}


@hookimpl
def corekit_register_settings() -> tuple[Setting, ...]:
    from corekit.plugins.prefork.settings import PREFORK_SETTINGS

    return PREFORK_SETTINGS


@hookimpl
def corekit_register_command_options() -> dict[str, tuple[CommandOption, ...]]:
    from corekit.plugins.prefork.cli_options import WORKER_OPTIONS

    return {"worker": WORKER_OPTIONS}
