"""The ``sqlite://`` transport and result backend: the embedded default broker
and result store, no server needed (``sqlite://`` is ``./corekit.sqlite3``)."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, str]:
    return {"sqlite": "corekit.plugins.sqlite.transport:SQLiteTransport"}


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return {"sqlite": "corekit.plugins.sqlite.backend:SQLiteBackend"}
