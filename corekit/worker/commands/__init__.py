"""Remote-control commands a worker answers: Celery's inspect and control
commands (`corekit.worker.commands.inspect`, `corekit.worker.commands.control`)
and those plugins add through ``corekit_register_control_commands``.

A plugin command is ``handler(ctx, **arguments)`` returning the reply value;
decorate it with `inspect_command` or `control_command` to give a command
line its signature and help::

    from corekit.hookspecs import hookimpl
    from corekit.worker.commands import inspect_command, ok

    @inspect_command(signature="<name>", args=[("name", str)])
    def greet(ctx, name="world"):
        '''Say hello from this worker.'''
        return ok(f"hello {name} from {ctx.hostname}")

    @hookimpl
    def corekit_register_control_commands():
        return {"greet": greet}
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.worker.commands.registry import (Command, ControlContext, collect, control_command,
                                              describe, inspect_command, merge, nok, ok)

if TYPE_CHECKING:
    from corekit.app import Corekit

__all__ = ["Command", "ControlContext", "builtin_commands", "commands_for", "control_command",
           "describe", "inspect_command", "nok", "ok"]


def builtin_commands() -> dict[str, Command]:
    """Every built-in command, by name and alias."""
    from corekit.worker.commands import control, inspect

    return collect([inspect, control])


def commands_for(app: Corekit) -> dict[str, Command]:
    """The built-in commands and those of *app*'s plugins (ImproperlyConfigured
    when a plugin command takes a built-in name)."""
    return merge(builtin_commands(), app.plugins.registry("control_commands"))
