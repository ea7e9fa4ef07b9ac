"""Errors raised by corekit."""
from __future__ import annotations

from typing import Any


class CorekitError(Exception):
    """Base class of every corekit error."""


class ImproperlyConfigured(CorekitError):
    """The configuration asks for something that cannot work."""


class PluginNotFound(ImproperlyConfigured):
    """A plugin, transport, backend, pool, serializer or compressor is not installed."""


class PublishError(CorekitError):
    """A message could not be published (after the retries the policy allows)."""


class NotRegistered(CorekitError, KeyError):
    """A task name is not in the registry."""

    def __str__(self) -> str:
        return f"task {self.args[0]!r} is not registered"


class TimeoutError(CorekitError, TimeoutError):  # noqa: A001 - Celery's name
    """`AsyncResult.get()` gave up waiting."""


class EncodeError(CorekitError):
    """A value (a task's result) cannot be encoded by its serializer;
    stored as Celery stores it, ``kombu.exceptions.EncodeError``."""

    stored_module = "kombu.exceptions"


class ContentDisallowed(CorekitError):
    """A message uses a content type the worker does not accept."""


class DecodeError(CorekitError):
    """A message cannot be decoded."""


class Retry(CorekitError):
    """Raised by `Task.retry()` to tell the worker the task will run again."""

    def __init__(self, message: str | None = None, exc: BaseException | None = None,
                 when: float | None = None) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        super().__init__(message, exc, when)

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f"Retry in {self.when}s: {self.exc!r}"
        return f"Retry in {self.when}s"


class MaxRetriesExceededError(CorekitError):
    """A task asked to be retried more often than `max_retries` allows."""


class TaskRevokedError(CorekitError):
    """The task was revoked before or while it ran."""


class WorkerLostError(CorekitError):
    """The process running the task died."""


class SoftTimeLimitExceeded(CorekitError):
    """Raised inside a task that ran past its soft time limit, so it can
    clean up before the hard limit kills it."""


class TimeLimitExceeded(CorekitError):
    """The task ran past its hard time limit and was killed."""


class Ignore(CorekitError):
    """Raised by a task to end without a state of its own: the worker
    stores nothing and runs no callbacks (`Task.replace` raises it)."""


class ChordError(CorekitError):
    """A chord's body did not run: a task of its header failed."""


class MalformedSignature(CorekitError, ValueError):
    """Something given as a signature (a callback, an errback, a step of a
    chain or a chord) is not one: no task name, arguments that are not a
    list, options that are not a dict..."""


class RemoteError(CorekitError):
    """A task failed with an exception whose type cannot be imported here."""

    def __init__(self, exc_type: str, exc_message: Any, exc_module: str | None) -> None:
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.exc_module = exc_module
        super().__init__(exc_type, exc_message, exc_module)

    def __str__(self) -> str:
        where = f"{self.exc_module}." if self.exc_module else ""
        msg = self.exc_message
        if isinstance(msg, (list, tuple)):
            msg = ", ".join(str(m) for m in msg)
        return f"{where}{self.exc_type}: {msg}"


class LeaseLost(CorekitError):
    """This consumer's broker lease lapsed (it was paused, or cut off from
    the broker, for longer than ``broker_lease_timeout``) and the broker
    gave its unacked messages back to their queues, for other consumers to
    run: none of the messages it fetched before is its own any more.
    Raised by `Transport.fetch`, `Transport.ack_and_fetch` and
    `Transport.renew_lease`; the transport already holds a fresh lease."""


class CorekitWarning(UserWarning):
    """Base class of corekit's warnings."""


class DuplicateTaskWarning(CorekitWarning):
    """One task function was registered under two names, because its
    module was imported under two names (``proj.myapp.tasks`` and
    ``myapp.tasks``): a message naming one is unknown to a worker that
    imported the module only the other way."""


class UnknownSettingWarning(CorekitWarning):
    """A setting was given that no part of corekit or its plugins declares:
    most often a typo (the warning names the closest declared setting), or a
    Celery setting corekit has no use for.  A warning, not an error, so a
    Celery project's configuration loads as it is; turn it into an error
    with ``-W error::corekit.exceptions.UnknownSettingWarning``."""
