"""The ``prefork`` pool: each task runs in a forked child process, so a
crash, a leak or a hard time limit costs one child, never the worker."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.pool import Pool


@hookimpl
def corekit_register_pools() -> dict[str, type[Pool]]:
    from corekit.plugins.prefork.pool import PreforkPool

    return {"prefork": PreforkPool}
