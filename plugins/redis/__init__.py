"""The ``redis://`` transport and result backend (redis-py with hiredis)."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, type]:
    from corekit.plugins.redis.transport import RedisTransport

    return {"redis": RedisTransport, "rediss": RedisTransport, "redis+socket": RedisTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type]:
    from corekit.plugins.redis.backend import RedisBackend

    return {"redis": RedisBackend, "rediss": RedisBackend, "redis+socket": RedisBackend}
