"""The ``sqlite://`` transport, result backend and schedule store: the embedded
default broker, result store and beat state, no server needed (``sqlite://`` is ``./corekit.sqlite3``)."""
from __future__ import annotations

from corekit.hookspecs import hookimpl


@hookimpl
def corekit_register_transports() -> dict[str, str]:
    return {"sqlite": "corekit.plugins.sqlite.transport:SQLiteTransport"}


@hookimpl
def corekit_register_result_backends() -> dict[str, str]:
    return {"sqlite": "corekit.plugins.sqlite.backend:SQLiteBackend"}


@hookimpl
def corekit_register_schedule_stores() -> dict[str, str]:
    return {"sqlite": "corekit.plugins.sqlite.schedule_store:SQLiteScheduleStore"}
