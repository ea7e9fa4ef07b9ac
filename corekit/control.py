"""``app.control``: revoke tasks, and broadcast commands to every worker.

A revocation is kept twice: in the result backend, for workers that start
later (`ResultBackend.add_revocations`, three hours by default), and as a
broadcast on the transport's ``celery.pidbox`` exchange in the shape of
Celery's pidbox requests, so that running workers act at once.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from corekit.transport import Message

if TYPE_CHECKING:
    from corekit.app import Corekit

logger = logging.getLogger("corekit.control")

#: The fanout exchange of Celery's remote control (its "pidbox").
PIDBOX = "celery.pidbox"


def pidbox_message(command: str, arguments: Mapping[str, Any],
                   destination: Sequence[str] | None = None) -> Message:
    """A remote-control request as Celery's pidbox sends it."""
    body = {"method": command, "arguments": dict(arguments), "destination": destination,
            "pattern": None, "matcher": None, "ticket": str(uuid.uuid4())}
    return Message(body=json.dumps(body).encode(), headers={"clock": 1}, properties={},
                   content_type="application/json", content_encoding="utf-8",
                   exchange=PIDBOX, routing_key="")


class Control:
    """Remote control of the app's workers (more commands come with the
    remote-control issue: inspect, rate_limit, pool_grow...)."""

    def __init__(self, app: Corekit) -> None:
        self.app = app

    def broadcast(self, command: str, arguments: Mapping[str, Any] | None = None,
                  destination: Sequence[str] | None = None) -> None:
        """Send *command* to every worker (or those in *destination*)."""
        transport = self.app.producer
        if "broadcast" not in transport.capabilities:
            logger.warning("%s has no broadcast: running workers do not hear %r",
                           transport.describe(), command)
            return
        transport.publish_broadcast(PIDBOX, [pidbox_message(command, arguments or {},
                                                            destination)])

    def revoke(self, task_id: str | Sequence[str], terminate: bool = False,
               signal: str = "SIGTERM") -> None:
        """Never run these tasks; with *terminate*, also kill them where they
        run now (on pools that can: prefork, asyncio)."""
        ids = [task_id] if isinstance(task_id, str) else list(task_id)
        now = time.time()
        self._keep([{"task_id": i, "terminate": terminate, "signal": signal, "at": now}
                    for i in ids])
        self.broadcast("revoke", {"task_id": ids[0] if len(ids) == 1 else ids,
                                  "terminate": terminate, "signal": signal})

    def terminate(self, task_id: str | Sequence[str], signal: str = "SIGTERM") -> None:
        self.revoke(task_id, terminate=True, signal=signal)

    def revoke_by_stamped_headers(self, headers: Mapping[str, Any], terminate: bool = False,
                                  signal: str = "SIGTERM") -> None:
        """Revoke every task whose message carries all of these headers
        (``apply_async(headers={...})``); a list value matches any of its items."""
        self._keep([{"headers": dict(headers), "terminate": terminate, "signal": signal,
                     "at": time.time()}])
        self.broadcast("revoke_by_stamped_headers", {"headers": dict(headers),
                                                     "terminate": terminate, "signal": signal})

    def _keep(self, entries: list[dict[str, Any]]) -> None:
        try:
            self.app.backend.add_revocations(entries)
        except NotImplementedError as exc:
            logger.warning("%s: the revocation reaches running workers only", exc)
