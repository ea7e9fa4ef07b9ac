"""The ``threads`` pool: N daemon threads fed from a queue.

Hooks only: the pool's module (`ThreadsPool` in ``pool.py``) is imported when a
worker asks for this pool by name."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_pools() -> dict[str, str]:
    return {"threads": "corekit.plugins.threads_pool.pool:ThreadsPool"}
