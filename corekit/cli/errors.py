"""How every ``corekit`` command ends on an error: one line on stderr
(``Error: ...``, the server's URL with its password masked), exit status 1,
and the traceback above it only with ``--traceback`` or ``-l debug``."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from corekit.cli.output import printable

#: Base classes (by name, so the client libraries need not be imported) of
#: errors a broker or result backend reports: the server answered, but no.
SERVER_ERROR_NAMES = frozenset({"RedisError", "AMQPError", "KombuError",
                                "DatabaseError"})  # sqlite3's: a file that is not a database


def server_error_message(exc: BaseException, app: Any) -> str | None:
    """The one-line message for an error a broker or result backend caused
    (``cannot reach the broker at <masked URL>: <reason>``); None for any
    other error, which keeps its traceback."""
    from corekit.worker.startup import (CONNECTION_ERROR_NAMES, is_connection_error,
                                        one_line_reason)

    names = {cls.__name__ for cls in type(exc).__mro__}
    client_error = bool(names & (CONNECTION_ERROR_NAMES | SERVER_ERROR_NAMES))
    if not (client_error or is_connection_error(exc)):
        return None
    server = failed_server(exc)
    if server is None:
        if not client_error or app is None:  # e.g. a file the command could not open
            return None
        from corekit.transport import mask_url

        server = "broker", mask_url(app.conf.broker)  # a subscription, the app's own calls
    what, url = server
    if is_connection_error(exc):
        return f"cannot reach the {what} at {url}: {one_line_reason(exc)}"
    return f"the {what} at {url} answered with an error: {one_line_reason(exc)}"


def failed_server(exc: BaseException) -> tuple[str, str] | None:
    """``("broker" | "result backend" | "schedule store", masked URL)``: the
    outermost transport, result backend or schedule store method the error
    went through, if any."""
    from corekit.result_backend import ResultBackend
    from corekit.schedules.store import ScheduleStore
    from corekit.transport import Transport, mask_url

    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, ResultBackend):
            return "result backend", owner.describe()
        if isinstance(owner, Transport):
            return "broker", owner.describe()
        if isinstance(owner, ScheduleStore):
            return "schedule store", mask_url(owner.url)
        tb = tb.tb_next
    return None


def wants_traceback(args: argparse.Namespace | None) -> bool:
    return bool(args is not None and (getattr(args, "traceback", False)
                                      or getattr(args, "loglevel", None) == "DEBUG"))


def fail(message: str, exc: BaseException | None = None,
         args: argparse.Namespace | None = None) -> int:
    """Print *message* as one ``Error:`` line (the traceback of *exc* first
    when asked for); return exit status 1."""
    if exc is not None and wants_traceback(args):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    print(f"Error: {printable(message)}", file=sys.stderr, flush=True)
    return 1
