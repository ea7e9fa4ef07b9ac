"""Periodic tasks: ``corekit beat``, ``corekit worker -B``, and the beat's settings.

A plugin like any other: the scheduler loop (`corekit.plugins.beat.service`)
runs in ``corekit beat`` or as a worker bootstep with ``-B``; schedule
stores come from the transports' plugins (``corekit_register_schedule_stores``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.bootsteps import Step
    from corekit.cli.options import CommandOption
    from corekit.settings import Setting


@hookimpl
def corekit_register_settings() -> list[Setting]:
    from corekit.plugins.beat.settings import SETTINGS

    return list(SETTINGS)


@hookimpl
def corekit_register_commands() -> dict[str, Callable[..., Any]]:
    from corekit.plugins.beat.cli import setup

    return {"beat": setup}


@hookimpl
def corekit_register_command_options() -> dict[str, list[CommandOption]]:
    from corekit.cli.options import CommandOption

    return {"worker": [CommandOption(
        ("-B", "--beat"), "worker_beat",
        "also run a beat in this worker (safe on every worker: each run fires once)",
        {"action": "store_true"})]}


@hookimpl
def corekit_register_bootsteps() -> list[type[Step]]:
    from corekit.plugins.beat.step import BeatStep, RunGateStep

    return [BeatStep, RunGateStep]
