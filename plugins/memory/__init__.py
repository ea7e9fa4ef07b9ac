"""The ``memory://`` transport and result backend: in-process, for tests."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, type]:
    from corekit.plugins.memory.transport import MemoryTransport

    return {"memory": MemoryTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type]:
    from corekit.plugins.memory.backend import MemoryBackend

    return {"memory": MemoryBackend}
