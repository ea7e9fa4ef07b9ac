"""The ``sqlite://`` transport and result backend: the embedded default."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, type]:
    from corekit.plugins.sqlite.transport import SQLiteTransport

    return {"sqlite": SQLiteTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type]:
    from corekit.plugins.sqlite.backend import SQLiteBackend

    return {"sqlite": SQLiteBackend}
