"""Message decode, pure Python: Celery protocol v2 headers -> `TaskHeaders`.

The twin of ``_decode.pyx``: both accept exactly the same messages, decode
them to equal fields and reject the rest with the same reasons.  The body is
not decoded here.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

#: The one timestamp shape Celery writes (``datetime.isoformat``), with ``Z``
#: and 1-6 fractional digits allowed; nothing looser.
_ISO8601 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                      r"(?:\.([0-9]{1,6}))?(Z|[+-][0-9]{2}:[0-9]{2})?")
MAX_RETRIES = 2**63 - 1
#: The longest names and ids (task, id, root_id, parent_id, group, origin,
#: compression, content type, reply_to) and argsrepr/kwargsrepr a worker
#: takes; Celery writes ids of 36 characters and reprs of at most 1024.
MAX_NAME = 1024
MAX_REPR = 65536
#: The longest time limit, in seconds (68 years): the pools' timers and waits
#: overflow far beyond it.
MAX_TIME_LIMIT = 2.0**31
FIELDS = ("message", "task", "id", "root_id", "parent_id", "group", "retries", "eta",
          "expires", "time_limit", "soft_time_limit", "ignore_result", "compression",
          "content_type", "redelivered")


def parse_iso8601(s: str) -> float:
    """Epoch seconds for ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM]``;
    naive means UTC.  Anything else raises ValueError."""
    match = _ISO8601.fullmatch(s) if isinstance(s, str) else None
    if match is None:
        raise ValueError(f"not an ISO-8601 timestamp: {_show(s)}")
    frac, zone = match.group(7, 8)
    if match.group(4) > "23" or (zone is not None and zone != "Z"
                                 and (zone[1:3] > "23" or zone[4:6] > "59")):
        raise ValueError(f"not an ISO-8601 timestamp: {_show(s)}")
    if zone == "Z" or (frac is not None and len(frac) not in (3, 6)):
        # the shape every datetime.fromisoformat (3.7+) reads
        s = s[:19] + (f".{frac:0<6}" if frac else "") + ("+00:00" if zone == "Z" else zone or "")
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {_show(match.string)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


class TaskHeaders:
    """A task message's routing headers, decoded; the body is not.

    ``eta`` and ``expires`` are epoch seconds; ``time_limit`` and
    ``soft_time_limit`` come from the ``timelimit`` header ``[hard, soft]``."""

    __slots__ = FIELDS

    def __init__(self, message: Any, task: str, id: str, *, root_id: str | None = None,
                 parent_id: str | None = None, group: str | None = None, retries: int = 0,
                 eta: float | None = None, expires: float | None = None,
                 time_limit: float | None = None, soft_time_limit: float | None = None,
                 ignore_result: bool = False, compression: str | None = None,
                 content_type: str | None = None, redelivered: bool | None = None) -> None:
        self.message, self.task, self.id = message, task, id
        self.root_id, self.parent_id, self.group = root_id, parent_id, group
        self.retries, self.eta, self.expires = retries, eta, expires
        self.time_limit, self.soft_time_limit = time_limit, soft_time_limit
        self.ignore_result, self.compression = bool(ignore_result), compression
        self.content_type = message.content_type if content_type is None else content_type
        self.redelivered = bool(message.redelivered if redelivered is None else redelivered)

    def __repr__(self) -> str:
        return (f"<TaskHeaders {self.task}[{self.id}] retries={self.retries} "
                f"eta={self.eta!r} expires={self.expires!r}>")


def _show(value: Any) -> str:
    """A short repr for a reason string; never raises."""
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= 100 else text[:97] + "..."


def _bad(key: str, value: Any) -> str:
    return f"bad {key!r} header: {_show(value)}"


def _too_long(text: str, limit: int) -> str | None:
    """Why *text* is too long, or None."""
    if len(text) <= limit:
        return None
    return f"a string of {len(text)} characters (at most {limit})"


def _text(h: dict[str, Any], key: str, limit: int) -> str | None:
    """Why header *key* is not None or a string of at most *limit*, or None."""
    value = h.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        return _bad(key, value)
    if len(value) > limit:
        return f"bad {key!r} header: {_too_long(value, limit)}"
    return None


def _limit(value: Any) -> float | None:
    """A time limit as a float, or raise ValueError."""
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError
    try:
        seconds = float(value)
    except OverflowError:
        raise ValueError from None
    if not 0.0 <= seconds <= MAX_TIME_LIMIT:
        raise ValueError
    return seconds


def _decode_one(message: Any) -> TaskHeaders | str:
    """`TaskHeaders` for a good message, else the reason it is bad."""
    try:
        h, properties, content_type, redelivered = (message.headers, message.properties,
                                                    message.content_type, message.redelivered)
    except AttributeError:
        return f"not a message object: {type(message).__name__}"
    if not isinstance(h, dict):
        return f"headers are not a dict: {type(h).__name__}"
    if not isinstance(properties, dict):
        return f"properties are not a dict: {type(properties).__name__}"
    if type(h) is not dict:
        h = dict(h)
    task, task_id = h.get("task"), h.get("id")
    if task is None:
        return "missing 'task' header"
    if not isinstance(task, str) or not task:
        return _bad("task", task)
    if len(task) > MAX_NAME:
        return f"bad 'task' header: {_too_long(task, MAX_NAME)}"
    if task_id is None:
        return "missing 'id' header"
    if not isinstance(task_id, str) or not task_id:
        return _bad("id", task_id)
    if len(task_id) > MAX_NAME:
        return f"bad 'id' header: {_too_long(task_id, MAX_NAME)}"
    if not isinstance(content_type, str):
        return f"bad content type: {_show(content_type)}"
    if len(content_type) > MAX_NAME:
        return f"bad content type: {_too_long(content_type, MAX_NAME)}"
    retries = h.get("retries")
    if retries is None:
        retries = 0
    elif (not isinstance(retries, int) or isinstance(retries, bool)
          or not 0 <= retries <= MAX_RETRIES):
        return _bad("retries", retries)
    limits = h.get("timelimit")
    hard = soft = None
    if limits is not None:
        if not isinstance(limits, (list, tuple)) or len(limits) != 2:
            return _bad("timelimit", limits)
        try:
            hard, soft = _limit(limits[0]), _limit(limits[1])
        except ValueError:
            return _bad("timelimit", limits)
    eta = expires = None
    for key in ("eta", "expires"):
        value = h.get(key)
        if value is not None:
            if not isinstance(value, str):
                return _bad(key, value)
            try:
                when = parse_iso8601(value)
            except ValueError:
                return _bad(key, value)
            if key == "eta":
                eta = when
            else:
                expires = when
    for key in ("root_id", "parent_id", "group", "compression"):
        reason = _text(h, key, MAX_NAME)
        if reason is not None:
            return reason
    ignore_result = h.get("ignore_result")
    if ignore_result is not None and not isinstance(ignore_result, bool):
        return _bad("ignore_result", ignore_result)
    group_index = h.get("group_index")
    if group_index is not None and (not isinstance(group_index, int)
                                    or isinstance(group_index, bool)
                                    or not 0 <= group_index <= MAX_RETRIES):
        return _bad("group_index", group_index)
    reason = (_text(h, "origin", MAX_NAME) or _text(h, "argsrepr", MAX_REPR)
              or _text(h, "kwargsrepr", MAX_REPR))
    if reason is not None:
        return reason
    reply_to = properties.get("reply_to")
    if reply_to is not None:
        if not isinstance(reply_to, str):
            return f"bad 'reply_to' property: {_show(reply_to)}"
        if len(reply_to) > MAX_NAME:
            return f"bad 'reply_to' property: {_too_long(reply_to, MAX_NAME)}"
    out = TaskHeaders.__new__(TaskHeaders)
    out.message, out.task, out.id = message, task, task_id
    out.root_id, out.parent_id, out.group = h.get("root_id"), h.get("parent_id"), h.get("group")
    out.retries, out.eta, out.expires = retries, eta, expires
    out.time_limit, out.soft_time_limit = hard, soft
    out.ignore_result, out.compression = ignore_result is True, h.get("compression")
    out.content_type, out.redelivered = content_type, bool(redelivered)
    return out


def decode_batch(messages: list[Any]) -> tuple[list[TaskHeaders], list[tuple[Any, str]]]:
    """``(good TaskHeaders in order, [(message, reason), ...])``; never raises
    for a bad message."""
    good: list[TaskHeaders] = []
    bad: list[tuple[Any, str]] = []
    for message in messages:
        out = _decode_one(message)
        if type(out) is str:
            bad.append((message, out))
        else:
            good.append(out)  # type: ignore[arg-type]
    return good, bad
