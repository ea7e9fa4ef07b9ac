"""Message decode, pure Python: raw transport messages -> task headers."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def parse_iso8601(s: str) -> float:
    if not isinstance(s, str):
        raise ValueError(f"not an ISO-8601 string: {s!r}")
    text = s.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


class TaskHeaders:
    __slots__ = ("message", "task", "id", "root_id", "parent_id", "group", "retries", "eta",
                 "expires", "time_limit", "soft_time_limit", "ignore_result", "compression",
                 "content_type", "redelivered")

    def __repr__(self) -> str:
        return f"<TaskHeaders {self.task}[{self.id}]>"


def _when(headers: dict[str, Any], key: str) -> float | None:
    value = headers.get(key)
    if value is None:
        return None
    try:
        return parse_iso8601(value)
    except (ValueError, TypeError):
        raise ValueError(f"bad {key!r} header: {value!r}") from None


def decode_one(message: Any) -> TaskHeaders:
    h = message.headers
    if not isinstance(h, dict):
        raise ValueError("headers are not a mapping")
    task, tid = h.get("task"), h.get("id")
    if not isinstance(task, str) or not task:
        raise ValueError(f"bad 'task' header: {task!r}")
    if not isinstance(tid, str) or not tid:
        raise ValueError(f"bad 'id' header: {tid!r}")
    retries = h.get("retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool):
        raise ValueError(f"bad 'retries' header: {retries!r}")
    limits = h.get("timelimit") or [None, None]
    if (not isinstance(limits, (list, tuple)) or len(limits) != 2
            or any(x is not None and (not isinstance(x, (int, float)) or isinstance(x, bool))
                   for x in limits)):
        raise ValueError(f"bad 'timelimit' header: {limits!r}")
    if not isinstance(message.content_type, str):
        raise ValueError(f"bad content type: {message.content_type!r}")
    out = TaskHeaders()
    out.message, out.task, out.id = message, task, tid
    out.root_id, out.parent_id, out.group = h.get("root_id"), h.get("parent_id"), h.get("group")
    out.retries = retries
    out.eta, out.expires = _when(h, "eta"), _when(h, "expires")
    out.time_limit, out.soft_time_limit = limits
    out.ignore_result = bool(h.get("ignore_result"))
    out.compression = h.get("compression")
    out.content_type = message.content_type
    out.redelivered = bool(message.redelivered)
    return out


def decode_batch(messages: list[Any]) -> tuple[list[TaskHeaders], list[tuple[Any, str]]]:
    good: list[TaskHeaders] = []
    bad: list[tuple[Any, str]] = []
    for m in messages:
        try:
            good.append(decode_one(m))
        except ValueError as exc:
            bad.append((m, str(exc)))
    return good, bad
