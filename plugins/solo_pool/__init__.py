"""The ``solo`` pool: runs each task in the consumer's own thread.

Hooks only: the pool's module (`SoloPool` in ``pool.py``) is imported when a
worker asks for this pool by name."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_pools() -> dict[str, str]:
    return {"solo": "corekit.plugins.solo_pool.pool:SoloPool"}
