"""The ``asyncio`` pool: ``async def`` tasks run natively on one event loop,
up to ``concurrency`` at once; plain tasks run in a thread executor beside
it, so a blocking task never stalls the coroutines.

Hooks only: the pool's module (`AsyncioPool` in ``pool.py``) is imported when a
worker asks for this pool by name."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_pools() -> dict[str, str]:
    return {"asyncio": "corekit.plugins.asyncio_pool.pool:AsyncioPool"}
