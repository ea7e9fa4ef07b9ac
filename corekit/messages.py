"""The message model: `Message`, and building Celery's task message protocol v2
(DESIGN.md §3)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence


@dataclass(slots=True)
class Message:
    """One task message, as published and as delivered.

    ``headers`` and ``properties`` follow Celery's protocol v2 (DESIGN.md §3);
    ``body`` is the serialized (maybe compressed) payload.  ``queue`` is the
    destination when publishing and the source when delivered.  ``eta`` is an
    epoch time before which the broker must not deliver the message.
    ``delivery_tag`` is set by the transport on delivery and is opaque to
    everyone else.
    """

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    content_type: str
    content_encoding: str = "utf-8"
    queue: str = "celery"
    exchange: str = ""
    routing_key: str = ""
    eta: float | None = None
    priority: int = 0
    delivery_tag: Any = None
    redelivered: bool = False


ORIGIN = f"{os.getpid()}@{socket.gethostname()}"


def to_iso(when: datetime | float | None) -> str | None:
    """An ISO-8601 string (UTC) for an aware/naive datetime or an epoch time."""
    if when is None:
        return None
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.isoformat()


def to_epoch(when: datetime | float | None) -> float | None:
    if when is None or isinstance(when, (int, float)):
        return when
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def saferepr(value: Any, limit: int = 1024) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a repr that raises must not stop a publish
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def task_headers(name: str, task_id: str, args: Sequence[Any], kwargs: Mapping[str, Any], *,
                 eta: float | None = None, expires: float | None = None, retries: int = 0,
                 time_limit: float | None = None, soft_time_limit: float | None = None,
                 root_id: str | None = None, parent_id: str | None = None,
                 group_id: str | None = None, group_index: int | None = None,
                 shadow: str | None = None, ignore_result: bool = False,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    headers = {
        "lang": "py", "task": name, "id": task_id, "shadow": shadow,
        "eta": to_iso(eta), "expires": to_iso(expires),
        "group": group_id, "group_index": group_index, "retries": retries,
        "timelimit": [time_limit, soft_time_limit],
        "root_id": root_id or task_id, "parent_id": parent_id,
        "argsrepr": saferepr(args), "kwargsrepr": saferepr(kwargs),
        "origin": ORIGIN, "ignore_result": ignore_result,
    }
    if extra:
        headers.update(extra)
    return headers


def task_body(args: Sequence[Any], kwargs: Mapping[str, Any], *,
              callbacks: list[Any] | None = None, errbacks: list[Any] | None = None,
              chain: list[Any] | None = None, chord: Any = None) -> tuple[Any, ...]:
    return (list(args), dict(kwargs),
            {"callbacks": callbacks, "errbacks": errbacks, "chain": chain, "chord": chord})


def build_message(headers: dict[str, Any], body: bytes, content_type: str,
                  content_encoding: str, compression: str | None, *, queue: str,
                  exchange: str = "", routing_key: str | None = None, priority: int = 0,
                  reply_to: str | None = None, eta: float | None = None) -> Message:
    if compression:
        headers["compression"] = compression
    properties = {"correlation_id": headers["id"], "reply_to": reply_to or "",
                  "delivery_mode": 2, "priority": priority}
    return Message(body=body, headers=headers, properties=properties,
                   content_type=content_type, content_encoding=content_encoding,
                   queue=queue, exchange=exchange, routing_key=routing_key or queue,
                   eta=eta, priority=priority)


def countdown_to_eta(countdown: float | None, eta: datetime | float | None,
                     now: datetime | None = None) -> float | None:
    if countdown is not None:
        now = now or datetime.now(timezone.utc)
        return (now + timedelta(seconds=countdown)).timestamp()
    return to_epoch(eta)
