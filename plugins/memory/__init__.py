"""The ``memory://`` transport and result backend: in-process, for the
kernel's unit tests and eager runs.  Everything built with the same URL
shares one broker and one result store; `reset` clears them all."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, str]:
    return {"memory": "corekit.plugins.memory.transport:MemoryTransport"}


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return {"memory": "corekit.plugins.memory.backend:MemoryBackend"}


def reset() -> None:
    """Forget every message, dead letter and result of every memory:// URL
    (test isolation); transports and backends already built stay usable."""
    from corekit.plugins.memory import backend, transport

    transport.reset()
    backend.reset()
