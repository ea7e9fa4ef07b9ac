"""How every ``corekit`` command ends on an error: one line on stderr
(``Error: ...``, the server's URL with its password masked), exit status 1,
and the traceback above it only with ``--traceback`` or ``-l debug``."""
from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any

from corekit.cli.output import printable

#: Base classes (by name, so the client libraries need not be imported) of
#: errors a broker or result backend reports: the server answered, but no.
SERVER_ERROR_NAMES = frozenset({"RedisError", "AMQPError", "KombuError"})


def is_server_error(exc: BaseException) -> bool:
    """A connection error, or an error the broker or backend answered with."""
    from corekit.worker.startup import is_connection_error  # on the error path only

    return is_connection_error(exc) or any(
        cls.__name__ in SERVER_ERROR_NAMES for cls in type(exc).__mro__)


def failed_server(exc: BaseException, app: Any) -> tuple[str, str]:
    """``("broker" | "result backend", masked URL)``: the outermost transport
    or result backend method the error went through; the broker when none
    did (a subscription, the app's own calls)."""
    from corekit.backend import ResultBackend
    from corekit.transport import Transport, mask_url

    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, ResultBackend):
            return "result backend", owner.describe()
        if isinstance(owner, Transport):
            return "broker", owner.describe()
        tb = tb.tb_next
    return "broker", mask_url(app.conf.broker) if app is not None else "?"


def server_error_message(exc: BaseException, app: Any) -> str:
    from corekit.worker.startup import is_connection_error, one_line_reason

    what, url = failed_server(exc, app)
    if is_connection_error(exc):
        return f"cannot reach the {what} at {url}: {one_line_reason(exc)}"
    return f"the {what} at {url} answered with an error: {one_line_reason(exc)}"


def wants_traceback(args: argparse.Namespace | None) -> bool:
    return bool(args is not None and (getattr(args, "traceback", False)
                                      or getattr(args, "loglevel", None) == "DEBUG"))


def fail(message: str, exc: BaseException | None = None,
         args: argparse.Namespace | None = None) -> int:
    """Print *message* as one ``Error:`` line (the traceback of *exc* first
    when asked for); return exit status 1."""
    if exc is not None and wants_traceback(args):
        traceback.print_exception(exc, file=sys.stderr)
    print(f"Error: {printable(message)}", file=sys.stderr, flush=True)
    return 1
