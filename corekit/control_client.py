"""``app.control``: steer the workers live, with Celery's API.

Every command is a request on the ``celery.pidbox`` broadcast exchange in
Celery's shape (`corekit.pidbox`), so corekit and Celery workers both hear
it.  With ``reply=True`` the client subscribes to ``reply.celery.pidbox``
with its node id *before* publishing, then collects the replies carrying its
request's ticket until *timeout* seconds passed or *limit* replies came (by
default as many as the destinations named).  `inspect` reads the workers'
state (`corekit.inspect_client.Inspect`).

A revocation is also kept in the result backend
(`ResultBackend.add_revocations`, three hours by default) for workers that
start later, unless it is meant for named workers only.
"""
from __future__ import annotations

import logging
import os
import signal as signals
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from corekit.events.dispatcher import LamportClock
from corekit.pidbox import (MATCHERS, PIDBOX, REPLY_PIDBOX, is_expired, node_id,
                            request_message)
from corekit.queues import EXCHANGE_TYPES
from corekit.ratelimit import parse_rate

if TYPE_CHECKING:
    from corekit.app import Corekit
    from corekit.inspect_client import Inspect
    from corekit.messages import Message
    from corekit.transport import Subscription

__all__ = ["Control", "PIDBOX", "REPLY_PIDBOX"]

logger = logging.getLogger("corekit.control")

#: ``{hostname: reply}``: one worker's answer.
Reply = dict[str, Any]
Destination = str | Sequence[str] | None


def destinations(destination: Destination) -> list[str] | None:
    """A list of worker names (one name may be given as a string), or None."""
    if destination is None:
        return None
    names = [destination] if isinstance(destination, str) else list(destination)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"destination must be worker names, not {destination!r}")
    return names or None


def check_pattern(pattern: str | None, matcher: str | None) -> str | None:
    """The matcher to send with *pattern* (``"glob"`` when not given)."""
    if pattern is None:
        return None
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"pattern must be a non-empty string, not {pattern!r}")
    matcher = matcher or "glob"
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r}: use one of {', '.join(MATCHERS)}")
    return matcher


def check_signal(sig: str | int) -> str | int:
    """*sig* when it names a signal (``"SIGKILL"``, ``"KILL"``, ``9``)."""
    try:
        if isinstance(sig, int):
            signals.Signals(sig)
        else:
            signals.Signals[sig.upper() if sig.upper().startswith("SIG") else "SIG" + sig.upper()]
    except (KeyError, ValueError, AttributeError):
        raise ValueError(f"unknown signal {sig!r}") from None
    return sig


def _positive(value: Any, what: str, zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if number < 0 or (number == 0 and not zero):
        raise ValueError(f"{what} must be {'>= 0' if zero else '> 0'}, not {value!r}")
    return number


def _count(value: Any, what: str, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a whole number, not {value!r}")
    _positive(value, what, zero)
    return value


class Control:
    """Remote control of the app's workers (``app.control``).

    Commands take ``destination`` (worker names) and the `broadcast`
    options: ``reply`` (wait for and return the replies), ``timeout``,
    ``limit``, ``pattern`` + ``matcher``, ``callback`` (called with each
    reply as it comes)."""

    def __init__(self, app: Corekit) -> None:
        self.app = app
        self.clock = LamportClock()
        self._oid: tuple[int, str] | None = None

    @property
    def oid(self) -> str:
        """This client's node id: the routing key of its replies (a new one
        after a fork, so parent and child never read each other's)."""
        pid = os.getpid()
        if self._oid is None or self._oid[0] != pid:
            self._oid = (pid, node_id(self))
        return self._oid[1]

    def inspect(self, destination: Destination = None, timeout: float = 1.0,
                pattern: str | None = None, matcher: str | None = None,
                limit: int | None = None, callback: Callable[[Reply], Any] | None = None
                ) -> Inspect:
        """An `Inspect` asking these workers (all by default)."""
        from corekit.inspect_client import Inspect

        return Inspect(self, destination=destination, timeout=timeout, pattern=pattern,
                       matcher=matcher, limit=limit, callback=callback)

    # -- the transport of every command --------------------------------------------
    def broadcast(self, command: str, arguments: Mapping[str, Any] | None = None,
                  destination: Destination = None, reply: bool = False,
                  timeout: float = 1.0, limit: int | None = None,
                  pattern: str | None = None, matcher: str | None = None,
                  callback: Callable[[Reply], Any] | None = None) -> list[Reply] | None:
        """Send *command* with *arguments* to every worker, those named in
        *destination*, or those whose name matches *pattern*.  With *reply*,
        return the list of ``{hostname: reply}`` that came within *timeout*
        seconds (at most *limit*; by default as many as *destination* names),
        else None.  This is how a command a plugin registers is reached."""
        if not isinstance(command, str) or not command:
            raise ValueError(f"command must be a non-empty string, not {command!r}")
        names = destinations(destination)
        matcher = check_pattern(pattern, matcher)
        timeout = _positive(timeout, "timeout")
        if limit is None and names:
            limit = len(names)
        elif limit is not None:
            limit = _count(limit, "limit")
        transport = self.app.producer
        if "broadcast" not in transport.capabilities:
            if reply:
                raise NotImplementedError(f"{transport.describe()} has no broadcast: workers "
                                          f"cannot be asked anything over it")
            logger.warning("%s has no broadcast: running workers do not hear %r",
                           transport.describe(), command)
            return None
        ticket = str(uuid.uuid4()) if reply else None
        message = request_message(command, arguments or {}, names, pattern=pattern,
                                  matcher=matcher, ticket=ticket, reply_to=self.oid,
                                  clock=self.clock.forward(),
                                  expires=time.time() + timeout if reply else 0.0)
        if ticket is None:
            transport.publish_broadcast(PIDBOX, [message])
            return None
        with transport.subscribe_broadcast([REPLY_PIDBOX], routing_key=self.oid) as replies:
            transport.publish_broadcast(PIDBOX, [message])
            return self._collect(replies, ticket, time.monotonic() + timeout, limit, callback)

    def _collect(self, replies: Subscription, ticket: str, deadline: float,
                 limit: int | None, callback: Callable[[Reply], Any] | None) -> list[Reply]:
        got: list[Reply] = []
        while limit is None or len(got) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for message in replies.get(left):
                body = self._reply_body(message, ticket)
                if body is None:
                    continue
                got.append(body)
                if callback is not None:
                    callback(body)
                if limit is not None and len(got) >= limit:
                    break
        return got

    def _reply_body(self, message: Message, ticket: str) -> Reply | None:
        """The reply in *message* when it answers *ticket*."""
        headers = message.headers or {}
        if headers.get("ticket") != ticket or is_expired(headers):
            return None
        try:
            self.clock.adjust(int(headers.get("clock") or 0))
            codecs = self.app.codecs  # only what accept_content trusts: replies are input too
            body = codecs.decode(message.body, message.content_type,
                                 accept=codecs.accepted_types(self.app.conf.accept_content))
        except Exception as exc:  # a malformed reply is some other node's bug
            logger.warning("remote control: ignoring an unreadable reply: %s", exc)
            return None
        return body if isinstance(body, dict) else None

    # -- commands ---------------------------------------------------------------
    def ping(self, destination: Destination = None, timeout: float = 1.0,
             **options: Any) -> list[Reply] | None:
        """``[{hostname: {"ok": "pong"}}, ...]`` from the workers that answered."""
        return self.broadcast("ping", {}, destination, reply=True, timeout=timeout, **options)

    def revoke(self, task_id: str | Sequence[str], destination: Destination = None,
               terminate: bool = False, signal: str | int = "SIGTERM",
               **options: Any) -> list[Reply] | None:
        """Never run these tasks; with *terminate*, also kill them where they
        run now (on pools that can: prefork, asyncio, eventlet)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        if not ids or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"task_id must be task ids, not {task_id!r}")
        check_signal(signal)
        if destination is None:
            now = time.time()
            self._keep([{"task_id": i, "terminate": terminate, "signal": signal, "at": now}
                        for i in ids])
        return self.broadcast("revoke", {"task_id": ids[0] if len(ids) == 1 else ids,
                                         "terminate": terminate, "signal": signal},
                              destination, **options)

    def terminate(self, task_id: str | Sequence[str], destination: Destination = None,
                  signal: str | int = "SIGTERM", **options: Any) -> list[Reply] | None:
        """`revoke` with ``terminate=True``."""
        return self.revoke(task_id, destination, terminate=True, signal=signal, **options)

    def revoke_by_stamped_headers(self, headers: Mapping[str, Any],
                                  destination: Destination = None, terminate: bool = False,
                                  signal: str | int = "SIGTERM",
                                  **options: Any) -> list[Reply] | None:
        """Revoke every task whose message carries all of these headers
        (``apply_async(headers={...})``); a list value matches any of its items."""
        if not isinstance(headers, Mapping) or not headers:
            raise ValueError(f"headers must be a non-empty mapping, not {headers!r}")
        check_signal(signal)
        if destination is None:
            self._keep([{"headers": dict(headers), "terminate": terminate, "signal": signal,
                         "at": time.time()}])
        return self.broadcast("revoke_by_stamped_headers", {
            "headers": dict(headers), "terminate": terminate, "signal": signal},
            destination, **options)

    def _keep(self, entries: list[dict[str, Any]]) -> None:
        try:
            self.app.backend.add_revocations(entries)
        except NotImplementedError as exc:
            logger.warning("%s: the revocation reaches running workers only", exc)

    def rate_limit(self, task_name: str, rate_limit: str | float | None,
                   destination: Destination = None, **options: Any) -> list[Reply] | None:
        """Set the rate limit of a task type (``"200/m"``, ``"10/s"``, a number
        per second; None or 0 lifts it)."""
        _task_name(task_name)
        parse_rate(rate_limit)  # ValueError for a bad rate, here rather than on each worker
        return self.broadcast("rate_limit", {"task_name": task_name, "rate_limit": rate_limit},
                              destination, **options)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   destination: Destination = None, **options: Any) -> list[Reply] | None:
        """Set the soft and hard time limits (seconds; None for none) of a task type."""
        _task_name(task_name)
        for value, what in ((soft, "soft"), (hard, "hard")):
            if value is not None:
                _positive(value, f"the {what} time limit")
        if soft is not None and hard is not None and float(soft) > float(hard):
            raise ValueError(f"the soft time limit ({soft}) is above the hard one ({hard})")
        return self.broadcast("time_limit", {"task_name": task_name, "hard": hard,
                                             "soft": soft}, destination, **options)

    def pool_grow(self, n: int = 1, destination: Destination = None,
                  **options: Any) -> list[Reply] | None:
        """Add *n* processes (threads...) to the workers' pools."""
        return self.broadcast("pool_grow", {"n": _count(n, "n")}, destination, **options)

    def pool_shrink(self, n: int = 1, destination: Destination = None,
                    **options: Any) -> list[Reply] | None:
        """Remove *n* processes from the workers' pools."""
        return self.broadcast("pool_shrink", {"n": _count(n, "n")}, destination, **options)

    def autoscale(self, max: int, min: int, destination: Destination = None,  # noqa: A002
                  **options: Any) -> list[Reply] | None:
        """Let the pools scale between *min* and *max* processes."""
        _count(max, "max")
        _count(min, "min", zero=True)
        if min > max:
            raise ValueError(f"autoscale min ({min}) is above max ({max})")
        return self.broadcast("autoscale", {"max": max, "min": min}, destination, **options)

    def add_consumer(self, queue: str, exchange: str | None = None,
                     exchange_type: str = "direct", routing_key: str | None = None,
                     options: Mapping[str, Any] | None = None,
                     destination: Destination = None, **broadcast: Any) -> list[Reply] | None:
        """Start consuming from *queue* (exchange and routing key default to
        its name; *options* as kombu's ``Queue.from_dict`` takes them)."""
        _name(queue, "queue")
        if exchange_type not in EXCHANGE_TYPES:
            raise ValueError(f"unknown exchange type {exchange_type!r}: use one of "
                             f"{', '.join(EXCHANGE_TYPES)}")
        return self.broadcast("add_consumer", {
            "queue": queue, "exchange": exchange, "exchange_type": exchange_type,
            "routing_key": routing_key, **(options or {})}, destination, **broadcast)

    def cancel_consumer(self, queue: str, destination: Destination = None,
                        **options: Any) -> list[Reply] | None:
        """Stop consuming from *queue*."""
        _name(queue, "queue")
        return self.broadcast("cancel_consumer", {"queue": queue}, destination, **options)

    def enable_events(self, destination: Destination = None,
                      **options: Any) -> list[Reply] | None:
        """Make the workers send task events (as ``-E``)."""
        return self.broadcast("enable_events", {}, destination, **options)

    def disable_events(self, destination: Destination = None,
                       **options: Any) -> list[Reply] | None:
        """Stop the workers' task events."""
        return self.broadcast("disable_events", {}, destination, **options)

    def heartbeat(self, destination: Destination = None, **options: Any) -> list[Reply] | None:
        """Make the workers send a worker-heartbeat event now."""
        return self.broadcast("heartbeat", {}, destination, **options)

    def shutdown(self, destination: Destination = None, **options: Any) -> list[Reply] | None:
        """Stop the workers warmly (running tasks finish first)."""
        return self.broadcast("shutdown", {}, destination, **options)


def _name(value: Any, what: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, not {value!r}")


def _task_name(task_name: Any) -> None:
    _name(task_name, "task_name")
