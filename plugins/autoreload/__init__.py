"""``corekit worker --autoreload`` (development): restart the worker in place
when a source file of its tasks changes.

A watcher thread (`corekit.plugins.autoreload.watcher`, on the ``watchfiles``
library: ``pip install 'corekit[autoreload]'``) sends the worker SIGHUP,
which restarts it in place: a warm shutdown, then the same command line
again in the same process (`corekit.worker.Worker.restart`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.bootsteps import Step
    from corekit.cli.options import CommandOption
    from corekit.settings import Setting


@hookimpl
def corekit_register_settings() -> list[Setting]:
    from corekit.settings import Setting

    return [Setting("worker_autoreload", False, bool,
                    "Restart the worker in place when a task module's source changes.")]


@hookimpl
def corekit_register_command_options() -> dict[str, list[CommandOption]]:
    from corekit.cli.options import CommandOption

    return {"worker": [CommandOption(
        "--autoreload", "worker_autoreload",
        "development: restart in place (as on SIGHUP) when a source file of the app or its "
        "tasks under the working directory changes (needs watchfiles: pip install "
        "'corekit[autoreload]')", {"action": "store_true"})]}


@hookimpl
def corekit_register_bootsteps() -> list[type[Step]]:
    from corekit.plugins.autoreload.step import AutoreloadStep

    return [AutoreloadStep]
