"""Claimed envelopes to `Message` objects, each on its own, and the dead
letters of those that are none.

An envelope (``msg`` hash) is what `transport.pack` writes: a msgpack map
with ``body`` (bin, or str taken as its UTF-8 bytes), ``headers`` and
``properties`` (any value: whether they make a task is the worker's to judge),
``content_type``, ``content_encoding``, ``queue``, ``exchange``,
``routing_key`` (str) and ``priority`` (int).  A claimed id whose envelope
is missing, not msgpack, not a map, or lacks a field or has one of the wrong
type is moved to the dead letters with its raw bytes and the reason, logged
at ERROR; the rest of its batch is delivered.  Such a raw letter has the
content type `RAW`; replaying it stores its bytes again as they were.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import msgpack

from corekit.messages import Message

from corekit.transport import DeadLetter

logger = logging.getLogger("corekit.transport.redis")

#: The content type of a dead letter that keeps an envelope's raw bytes as its body.
RAW = "application/x-corekit-raw-envelope"
TEXT_FIELDS = ("content_type", "content_encoding", "queue", "exchange", "routing_key")
#: Where a raw letter goes when neither its route nor its envelope names a queue.
DEFAULT_QUEUE = "celery"


class BadEnvelope(ValueError):
    """A stored envelope that cannot be a `Message`; the message says why."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _record(data: Any) -> dict[Any, Any]:
    try:
        record = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises many kinds: all mean "not an envelope"
        raise BadEnvelope(f"envelope is not msgpack ({type(exc).__name__}: {exc})") from None
    if type(record) is not dict:
        raise BadEnvelope(f"envelope is not a map: {type(record).__name__}")
    return record


def _checked(record: dict[Any, Any]) -> dict[Any, Any]:
    """*record* if every field has its type (a str body made bytes), else BadEnvelope."""
    missing = [f for f in ("body", "headers", "properties", "priority", *TEXT_FIELDS)
               if f not in record]
    if missing:
        raise BadEnvelope(f"envelope lacks {', '.join(map(repr, missing))}")
    body = record["body"]
    if type(body) is str:
        record["body"] = body.encode()
    elif type(body) is not bytes:
        raise BadEnvelope(f"envelope's 'body' is not bytes: {_show(body)}")
    for name in TEXT_FIELDS:
        if type(record[name]) is not str:
            raise BadEnvelope(f"envelope's {name!r} is not a string: {_show(record[name])}")
    if type(record["priority"]) is not int:
        raise BadEnvelope(f"envelope's 'priority' is not an integer: "
                          f"{_show(record['priority'])}")
    return record


def message(data: Any, tag: int, redelivered: bool) -> Message:
    """The `Message` of claimed id *tag*'s envelope, or BadEnvelope."""
    if data is None:
        raise BadEnvelope(f"no envelope stored for message {tag}")
    r = _record(data)
    try:  # what corekit writes: one check, no calls
        body, priority, ctype, cenc, queue, exchange, routing_key = (
            r["body"], r["priority"], r["content_type"], r["content_encoding"], r["queue"],
            r["exchange"], r["routing_key"])
        good = (type(body) is bytes and type(priority) is int and type(ctype) is str
                and type(cenc) is str and type(queue) is str and type(exchange) is str
                and type(routing_key) is str and "headers" in r and "properties" in r)
    except KeyError:
        good = False
    if not good:
        r = _checked(r)
        body, priority, ctype, cenc, queue, exchange, routing_key = (
            r["body"], r["priority"], r["content_type"], r["content_encoding"], r["queue"],
            r["exchange"], r["routing_key"])
    return Message(body=body, headers=r["headers"], properties=r["properties"],
                   content_type=ctype, content_encoding=cenc, queue=queue, exchange=exchange,
                   routing_key=routing_key, priority=priority, delivery_tag=tag,
                   redelivered=redelivered)


Bad = tuple[Any, Any, str]  # id, envelope bytes (or None), reason


def decode_claimed(raw: Sequence[Any]) -> tuple[list[Message], list[Bad]]:
    """fetch.lua's reply (id, envelope, redelivered, ...) as the messages and
    the ids that are none, each with why."""
    got: list[Message] = []
    bad: list[Bad] = []
    for i in range(0, len(raw), 3):
        tag, data = raw[i], raw[i + 1]
        try:
            number = int(tag)
        except ValueError:
            bad.append((tag, data, f"queued id {_show(tag)} is not a number"))
            continue
        try:
            got.append(message(data, number, bool(raw[i + 2])))
        except BadEnvelope as exc:
            bad.append((number, data, str(exc)))
    return got, bad


def _route(route: Any, data: Any) -> tuple[str, int]:
    """Queue and priority of a raw letter: its route's, else its envelope's queue."""
    if isinstance(route, bytes):
        name, sep, priority = route.rpartition(b"\n")
        if sep and priority.isdigit():
            try:
                return name.decode(), min(9, int(priority))
            except UnicodeDecodeError:
                pass
    try:
        queue = _record(data).get("queue")
    except BadEnvelope:
        queue = None
    return (queue, 0) if isinstance(queue, str) else (DEFAULT_QUEUE, 0)


def raw_letter(data: Any, route: Any, reason: str, failed_at: float) -> bytes:
    """A dead-letter record that keeps *data* (b"" for none) as its body."""
    queue, priority = _route(route, data)
    packed: bytes = msgpack.packb({"headers": {}, "properties": {}, "content_type": RAW,
                          "content_encoding": "binary", "queue": queue, "exchange": "",
                          "routing_key": queue, "priority": priority,
                          "body": data if isinstance(data, bytes) else b"",
                          "reason": reason, "failed_at": failed_at}, use_bin_type=True)
    return packed


def bury(client: Any, prefix: str, consumer: str, bad: Sequence[Bad]) -> None:
    """Move claimed ids that are no message to the dead letters, raw, and
    forget them (owned set, ``msg``, ``route``, ``redelivered``)."""
    tags = [tag for tag, _, _ in bad]
    routes = client.hmget(prefix + "route", tags)
    last = int(client.incr(prefix + "seq", len(bad)))
    now = time.time()
    pipe = client.pipeline(transaction=True)
    for dead_id, (tag, data, reason), route in zip(range(last - len(bad) + 1, last + 1), bad,
                                                    routes):
        logger.error("Moved stored message %r to the dead-letter queue: %s", tag, reason)
        pipe.hset(prefix + "dead", dead_id, raw_letter(data, route, reason, now))
        pipe.zadd(prefix + "dead:ids", {dead_id: dead_id})
        pipe.srem(prefix + "owned:" + consumer, tag)
        for key in ("msg", "route", "redelivered"):
            pipe.hdel(prefix + key, tag)
    pipe.execute()


def letter(dead_id: Any, data: bytes) -> DeadLetter:
    """The dead letter stored as *data*; one that cannot be read is shown
    as a raw letter saying so, never an error."""
    text = dead_id.decode(errors="backslashreplace") if isinstance(dead_id, bytes) else dead_id
    ident = int(text) if text.isascii() and text.isdigit() else text  # corekit writes numbers
    try:
        record = _record(data)
        kept = message(data, 0, False)
        kept.delivery_tag = None
        return DeadLetter(ident, kept, str(record["reason"]), float(record["failed_at"]))
    except (BadEnvelope, KeyError, TypeError, ValueError) as exc:
        return DeadLetter(ident, Message(body=data, headers={}, properties={}, content_type=RAW,
                                         queue=DEFAULT_QUEUE),
                          f"unreadable dead letter ({type(exc).__name__}: {exc})", 0.0)
