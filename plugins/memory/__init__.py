"""The ``memory://`` transport and result backend: in-process, for the
kernel's unit tests and eager runs.  Everything built with the same URL
shares one broker and one result store; `reset` clears them all."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.result_backend import ResultBackend
    from corekit.transport import Transport


@hookimpl
def corekit_register_transports() -> dict[str, type[Transport]]:
    from corekit.plugins.memory.transport import MemoryTransport

    return {"memory": MemoryTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type[ResultBackend]]:
    from corekit.plugins.memory.backend import MemoryBackend

    return {"memory": MemoryBackend}


def reset() -> None:
    """Forget every message, dead letter and result of every memory:// URL
    (test isolation); transports and backends already built stay usable."""
    from corekit.plugins.memory import backend, transport

    transport.reset()
    backend.reset()
