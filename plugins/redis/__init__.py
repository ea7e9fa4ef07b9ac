"""The ``redis://`` transport and result backend (redis-py with hiredis)."""
from __future__ import annotations

from corekit.hookspecs import hookimpl

#: URL schemes served: plain, TLS, Unix socket.
SCHEMES = ("redis", "rediss", "redis+socket")


@hookimpl
def corekit_register_transports() -> dict[str, str]:
    return dict.fromkeys(SCHEMES, "corekit.plugins.redis.transport:RedisTransport")


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return dict.fromkeys(SCHEMES, "corekit.plugins.redis.backend:RedisBackend")


@hookimpl
def corekit_register_schedule_stores() -> dict[str, str]:
    return dict.fromkeys(SCHEMES, "corekit.plugins.redis.schedule_store:RedisScheduleStore")
