"""The worker's first contact with its broker and result backend.

A worker may start before its broker: each bootstep that connects at
start-up goes through `StartupRetry.call`, which retries a connection error
with backoff (0.1 s doubling to 5 s, as the consumer does once running),
says so once per endpoint at WARNING (password masked, a one-line reason;
the traceback of each attempt only at DEBUG) and gives up after
``broker_connection_max_retries`` retries (None or 0: never) with a
`ConnectionUnavailable` whose message is one line.  With
``broker_connection_retry_on_startup`` off the first failure ends it.
A stop asked for while waiting (SIGTERM) ends the wait at once with
`StartupAborted`.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, TypeVar

from corekit.exceptions import CorekitError

logger = logging.getLogger("corekit.worker")

T = TypeVar("T")

FIRST_DELAY = 0.1
MAX_DELAY = 5.0

#: Exception class names (anywhere in the class's MRO) that mean "cannot
#: reach the server" in the client libraries transports use, so the kernel
#: can tell them apart without importing those libraries: redis-py's
#: ConnectionError and TimeoutError, py-amqp's ConnectionError, kombu's and
#: SQLite's OperationalError.
CONNECTION_ERROR_NAMES = frozenset({"ConnectionError", "TimeoutError", "OperationalError"})


class ConnectionUnavailable(CorekitError):
    """The worker could not reach its broker or result backend at start-up."""


class StartupAborted(CorekitError):
    """The worker was asked to stop while it waited for a connection."""


def is_connection_error(exc: BaseException) -> bool:
    """Whether *exc* says a server could not be reached (refused, reset,
    timed out, unknown host, TLS handshake, ...), as opposed to a bug."""
    if isinstance(exc, (OSError, EOFError)):
        return True
    return any(cls.__name__ in CONNECTION_ERROR_NAMES for cls in type(exc).__mro__)


def one_line_reason(exc: BaseException) -> str:
    """``ConnectionError: Error 111 connecting to ...`` on one line."""
    text = " ".join(str(exc).split()).rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StartupRetry:
    """Retries the worker's start-up connections, as the settings say."""

    def __init__(self, conf: Any, stopping: threading.Event) -> None:
        self.retry = bool(conf.broker_connection_retry_on_startup)
        limit = conf.broker_connection_max_retries
        self.max_retries: int | None = int(limit) if limit else None  # None, 0: forever
        self.stopping = stopping

    def call(self, what: str, where: str, attempt: Callable[[], T],
             reset: Callable[[], Any] | None = None) -> T:
        """``attempt()``, retried while it fails with a connection error.
        *what* (``"broker"``) and *where* (its masked URL) name the server in
        the log; *reset* (closing the broken connection) runs before each
        retry."""
        retries = 0
        while True:
            try:
                result = attempt()
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                self._give_up_unless_retrying(what, where, exc, retries)
                retries += 1
                self._log_failure(what, where, exc, retries)
                if reset is not None:
                    try:
                        reset()
                    except Exception:  # closing a broken connection may fail too
                        pass
                if self.stopping.wait(min(MAX_DELAY, FIRST_DELAY * 2 ** (retries - 1))):
                    raise StartupAborted(f"stopped while waiting for the {what}") from None
            else:
                if retries:
                    logger.warning("Connected to the %s at %s after %d %s", what, where,
                                   retries, "retry" if retries == 1 else "retries")
                return result

    def _give_up_unless_retrying(self, what: str, where: str, exc: Exception,
                                 retries: int) -> None:
        if self.stopping.is_set():
            raise StartupAborted(f"stopped while connecting to the {what}") from exc
        if not self.retry:
            raise ConnectionUnavailable(
                f"cannot connect to the {what} at {where}: {one_line_reason(exc)} "
                f"(broker_connection_retry_on_startup is off)") from exc
        if self.max_retries is not None and retries >= self.max_retries:
            raise ConnectionUnavailable(
                f"cannot connect to the {what} at {where} after {retries} "
                f"{'retry' if retries == 1 else 'retries'} "
                f"(broker_connection_max_retries={self.max_retries}): "
                f"{one_line_reason(exc)}") from exc

    def _log_failure(self, what: str, where: str, exc: Exception, retries: int) -> None:
        if retries == 1:
            limit = ("forever" if self.max_retries is None
                     else f"at most {self.max_retries} retries")
            logger.warning("Cannot connect to the %s at %s: %s; retrying with backoff "
                           "(%g s doubling to %g s, %s)", what, where, one_line_reason(exc),
                           FIRST_DELAY, MAX_DELAY, limit)
        logger.debug("Connecting to the %s at %s failed (retry %d)", what, where, retries,
                     exc_info=exc)
