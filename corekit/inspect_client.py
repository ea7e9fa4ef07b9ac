"""``app.control.inspect()``: read what the workers are doing, as Celery's
``Inspect`` does.

Each method sends one request and returns ``{hostname: reply}`` for the
workers that answered within the timeout, or None when none did (Celery's
behaviour, so ``if not inspect().ping():`` means "no worker").
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Sequence

from corekit.control_client import Destination, Reply, check_pattern, destinations
from corekit.pidbox import matches

if TYPE_CHECKING:
    from corekit.control_client import Control

logger = logging.getLogger("corekit.control")


def flatten(replies: Sequence[Reply]) -> dict[str, Any]:
    """``[{a: x}, {b: y}]`` -> ``{a: x, b: y}``, warning about a hostname
    that answered twice (two workers started with the same ``-n``)."""
    nodes: dict[str, Any] = {}
    for reply in replies:
        for hostname, value in reply.items():
            if hostname in nodes:
                logger.warning("Received more than one reply from %s: give each worker "
                               "a unique name (corekit worker -n)", hostname)
            nodes[hostname] = value
    return nodes


class Inspect:
    """Asks the workers of *control*'s app (those in *destination*, or
    matching *pattern*) and waits *timeout* seconds for their replies."""

    def __init__(self, control: Control, destination: Destination = None,
                 timeout: float = 1.0, pattern: str | None = None,
                 matcher: str | None = None, limit: int | None = None,
                 callback: Callable[[Reply], Any] | None = None) -> None:
        self.control = control
        self.destination = destinations(destination)
        self.timeout = timeout
        self.pattern = pattern
        self.matcher = check_pattern(pattern, matcher)
        self.limit = limit
        self.callback = callback

    def _request(self, command: str, **arguments: Any) -> dict[str, Any] | None:
        """Send *command* (any inspect command, a plugin's too) with *arguments*."""
        replies = self.control.broadcast(
            command, arguments, self.destination, reply=True, timeout=self.timeout,
            limit=self.limit, pattern=self.pattern, matcher=self.matcher,
            callback=self.callback)
        if not replies:
            return None
        nodes = flatten(replies)
        if self.pattern:
            nodes = {name: value for name, value in nodes.items()
                     if matches(name, self.pattern, self.matcher)}
        return nodes or None

    def ping(self, destination: Destination = None) -> dict[str, Any] | None:
        """``{hostname: {"ok": "pong"}}``."""
        if destination:
            self.destination = destinations(destination)
        return self._request("ping")

    def stats(self) -> dict[str, Any] | None:
        """Each worker's statistics: pool, broker, prefetch_count, total
        tasks by name, rusage, uptime, pid, clock."""
        return self._request("stats")

    def active(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The tasks each worker is running now (a list of task infos)."""
        return self._request("active", safe=safe)

    def reserved(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The tasks each worker holds, ready to run, not yet started."""
        return self._request("reserved")

    def scheduled(self, safe: bool | None = None) -> dict[str, Any] | None:
        """The tasks each worker holds for their ETA or countdown
        (``{"eta", "priority", "request"}`` each)."""
        return self._request("scheduled")

    def revoked(self) -> dict[str, Any] | None:
        """The task ids each worker knows as revoked."""
        return self._request("revoked")

    def registered(self, *taskinfoitems: str) -> dict[str, Any] | None:
        """The task names each worker knows, with these task attributes
        (``"rate_limit"``, ``"time_limit"``...) when asked."""
        return self._request("registered", taskinfoitems=list(taskinfoitems))

    registered_tasks = registered

    def active_queues(self) -> dict[str, Any] | None:
        """The queues each worker consumes from, as kombu describes a queue."""
        return self._request("active_queues")

    def conf(self, with_defaults: bool = False) -> dict[str, Any] | None:
        """Each worker's configuration (secrets masked); only what differs
        from the defaults unless *with_defaults*."""
        return self._request("conf", with_defaults=with_defaults)

    def query_task(self, *ids: str | Sequence[str]) -> dict[str, Any] | None:
        """``{hostname: {task_id: [state, task_info]}}`` for the tasks among
        *ids* that a worker holds ("active", "reserved" or "scheduled")."""
        flat: list[str] = []
        for item in ids:  # query_task("a", "b") or, as Celery also takes, query_task(["a", "b"])
            flat.extend([item] if isinstance(item, str) else item)
        return self._request("query_task", ids=flat)

    def report(self) -> dict[str, Any] | None:
        """``{hostname: {"ok": text}}``: a human-readable report of each worker."""
        return self._request("report")

    def clock(self) -> dict[str, Any] | None:
        """``{hostname: {"clock": value}}``: each worker's logical clock."""
        return self._request("clock")
