"""Bounded event fields: what a worker sends and what the cluster state
keeps of args, kwargs, results, exceptions and tracebacks.

A value longer than the limit (UTF-8 bytes) keeps its head and its tail
(a traceback's last line names the exception) around a marker saying how
big it was: ``…(truncated, 10485773 bytes)…``.  The whole value stays in
the result backend.
"""
from __future__ import annotations

from typing import Any, Mapping

#: The default of the ``event_max_field_size`` setting, in bytes.
DEFAULT_MAX_FIELD_SIZE = 4096
#: Event fields that are never truncated (numbers, ids, times).
SCALARS = (int, float, bool, type(None))


def truncate(text: str, limit: int) -> str:
    """*text* cut to at most *limit* UTF-8 bytes, head and tail kept; 0 or
    less: no limit."""
    if limit <= 0 or len(text) * 4 <= limit:
        return text
    raw = text.encode("utf-8", "surrogatepass")
    size = len(raw)
    if size <= limit:
        return text
    marker = f"…(truncated, {size} bytes)…"
    room = max(limit - len(marker.encode()), 0)
    head, tail = raw[:room - room // 4], raw[size - room // 4:] if room // 4 else b""
    return (head.decode("utf-8", "ignore") + marker + tail.decode("utf-8", "ignore"))


def bounded(value: Any, limit: int) -> Any:
    """*value* as an event field: a string truncated, a number as it is,
    anything else (a list, a dict from an odd producer) as its truncated
    repr when that is over *limit*."""
    if isinstance(value, str):
        return truncate(value, limit)
    if isinstance(value, SCALARS) or limit <= 0:
        return value
    text = repr(value)
    return value if len(text.encode("utf-8", "surrogatepass")) <= limit else truncate(text, limit)


def bounded_event(event: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """A copy of *event* with every field `bounded`."""
    return {key: bounded(value, limit) for key, value in event.items()}
