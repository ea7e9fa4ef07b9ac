"""The ``prefork`` pool: each task runs in a forked child process, so a
crash, a leak or a hard time limit costs one child, never the worker."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.pool import Pool
    from corekit.settings import Setting


@hookimpl
def corekit_register_pools() -> dict[str, type[Pool]]:
    from corekit.plugins.prefork.pool import PreforkPool

    return {"prefork": PreforkPool}


@hookimpl
def corekit_register_settings() -> tuple[Setting, ...]:
    from corekit.plugins.prefork.settings import PREFORK_SETTINGS

    return PREFORK_SETTINGS
