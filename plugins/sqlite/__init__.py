"""The ``sqlite://`` transport and result backend: the embedded default broker
and result store, no server needed (``sqlite://`` is ``./corekit.sqlite3``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from corekit.hookspecs import hookimpl

if TYPE_CHECKING:
    from corekit.result_backend import ResultBackend
    from corekit.transport import Transport


@hookimpl
def corekit_register_transports() -> dict[str, type[Transport]]:
    from corekit.plugins.sqlite.transport import SQLiteTransport

    return {"sqlite": SQLiteTransport}


@hookimpl
def corekit_register_result_backends() -> dict[str, type[ResultBackend]]:
    from corekit.plugins.sqlite.backend import SQLiteBackend

    return {"sqlite": SQLiteBackend}
