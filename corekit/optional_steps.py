"""The worker's optional parts, added the way any plugin adds its steps.

Remote control (`corekit.worker.remote_control.ControlStep`) and the
worker's events (`corekit.worker.events.EventsStep`: worker-online,
heartbeats, offline, and task events with ``-E``) are not in the kernel's
core step list: this module registers them through
``corekit_register_bootsteps`` from its entry point in the
``corekit.plugins`` group, exactly as a third-party package would.  It
stays cheap to import, and lives outside ``corekit.worker`` for that: every
app's finalize and every ``corekit`` command imports it, and importing a
module of the ``corekit.worker`` package runs its ``__init__`` (the Worker,
logging, signals).  The steps' modules load only when a worker is built.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.bootsteps import Step


@hookimpl
def corekit_register_bootsteps() -> list[type[Step]]:
    from corekit.worker.events import EventsStep
    from corekit.worker.remote_control import ControlStep

    return [ControlStep, EventsStep]
